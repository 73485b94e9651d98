"""Client pool semantics (HikariCP): waits, acquire timeouts, fill, lifetime spread."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import single_instance

from simdb.engine import simulate
from simdb.record import CODE, CONN_CLOSED, CONN_OPENED
from simdb.scenario import from_raw

TIMEOUT = CODE["acquire_timeout"]


def _pool_scenario(*, arrival: str, rate: float, duration_s: float, seed: int = 3) -> dict:
    """Pool of 2, 0.9 s constant queries, 0.6 s connection_timeout, free connection setup, idle vCPUs."""
    raw = single_instance(
        vcpu=64, rate=rate, cpu_s=0.9, duration_s=duration_s, warmup_s=0.0, pool=2, seed=seed
    )
    raw["cluster"]["connection"] = {"setup": 0, "setup_cpu": 0}
    raw["services"][0]["pool"]["connection_timeout"] = 0.6
    raw["services"][0]["workload"][0].update(cpu_distribution="constant", arrival=arrival)
    return raw


def test_hand_computed_waits_and_timeouts() -> None:
    """Arrivals every 0.25 s, two connections each busy 0.9 s, borrowers give up after 0.6 s.

    r1 0.25 → A until 1.15; r2 0.50 → B until 1.40; r3 0.75 waits for A (0.40); r4 1.00 waits for B (0.40);
    r5 1.25 would wait until 2.05 > 1.85: times out; r6 1.50 gets r3's at 2.05 (0.55); r7 1.75 gets r4's at
    2.30 (0.55); r8 2.00 and r9 2.25 time out (next free 2.95); r10 2.50 → 2.95 (0.45); r11 2.75 → 3.20 (0.45).
    """
    raw = simulate(from_raw(_pool_scenario(arrival="constant", rate=4.0, duration_s=5.0)))
    c = raw.recorder.requests()
    order = np.argsort(c["t_arrive"])[:11]
    arrive, acquired, end, code = (c[k][order] for k in ("t_arrive", "t_acquired", "t_end", "code"))
    np.testing.assert_allclose(arrive, 0.25 * np.arange(1, 12), atol=1e-9)
    waits = acquired - arrive
    expected = [0, 0, 0.4, 0.4, None, 0.55, 0.55, None, None, 0.45, 0.45]
    for i, want in enumerate(expected):
        if want is None:
            assert code[i] == TIMEOUT, f"r{i + 1} should time out"
            assert end[i] - arrive[i] == pytest.approx(0.6), (
                "a borrower gives up exactly at connection_timeout"
            )
        else:
            assert code[i] == 0, f"r{i + 1} should succeed"
            assert waits[i] == pytest.approx(want, abs=1e-9)
            assert end[i] - acquired[i] == pytest.approx(0.9, abs=1e-9)


def _reference_fifo_pool(
    arrive: np.ndarray, k: int, service: float, timeout: float
) -> tuple[np.ndarray, np.ndarray]:
    """Slow reference: k connections, FIFO borrowers who leave after ``timeout``; returns (start, served)."""
    free = [0.0] * k
    start = np.full(arrive.size, np.nan)
    served = np.zeros(arrive.size, dtype=bool)
    for i, t in enumerate(arrive):
        j = int(np.argmin(free))
        begin = max(t, free[j])
        if begin - t < timeout:
            start[i] = begin
            served[i] = True
            free[j] = begin + service
    return start, served


def test_random_arrivals_match_a_reference_fifo_pool() -> None:
    raw = simulate(from_raw(_pool_scenario(arrival="poisson", rate=2.5, duration_s=900.0)))
    c = raw.recorder.requests()
    done = c["t_end"] < 899.0  # requests still in flight at the end are not recorded
    order = np.argsort(c["t_arrive"])
    arrive = c["t_arrive"][order]
    start, served = _reference_fifo_pool(arrive, k=2, service=0.9, timeout=0.6)
    keep = done[order]
    assert keep.sum() > 2000
    assert served[keep].sum() > 500 and (~served[keep]).sum() > 100, "the case must exercise both outcomes"
    np.testing.assert_array_equal(c["code"][order][keep] == 0, served[keep])
    np.testing.assert_allclose(c["t_acquired"][order][keep & served], start[keep & served], atol=1e-9)


def _lifetimes(jitter: float, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(open time, first retirement) of the 40 connections a pool opens at start, matched by connection id."""
    raw = single_instance(vcpu=8, rate=50, duration_s=100, warmup_s=0, pool=40, seed=seed)
    raw["services"][0]["pool"].update(max_lifetime=60, max_lifetime_jitter=jitter)
    raw["cluster"]["connection"] = {"setup": 0.005, "setup_cpu": 0}  # lifetime starts when the server accepts
    run = simulate(from_raw(raw))
    log = run.recorder.connections()
    opened = log["kind"] == CONN_OPENED
    first = np.sort(log["id"][opened])[:40]
    open_t = log["t"][opened][np.searchsorted(log["id"][opened], first)]
    closed = log["kind"] == CONN_CLOSED
    close_ids, close_t = log["id"][closed], log["t"][closed]
    order = np.argsort(close_ids)
    close_at = close_t[order][np.searchsorted(close_ids[order], first)]
    return open_t, close_at


