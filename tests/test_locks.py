"""Row locks against queueing theory, DB load by wait class against Little's law, and lock events.

One hot key that every transaction locks is a single-server queue with the lock as the server: Poisson
arrivals and an exponential lock hold make it M/M/1. Holds are the CPU burst (exponential) plus a commit
pinned at 1 µs, so the lock is held for the CPU time plus 1 µs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import single_instance

import simdb
from simdb.analysis.metrics import Analysis
from simdb.engine import WAIT_CLASSES, Sim
from simdb.record import CODE
from simdb.scenario import from_raw

ROOT = Path(__file__).resolve().parent.parent
LOCK_TIMEOUT = CODE["lock_timeout"]
COMMIT_S = 1e-6  # the pinned commit latency


def _hot_key(
    rate: float,
    cpu_s: float,
    duration_s: float,
    seed: int,
    lock_timeout_ms: float = 0.0,
    warmup_s: float = 5.0,
) -> dict[str, Any]:
    """Every request is a write that locks key 0; 16 vCPUs, so nothing but the lock makes one wait."""
    raw = single_instance(
        vcpu=16,
        rate=rate,
        cpu_s=cpu_s,
        duration_s=duration_s,
        warmup_s=warmup_s,
        seed=seed,
        kind="write",
        keys={"count": 1},
        transaction={"locks": 1},
    )
    raw["cluster"]["storage"] = {"ebs_latency": {"p50": COMMIT_S, "p99": COMMIT_S}}
    raw["cluster"]["parameters"]["lock_timeout"] = lock_timeout_ms
    return raw


def _lock_waits(raw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float]:
    """(lock wait of every request that arrived after warm-up, and whether it timed out; measured seconds)."""
    s = from_raw(raw)
    run = Sim(s).run()
    c = run.recorder.requests()
    window = c["t_arrive"] >= s.warmup
    timed_out = c["code"] == LOCK_TIMEOUT
    # a request waits for the lock from the moment its statement reaches the instance (t_acquired) until
    # its CPU burst starts; one that gave up waited until it failed
    waits = np.where(timed_out, c["t_end"] - c["t_acquired"], c["t_start"] - c["t_acquired"])
    return waits[window], timed_out[window], s.duration - s.warmup


# M/M/1 at rho = 0.7: mu = 500/s (2 ms holds), lambda = 350/s, Wq = rho / (mu - lambda) = 4.67 ms.
# A Lindley-recursion estimate puts one run's relative standard deviation of the mean wait at 1.8% for
# 200,000 customers, so 4 replications of 60,000 give a standard error near 1.6%: ±5% is 3 of them.
RHO = 0.7
CPU_S = 0.002
REPLICATIONS = 4
PER_REPLICATION = 60_000
BATCHES = 10


def _mm1(rate: float, hold_s: float) -> tuple[float, float]:
    """(rho, mu - lambda) of the lock as an M/M/1 server."""
    mu = 1.0 / hold_s
    return rate / mu, mu - rate


def test_single_hot_key_lock_wait_matches_mm1() -> None:
    """Mean lock wait Wq = rho / (mu - lambda), P(wait) = rho and the tail P(Wq > t) = rho e^-(mu-lambda)t."""
    rate = RHO / CPU_S
    rho, gap = _mm1(rate, CPU_S + COMMIT_S)
    batch_means, waited, tail = [], [], []
    t = 0.010
    for seed in range(21, 21 + REPLICATIONS):
        waits, timed_out, _ = _lock_waits(
            _hot_key(rate, CPU_S, 5.0 + math.ceil(PER_REPLICATION / rate), seed)
        )
        assert not timed_out.any()
        size = waits.size // BATCHES
        batch_means.extend(waits[: size * BATCHES].reshape(BATCHES, -1).mean(axis=1))
        waited.append((waits > 0).mean())
        tail.append((waits > t).mean())
    batch = np.asarray(batch_means)
    mean_wait = batch.mean()
    rel_se = batch.std(ddof=1) / math.sqrt(batch.size) / mean_wait
    assert rel_se < 0.025, f"too little work for a ±5% comparison: relative SE {rel_se:.3f}"
    assert mean_wait == pytest.approx(rho / gap, rel=0.05)
    assert np.mean(waited) == pytest.approx(rho, rel=0.05)
    assert np.mean(tail) == pytest.approx(rho * math.exp(-gap * t), rel=0.10)


def test_lock_timeout_fraction_matches_mm1_with_deterministic_patience() -> None:
    """A waiter gives up after lock_timeout τ and adds no work to the lock, so the queue is M/M/1+D, not
    M/M/1: its offered wait V has density λ·P0·e^-(μ-λ)v below τ and λ·P0·e^λτ·e^-μv above, so
    P(give up) = P(V >= τ) = ρ(1-ρ)E / (1 - ρ²E) with E = e^-(μ-λ)τ (Barrer 1957). The plain M/M/1 tail ρE
    would be about three times larger here, so the check tells the two apart.
    """
    rate = RHO / CPU_S
    rho, gap = _mm1(rate, CPU_S + COMMIT_S)
    tau = 0.010
    e = math.exp(-gap * tau)
    expected = rho * (1 - rho) * e / (1 - rho**2 * e)
    assert rho * e > 2.5 * expected
    batch_fractions = []
    for seed in range(31, 33):
        waits, timed_out, _ = _lock_waits(
            _hot_key(rate, CPU_S, 5.0 + math.ceil(100_000 / rate), seed, tau * 1000)
        )
        size = timed_out.size // BATCHES
        batch_fractions.extend(timed_out[: size * BATCHES].reshape(BATCHES, -1).mean(axis=1))
        # nobody waits longer than the timeout, and those who gave up waited exactly that long
        assert waits.max() <= tau + 1e-9
        np.testing.assert_allclose(waits[timed_out], tau, rtol=1e-9)
    batch = np.asarray(batch_fractions)
    fraction = batch.mean()
    rel_se = batch.std(ddof=1) / math.sqrt(batch.size) / fraction
    assert rel_se < 0.04, f"too little work for a ±10% comparison: relative SE {rel_se:.3f}"
    assert fraction == pytest.approx(expected, rel=0.10)


# ----------------------------------------------------------------------------------------- DB load


@pytest.fixture(scope="module")
def contention() -> simdb.Result:
    return simdb.run("lock-contention-external-call", plots=False)


def test_db_load_obeys_littles_law(contention: simdb.Result) -> None:
    """Mean DBLoad = throughput × mean time in the DB (connection handed over to end), from the requests
    table; and the Client part = the rate of transactions that held × their hold + external call."""
    s = contention.scenario
    ts = contention.timeseries
    measured = s.duration - s.warmup
    first = round(s.warmup / s.timeseries_interval)
    load = ts["DBLoad"].to_numpy()[first:].mean()
    req = contention.requests
    window = req["t_arrive"] >= s.warmup
    in_db = (req["t_end"] - req["t_acquired"])[window]
    assert not in_db.isna().any()
    assert load == pytest.approx(window.sum() / measured * in_db.mean(), rel=0.02)
    # every pay_order that got its lock sat idle in its transaction for hold + external_call
    held = window & (req["query"] == "pay_order") & (req["code"] == "ok")
    client = ts["DBLoad.wait.Client"].to_numpy()[first:].mean()
    assert client == pytest.approx(held.sum() / measured * (0.002 + 0.250), rel=0.02)
    summary = contention.summary["db_load"]
    assert summary["mean"] == pytest.approx(load, abs=1e-6)
    assert summary["by_wait"]["Lock"] > summary["by_wait"]["Client"] > summary["by_wait"]["CPU"]
    assert list(summary["by_query"]) == ["pay_order", "read_cart"]
    assert summary["by_query"]["pay_order"] > 10 * summary["by_query"]["read_cart"]


def test_wait_classes_add_up_to_the_total(contention: simdb.Result) -> None:
    ts = contention.timeseries
    total = ts["DBLoad"].to_numpy()
    classes = sum(ts[f"DBLoad.wait.{w}"].to_numpy() for w in WAIT_CLASSES)
    np.testing.assert_allclose(classes, total, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ts["DBLoadCPU"] + ts["DBLoadNonCPU"], total, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ts["DBLoadCPU"], ts["DBLoad.wait.CPU"])
    for name in ("writer",):
        per = sum(ts[f"DBLoad.wait.{w}.{name}"].to_numpy() for w in WAIT_CLASSES)
        np.testing.assert_allclose(per, ts[f"DBLoad.{name}"], rtol=1e-12, atol=1e-12)
    assert (ts[[c for c in ts if c.startswith("DBLoad")]] >= -1e-9).all().all()
    db = contention.summary["db_load"]
    assert sum(db["by_wait"].values()) == pytest.approx(db["mean"], abs=5e-6)
    assert db["cpu"] + db["non_cpu"] == pytest.approx(db["mean"], abs=5e-6)
    assert sum(db["by_instance"].values()) == pytest.approx(db["mean"], abs=5e-6)


def test_fixed_transaction_boundary_removes_lock_and_client_load(contention: simdb.Result) -> None:
    fixed = simdb.run("lock-contention-fixed", plots=False).summary
    broken = contention.summary
    assert broken["requests"]["errors"]["lock_timeout"] > 0 == fixed["requests"]["errors"]["lock_timeout"]
    assert fixed["db_load"]["mean"] < broken["db_load"]["mean"] / 10
    # the same reads, the same CPU: only the transaction boundary moved
    assert fixed["db_load"]["by_wait"]["CPU"] == pytest.approx(broken["db_load"]["by_wait"]["CPU"], rel=0.05)


def test_no_lock_declared_means_no_lock_load_and_the_same_summary() -> None:
    """Without locks the lock machinery never runs, whatever lock_timeout says."""
    plain = simdb.run("quickstart", duration="60s", plots=False)
    assert plain.summary["db_load"]["by_wait"]["Lock"] == 0.0
    assert (plain.timeseries["DBLoad.wait.Lock"] == 0).all()
    with_timeout = simdb.run(
        "quickstart", duration="60s", plots=False, overrides=["cluster.parameters.lock_timeout=50"]
    )
    assert with_timeout.summary_json() == plain.summary_json()


def test_same_seed_same_summary_with_locks_and_events() -> None:
    raw = _events_scenario()
    first = simdb.run(raw, seed=5, plots=False).summary_json()
    assert simdb.run(raw, seed=5, plots=False).summary_json() == first
    assert simdb.run(raw, seed=6, plots=False).summary_json() != first


# ------------------------------------------------------------------------------------ lock events


def _events_scenario() -> dict[str, Any]:
    raw = single_instance(vcpu=16, rate=40, duration_s=60, warmup_s=0, pool=200, seed=2)
    raw["services"][0]["workload"] = [
        {
            "query": "pay",
            "kind": "write",
            "rate": 40,
            "cpu": "1ms",
            "keys": {"count": 20, "distribution": "zipf", "s": 1.2},
            "transaction": {"hold": "5ms", "locks": 1},
        }
    ]
    raw["events"] = [
        {"at": "20s", "action": "batch_update", "keys": 3, "duration": "4s"},
        {
            "at": "40s",
            "action": "long_transaction",
            "service": "api",
            "sessions": 2,
            "keys": 2,
            "duration": "3s",
        },
    ]
    return raw


def test_batch_update_and_long_transaction_block_the_rows_they_lock() -> None:
    r = simdb.run(_events_scenario(), plots=False)
    ev = r.events
    held = ev[ev["kind"] == "locks_held"]["time_s"].to_numpy()
    released = ev[ev["kind"] == "locks_released"]["time_s"].to_numpy()
    assert held.size == released.size == 3  # the batch, then two long-transaction sessions
    req = r.requests
    ok = req["code"] == "ok"
    # the batch holds keys 0..2; long-transaction session 0 keys 0..1, session 1 keys 2..3
    for start, end, keys in (
        (held[0], released[0], (0, 1, 2)),
        (held[1:].max(), released[1:].min(), (0, 1, 2, 3)),
    ):
        during = ok & (req["t_acquired"] > start) & (req["t_acquired"] < end)
        blocked = during & req["key"].isin(keys)
        free = during & ~req["key"].isin(keys)
        assert blocked.sum() > 20 and free.sum() > 5
        # a blocked request starts only once the locks are released; the first of them exactly then
        started = req.loc[blocked, "t_start"]
        assert started.min() == pytest.approx(end, abs=1e-9)
        assert (started >= end - 1e-9).all()
        assert (req.loc[free, "t_start"] - req.loc[free, "t_acquired"]).max() < 0.1
    # while a row is locked its waiters are Lock load; the busy batch itself adds none
    ts = r.timeseries.set_index("time_s")
    assert ts.loc[21:23, "DBLoad.wait.Lock"].min() > 1
    assert ts.loc[5:15, "DBLoad.wait.Lock"].max() < 0.5
    sessions = r.summary["transactions"]["held_sessions"]
    assert [(h["action"], h["keys"], h["ended"]) for h in sessions] == [
        ("batch_update", 3, {"ok": 1}),
        ("long_transaction", 2, {"ok": 2}),
    ]


def test_idle_timeout_ends_a_transaction_and_frees_its_lock() -> None:
    """A hold longer than idle_in_transaction_session_timeout: the server ends the session and its row lock
    passes on at once, not when the app would have committed."""
    raw = single_instance(vcpu=4, rate=1, duration_s=30, warmup_s=0, seed=3, pool=10)
    raw["services"][0]["workload"] = [
        {
            "query": "slow",
            "kind": "write",
            "rate": "0.5/s",
            "arrival": "constant",
            "cpu": "1ms",
            "cpu_distribution": "constant",
            "keys": {"count": 1},
            "transaction": {"external_call": "10s", "locks": 1},
        }
    ]
    raw["cluster"]["parameters"]["idle_in_transaction_session_timeout"] = 5000
    req = simdb.run(raw, plots=False).requests.sort_values("t_arrive")
    first, second = req.iloc[0], req.iloc[1]
    assert first["code"] == second["code"] == "connection_lost"
    # the first took the lock at 2 s, ran 1 ms, went idle and was ended 5 s later; the second, waiting
    # since 4 s, got the lock then (not when the first's 10 s call would have ended)
    assert first["t_start"] == pytest.approx(2.0, abs=1e-9)
    assert second["t_start"] == pytest.approx(first["t_start"] + 0.001 + 5.0, abs=1e-9)


def test_many_locks_in_ascending_order_never_deadlock() -> None:
    """Transactions lock 3 of 6 keys each, in key order, with no lock_timeout: all of them finish."""
    raw = single_instance(vcpu=8, rate=150, duration_s=60, warmup_s=5, seed=4, pool=100)
    raw["services"][0]["workload"][0].update(
        kind="write", keys={"count": 6}, transaction={"hold": "2ms", "locks": 3}
    )
    r = simdb.run(raw, plots=False)
    s = r.summary
    assert s["requests"]["failed"] == 0
    assert s["requests"]["in_flight_at_end"] < 20
    assert s["db_load"]["by_wait"]["Lock"] > 0.1  # they did contend
    assert s["requests"]["throughput_per_s"] == pytest.approx(150, rel=0.05)


def test_mysql_waits_innodb_lock_wait_timeout_50s_by_default() -> None:
    raw = single_instance(vcpu=4, rate=2, duration_s=120, warmup_s=0, seed=6, pool=200)
    raw["cluster"]["engine"] = "mysql"
    raw["services"][0]["workload"][0].update(kind="write", keys={"count": 1}, transaction={"locks": 1})
    raw["events"] = [{"at": "10s", "action": "batch_update", "keys": 1, "duration": "100s"}]
    req = simdb.run(raw, plots=False).requests
    timed_out = req[req["code"] == "lock_timeout"]
    assert len(timed_out) > 50
    np.testing.assert_allclose(timed_out["t_end"] - timed_out["t_acquired"], 50.0, rtol=1e-9)


def test_failover_drops_the_old_writers_locks() -> None:
    """Lock waiters on a failed writer fail connection_lost; the new writer starts with no locks."""
    raw = {
        "name": "locks-failover",
        "seed": 8,
        "duration": "90s",
        "cluster": {"topology": "aurora", "readers": [{"az": "b"}]},
        "services": [
            {
                "name": "api",
                "tasks": 2,
                "pool": {"max_size": 20},
                "dns_cache": "0s",
                "workload": [
                    {
                        "query": "pay",
                        "kind": "write",
                        "rate": 10,
                        "cpu": "1ms",
                        "keys": {"count": 3},
                        "transaction": {"external_call": "100ms", "locks": 1},
                    }
                ],
            }
        ],
        # the batch holds key 0 from 25 s to 35 s: at the failover (30 s) requests for it are queued
        "events": [
            {"at": "25s", "action": "batch_update", "keys": 1, "duration": "10s"},
            {"at": "30s", "action": "failover"},
        ],
    }
    r = simdb.run(raw, plots=False)
    req = r.requests
    queued = (req["code"] == "connection_lost") & (req["key"] == 0) & req["t_acquired"].between(25, 30)
    assert queued.sum() >= 10
    assert r.summary["transactions"]["held_sessions"][0]["ended"] == {"connection_lost": 1}
    late = req[req["t_arrive"] > 70]
    assert (late["code"] == "ok").all() and len(late) > 100
    ts = r.timeseries.set_index("time_s")
    assert ts.loc[27:29, "DBLoad.wait.Lock"].min() > 3
    # the waiters left the Lock load when the writer failed; none is left counted on either instance
    assert ts.loc[31:44, "DBLoad.wait.Lock"].max() == 0
    before, after = ts.loc[5:24, "DBLoad.wait.Lock"].mean(), ts.loc[70:, "DBLoad.wait.Lock"].mean()
    assert before > 0.02 and abs(after - before) < 0.5 * before


def test_db_load_plot_is_drawn_for_lock_runs(tmp_path: Path, contention: simdb.Result) -> None:
    contention.save(tmp_path / "run", plots=True)
    png = tmp_path / "run" / "plots" / "db_load.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_snapshot_summary_has_db_load_zeros() -> None:
    summary = Analysis(Sim(from_raw(_events_scenario())).snapshot()).summary()
    assert summary["db_load"]["mean"] == 0.0
    assert set(summary["db_load"]["by_wait"]) == set(WAIT_CLASSES)
