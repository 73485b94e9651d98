"""Replica lag against the Aurora paper and queueing arithmetic; stale reads against probability."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import simdb
from simdb import theory

# FACTS: replication.aurora_lag (Verbitski et al. 2017, Table 4): writes/s -> mean reader lag, ms
AURORA_PAPER_LAG_MS = {1000: 2.62, 2000: 3.42, 5000: 3.94, 10000: 5.38}


def _cluster(topology: str, **extra: Any) -> dict:
    engine = "aurora-postgresql" if topology == "aurora" else "postgres"
    reader: dict[str, Any] = {"class": "db.r6g.4xlarge", "az": "b"}
    return {
        "engine": engine,
        "topology": topology,
        "writer": {"class": "db.r6g.8xlarge", "az": "a"},
        "readers": [reader],
        "parameters": {"max_connections": 5000},
        **extra,
    }


def _run(cluster: dict, workload: list[dict], duration: float, events: list | None = None, **top: Any):
    raw = {
        "name": "replication",
        "seed": top.pop("seed", 2),
        "duration": duration,
        "warmup": top.pop("warmup", 2.0),
        "cluster": cluster,
        "services": [
            {"name": "api", "tasks": 4, "pool": {"max_size": 50}, "sessions": 100_000, "workload": workload}
        ],
        "events": events or [],
        **top,
    }
    return simdb.run(raw, plots=False)


@pytest.mark.parametrize("rate", sorted(AURORA_PAPER_LAG_MS))
def test_aurora_lag_follows_the_papers_table_4(rate: int) -> None:
    result = _run(
        _cluster("aurora"),
        [{"query": "w", "kind": "write", "rate": rate, "cpu": "0.1ms"}],
        duration=20.0,
    )
    lag = result.summary["replication"]["lag_ms"]["mean"]
    assert lag == pytest.approx(AURORA_PAPER_LAG_MS[rate], rel=0.25)


def test_aurora_lag_grows_with_the_readers_own_load() -> None:
    writes = {"query": "w", "kind": "write", "rate": 2000, "cpu": "0.1ms"}
    idle = _run(_cluster("aurora"), [writes], duration=20.0).summary
    # 16 vCPUs, 8000 reads/s x 1 ms = 50% busy
    reads = {"query": "r", "route": "reader", "rate": 8000, "cpu": "1ms"}
    busy = _run(_cluster("aurora"), [writes, reads], duration=20.0)
    cpu = busy.timeseries["CPUUtilization.reader-1"].iloc[2:].mean() / 100.0
    assert 0.45 < cpu < 0.55
    lag = busy.summary["replication"]["lag_ms"]["mean"]
    assert lag == pytest.approx(idle["replication"]["lag_ms"]["mean"] * (1 + cpu), rel=0.03)


def test_rds_replica_lag_grows_at_the_excess_rate_and_drains() -> None:
    apply_rate, base, factor = 1000.0, 500.0, 3.0
    cluster = _cluster("single-az")
    cluster["readers"][0]["apply_rate"] = apply_rate
    result = _run(
        cluster,
        [{"query": "w", "kind": "write", "rate": base, "cpu": "0.1ms"}],
        duration=200.0,
        events=[{"at": "20s", "action": "write_spike", "service": "api", "factor": factor, "for": "60s"}],
        seed=4,
    )
    requests = result.requests
    writes = requests[(requests["kind"] == "write") & (requests["code"] == "ok")]
    # lag of each write (apply - commit), from the apply queue, against its commit time, mid-spike
    growth = theory.async_lag_growth(base * factor, apply_rate)
    assert growth == pytest.approx(0.5)
    ts = result.timeseries
    lag_ms = result.summary["replication"]["lag_ms"]["max"]
    assert lag_ms / 1000.0 == pytest.approx(growth * 60.0, rel=0.10)
    # CloudWatch-style ReplicaLag (age of the oldest unapplied change) at 1 s samples mid-spike grows at
    # (λw - μ)/λw: the replica works through commit time at μ/λw seconds per second
    mid = ts[(ts["time_s"] >= 30) & (ts["time_s"] <= 70)]
    slope = np.polyfit(mid["time_s"], mid["ReplicaLag.reader-1"], 1)[0]
    assert slope == pytest.approx((base * factor - apply_rate) / (base * factor), rel=0.10)
    assert len(writes) > 0
    # after the spike the backlog drains at μ - λw: gone well before the end
    assert ts["ReplicaLag.reader-1"].iloc[-20:].max() < 0.05


def _stale_fraction(network_delay: float, seed: int) -> float:
    cluster = _cluster("single-az", replication={"network_delay": network_delay})
    cluster["readers"][0]["apply_rate"] = 1_000_000.0  # no apply queue: lag = the network delay
    keys = {"count": 1000}
    result = _run(
        cluster,
        [
            {"query": "w", "kind": "write", "rate": 1000, "cpu": "0.1ms", "keys": keys},
            {"query": "r", "route": "reader", "rate": 2000, "cpu": "0.1ms", "keys": keys},
        ],
        duration=60.0,
        seed=seed,
    )
    return result.summary["replication"]["stale_read_fraction"]


@pytest.mark.parametrize("lag_s", [0.05, 0.2, 1.0])
def test_stale_fraction_matches_poisson_writes_inside_the_lag(lag_s: float) -> None:
    # a read of a key is stale when the key was written during the last `lag` seconds:
    # P = 1 - exp(-λw · lag / K) for Poisson writes spread uniformly over K keys
    want = 1.0 - math.exp(-1000.0 * lag_s / 1000.0)
    got = _stale_fraction(lag_s, seed=9)
    assert got == pytest.approx(want, rel=0.05)


def test_stale_fraction_grows_with_lag() -> None:
    fractions = [_stale_fraction(lag, seed=1) for lag in (0.001, 0.01, 0.1, 0.5)]
    assert fractions == sorted(fractions) and fractions[0] < 0.01 < fractions[-1]


def test_read_after_write_routed_to_the_writer_is_never_stale() -> None:
    cluster = _cluster("single-az")
    cluster["readers"][0]["apply_rate"] = 500.0  # writes outpace it: seconds of lag
    workload = [
        {"query": "w", "kind": "write", "rate": 800, "cpu": "0.1ms"},
        {"query": "on_reader", "route": "reader", "follows": "w", "cpu": "0.1ms"},
        {"query": "on_writer", "route": "writer", "follows": {"query": "w", "fraction": 0.5}, "cpu": "0.1ms"},
    ]
    s = _run(cluster, workload, duration=30.0).summary
    by_query = s["replication"]["by_query"]
    assert (
        by_query["on_reader"]["read_your_writes_violations"]
        > 0.9 * by_query["on_reader"]["reads_on_replicas"]
    )
    assert by_query["on_writer"] == {
        "reads_on_replicas": 0,
        "stale_reads": 0,
        "stale_read_fraction": 0.0,
        "read_your_writes_violations": 0,
    }
    assert s["by_query"]["on_writer"]["ok"] == pytest.approx(0.5 * s["by_query"]["w"]["ok"], rel=0.03)
    assert s["by_query"]["on_reader"]["ok"] == pytest.approx(s["by_query"]["w"]["ok"], rel=0.01)


def test_follow_up_reads_use_the_writers_key_and_session() -> None:
    cluster = _cluster("aurora")
    workload = [
        {"query": "w", "kind": "write", "rate": 200, "cpu": "0.1ms"},
        {"query": "f", "route": "reader", "follows": {"query": "w", "delay": "50ms"}, "cpu": "0.1ms"},
    ]
    req = _run(cluster, workload, duration=10.0, warmup=0.0).requests
    w = req[req["query"] == "w"].sort_values("t_end")
    f = req[req["query"] == "f"].sort_values("t_arrive")
    n = min(len(w), len(f))
    assert n > 1500
    assert (w["key"].to_numpy()[:n] == f["key"].to_numpy()[:n]).all()
    assert (w["session"].to_numpy()[:n] == f["session"].to_numpy()[:n]).all()
    np.testing.assert_allclose(f["t_arrive"].to_numpy()[:n], w["t_end"].to_numpy()[:n] + 0.05)