def test_max_lifetime_variation_spreads_reconnects() -> None:
    opened, closed = _lifetimes(jitter=0.025)
    lifetimes = closed - opened
    # HikariCP shortens each lifetime by a uniform draw of up to 2.5%: U(58.5 s, 60 s), mean 59.25 s, sd 0.43 s
    assert lifetimes.min() >= 58.5 - 1e-9 and lifetimes.max() <= 60.0 + 1e-9
    assert lifetimes.mean() == pytest.approx(59.25, abs=0.25)
    assert lifetimes.std() == pytest.approx(1.5 / np.sqrt(12), rel=0.35)

    opened0, closed0 = _lifetimes(jitter=0.0)
    # without variation every connection retires exactly 60 s after it opened: the fill order repeats as a wave
    np.testing.assert_allclose(closed0 - opened0, 60.0, atol=1e-9)
    assert (closed0.max() - closed0.min()) < (closed.max() - closed.min()) / 5


def test_idle_timeout_shrinks_the_pool_to_min_idle_and_no_further() -> None:
    """A burst needs all 10 connections; afterwards HikariCP retires idle ones beyond min_idle after
    idle_timeout (checked every 30 s). Four users keep 4 connections busy throughout: the housekeeper must
    leave min_idle *idle* connections beside them (9 in all), not shrink the total to min_idle and reopen."""
    raw = single_instance(vcpu=16, rate=1, duration_s=900, warmup_s=0, pool=10, seed=4)
    raw["services"][0]["pool"].update(min_idle=5, idle_timeout="60s", max_lifetime=0)
    raw["services"][0]["workload"] = [
        {"query": "steady", "users": 4, "think": "1ms", "cpu": "1ms", "transaction": {"hold": "1s"}},
        {
            "query": "burst",
            "rate": "0.001/s",
            "bursts": [{"at": "30s", "rate": "400/s", "for": "20s"}],
            "cpu": "1ms",
            "transaction": {"hold": "50ms"},
        },
    ]
    run = simulate(from_raw(raw))
    conns = run.samples["DatabaseConnections.writer"]
    assert conns[45] == pytest.approx(10), "the burst uses the whole pool"
    # idle since ~50 s: retired by a housekeeping pass between 110 s and 140 s, down to 4 busy + 5 idle
    assert conns[150:].max() == pytest.approx(9)
    log = run.recorder.connections()
    late = log["t"] > 150
    assert (log["kind"][late] == CONN_OPENED).sum() == 0, "no close-and-reopen churn"
    assert (log["kind"][late] == CONN_CLOSED).sum() == 0
