"""Connection storms from ECS fleets: pool lifetimes without HikariCP's variation retire together."""

from __future__ import annotations

import numpy as np

import simdb

LIFETIME_S = 300.0
CONNECTIONS = 40 * 20


def _run(jitter: float, seed: int) -> simdb.Result:
    return simdb.run(
        "maxlifetime-waves",
        overrides=[f"services.api.pool.max_lifetime_jitter={jitter}", "duration=330s"],
        seed=seed,
        plots=False,
    )


def test_synchronized_lifetimes_reopen_every_connection_in_one_wave() -> None:
    result = _run(0.0, seed=0)
    ts = result.timeseries
    # all 800 were opened within the first second, so all reopen within a second of the lifetime
    wave = ts[(ts["time_s"] >= LIFETIME_S) & (ts["time_s"] < LIFETIME_S + 2)]["ConnectionAttempts"].sum()
    assert wave == CONNECTIONS
    before = ts[(ts["time_s"] >= 60) & (ts["time_s"] < LIFETIME_S)]["ConnectionAttempts"].sum()
    assert before == 0
    assert LIFETIME_S <= result.summary["connections"]["attempts_peak_at_s"] < LIFETIME_S + 1


def test_lifetime_variation_spreads_the_wave_at_least_threefold() -> None:
    ratios = []
    for seed in range(5):
        synced, spread = _run(0.0, seed), _run(0.025, seed)
        ratios.append(
            synced.summary["connections"]["attempts_peak_per_s"]
            / spread.summary["connections"]["attempts_peak_per_s"]
        )
        # HikariCP shortens each lifetime by up to 2.5%: the wave spans the 7.5 s before the lifetime
        at = spread.summary["connections"]["attempts_peak_at_s"]
        assert LIFETIME_S * (1 - 0.025) <= at < LIFETIME_S + 1
        assert spread.summary["latency_ms"]["max"] < synced.summary["latency_ms"]["max"]
    assert min(ratios) >= 3.0, ratios
    assert np.mean(ratios) >= 3.5, ratios
