"""Commit paths and quorum: against a direct numpy computation of the same distributions and the binomial."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from simdb import theory
from simdb.engine import simulate
from simdb.model.storage import lognormal_params
from simdb.scenario import LatencyDist, from_raw

SEGMENT = {"p50": "0.5ms", "p99": "2ms"}
EBS = {"p50": "0.8ms", "p99": "3ms"}
RTT_SAME, RTT_CROSS = 0.0001, 0.001


def _writes(
    topology: str, engine: str, rate: float = 2000.0, duration: float = 100.0, **cluster: Any
) -> dict:
    storage = {
        "segment_latency": SEGMENT,
        "ebs_latency": EBS,
        "same_az_rtt": RTT_SAME,
        "cross_az_rtt": RTT_CROSS,
        **cluster.pop("storage", {}),
    }
    return {
        "name": "commit",
        "seed": 5,
        "duration": duration,
        "warmup": 1.0,
        "cluster": {
            "engine": engine,
            "topology": topology,
            "writer": {"class": "db.r6g.4xlarge", "az": "a"},
            "storage": storage,
            **cluster,
        },
        "services": [
            {
                "name": "api",
                "tasks": 1,
                "pool": {"max_size": 100},
                "workload": [{"query": "w", "kind": "write", "rate": rate, "cpu": "0.1ms"}],
            }
        ],
    }


def _lognormal(rng: np.random.Generator, spec: dict, shape: tuple[int, ...]) -> np.ndarray:
    mu, sigma = lognormal_params(LatencyDist.model_validate(spec))
    return rng.lognormal(mu, sigma, size=shape)


def _commits(raw_scenario: dict) -> np.ndarray:
    return simulate(from_raw(raw_scenario)).storage.commit_s


def _close(simulated: np.ndarray, direct: np.ndarray, rel: float) -> None:
    for q in (10, 50, 90, 99):
        a, b = np.percentile(simulated, q), np.percentile(direct, q)
        assert a == pytest.approx(b, rel=rel), f"p{q}: simulated {a * 1e3:.4f} ms vs direct {b * 1e3:.4f} ms"
    assert simulated.mean() == pytest.approx(direct.mean(), rel=rel)


def test_aurora_commit_is_the_4th_fastest_of_6_acks() -> None:
    commits = _commits(_writes("aurora", "aurora-postgresql"))
    assert commits.size > 150_000
    rng = np.random.default_rng(99)
    # writer in AZ a: 2 copies in a (same-AZ round trip), 4 in b and c (cross-AZ)
    acks = _lognormal(rng, SEGMENT, (1_000_000, 6)) + np.array([RTT_SAME] * 2 + [RTT_CROSS] * 4)
    direct = np.sort(acks, axis=1)[:, 3]
    _close(commits, direct, rel=0.02)


def test_aurora_commit_exceeds_single_az_ebs_by_the_cross_az_cost() -> None:
    same = {"segment_latency": EBS}  # same per-copy device latency on both: only the quorum differs
    aurora = _commits(_writes("aurora", "aurora-postgresql", storage=same))
    ebs = _commits(_writes("single-az", "postgres"))
    rng = np.random.default_rng(7)
    acks = _lognormal(rng, EBS, (1_000_000, 6)) + np.array([RTT_SAME] * 2 + [RTT_CROSS] * 4)
    expected_gap = np.sort(acks, axis=1)[:, 3].mean() - _lognormal(rng, EBS, (1_000_000,)).mean()
    gap = aurora.mean() - ebs.mean()
    assert gap == pytest.approx(expected_gap, rel=0.05)
    # at least two of the four fastest acks cross an AZ, so the gap is at least most of one round trip
    assert gap > 0.8 * RTT_CROSS


def test_multi_az_commits_wait_for_the_standby() -> None:
    rng = np.random.default_rng(3)
    local, b, c = (_lognormal(rng, EBS, (1_000_000,)) for _ in range(3))
    instance = _commits(_writes("multi-az-instance", "postgres", standby_az="b"))
    # mirrored EBS: the primary's write, then the standby's across the AZs, one after the other
    _close(instance, local + b + RTT_CROSS, rel=0.02)
    readers = [{"class": "db.r6g.large", "az": "b"}, {"class": "db.r6g.large", "az": "c"}]
    ack = {"p50": "0.1ms", "p99": "0.5ms"}
    cluster = _commits(
        _writes(
            "multi-az-cluster",
            "postgres",
            readers=readers,
            storage={"ebs_latency": EBS, "standby_ack_latency": ack},
        )
    )
    b, c = (_lognormal(rng, ack, (1_000_000,)) for _ in range(2))
    # semisynchronous: the first of the two standbys to acknowledge
    _close(cluster, np.maximum(local, np.minimum(b, c) + RTT_CROSS), rel=0.02)
    single = _commits(_writes("single-az", "postgres"))
    assert single.mean() < cluster.mean() < instance.mean()


# ----------------------------------------------------------------------------------------------- quorum


def _quorum_run(events: list[dict], **storage: Any) -> tuple[dict, Any]:
    raw = _writes("aurora", "aurora-postgresql", rate=200.0, duration=60.0)
    raw["warmup"] = 0.0
    raw["cluster"]["readers"] = [{"class": "db.r6g.large", "az": "a"}, {"class": "db.r6g.large", "az": "b"}]
    raw["cluster"]["storage"].update(storage)
    raw["services"][0]["workload"].append({"query": "r", "kind": "read", "route": "reader", "rate": 400.0})
    raw["events"] = events
    import simdb

    result = simdb.run(raw, plots=False)
    return result.summary, result.requests


def _errors_between(requests: Any, kind: str, code: str) -> tuple[float, float, int]:
    mask = (requests["kind"] == kind) & (requests["code"] == code)
    t = requests["t_end"][mask]
    return (float(t.min()), float(t.max()), int(mask.sum())) if mask.any() else (math.nan, math.nan, 0)


def test_losing_an_az_keeps_writes_and_az_plus_one_loses_writes_not_reads() -> None:
    summary, requests = _quorum_run(
        [
            {"at": "10s", "action": "az_outage", "az": "c", "for": "30s"},
            {"at": "20s", "action": "storage_node_failure", "az": "b", "count": 1, "for": "5s"},
        ],
        segment_repair=0,
        write_quorum_timeout=0,
    )
    storage = summary["storage"]
    assert storage["write_quorum_lost_s"] == pytest.approx(5.0)
    assert storage["read_quorum_lost_s"] == 0.0
    first, last, n = _errors_between(requests, "write", "quorum_unavailable")
    assert n > 0.9 * 200 * 5
    assert first >= 20.0 and last <= 25.0 + 0.01, "writes fail only while 3 of 6 copies are reachable"
    assert _errors_between(requests, "read", "quorum_unavailable")[2] == 0
    reads_ok = requests[(requests["kind"] == "read") & (requests["code"] == "ok")]
    assert ((reads_ok["t_end"] > 20) & (reads_ok["t_end"] < 25)).sum() > 0.9 * 400 * 5


def test_az_plus_two_loses_reads_too_and_repair_restores_quorum() -> None:
    summary, requests = _quorum_run(
        [
            {"at": "10s", "action": "az_outage", "az": "c", "for": "30s"},
            {"at": "20s", "action": "storage_node_failure", "az": "b", "count": 2},
        ],
        segment_repair="4s",
        write_quorum_timeout=0,
    )
    storage = summary["storage"]
    assert storage["write_quorum_lost_s"] == pytest.approx(4.0)
    assert storage["read_quorum_lost_s"] == pytest.approx(4.0)
    first, last, n = _errors_between(requests, "read", "quorum_unavailable")
    assert n > 0 and first >= 20.0 and last <= 24.0 + 0.01


def test_a_commit_may_wait_for_the_quorum_instead_of_failing() -> None:
    summary, requests = _quorum_run(
        [{"at": "20s", "action": "storage_node_failure", "count": 3, "for": "2s"}],
        segment_repair=0,
        write_quorum_timeout="5s",
    )
    assert summary["requests"]["errors"]["quorum_unavailable"] == 0
    writes = requests[(requests["kind"] == "write") & (requests["t_end"] > 22) & (requests["t_end"] < 22.01)]
    # commits held during the 2 s without quorum complete as soon as it returns
    assert len(writes) > 0.8 * 200 * 2


def _random_failure_fractions(seed: int, **failures: Any) -> tuple[float, float]:
    raw = {
        "name": "quorum",
        "seed": seed,
        "duration": 400_000.0,
        "timeseries_interval": 1000.0,
        "cluster": {"storage": {"segment_repair": "25s", "failures": failures}},
    }
    s = simulate(from_raw(raw))
    from simdb.analysis.metrics import Analysis

    st = Analysis(s).summary()["storage"]
    return st["write_quorum_lost_s"] / 400_000.0, st["read_quorum_lost_s"] / 400_000.0


@pytest.mark.parametrize("with_az", [False, True], ids=["copies", "copies+azs"])
def test_time_without_quorum_matches_the_binomial(with_az: bool) -> None:
    mtbf, mttr = 100.0, 25.0
    p_copy = mtbf / (mtbf + mttr)
    failures: dict[str, Any] = {"segment_mtbf": mtbf}
    p_az = 1.0
    if with_az:
        failures.update(az_mtbf=900.0, az_mttr=100.0)
        p_az = 0.9
    want_write = 1 - theory.az_quorum_availability(3, 2, 4, p_copy, p_az)
    want_read = 1 - theory.az_quorum_availability(3, 2, 3, p_copy, p_az)
    runs = np.array([_random_failure_fractions(seed, **failures) for seed in range(6)])
    mean, se = runs.mean(axis=0), runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    for got, err, want in zip(mean, se, (want_write, want_read), strict=True):
        assert err / want < 0.03, "not enough simulated time for a 3% standard error"
        assert abs(got - want) < 3 * err + 0.01 * want, (got, want, err)
