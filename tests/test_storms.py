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


def _outage(breaker: dict | None) -> simdb.Result:
    """Ten tasks keep sending reads (with retries) at a single-AZ writer that is down for a minute."""
    service = {
        "name": "api",
        "tasks": 10,
        "pool": {"max_size": 10, "connection_timeout": "5s"},
        "workload": [{"query": "q", "rate": "200/s", "cpu": "1ms", "retries": 3}],
    }
    if breaker is not None:
        service["circuit_breaker"] = breaker
    return simdb.run(
        {
            "name": "outage",
            "seed": 5,
            "duration": "150s",
            "cluster": {
                "engine": "postgres",
                "topology": "single-az",
                "failover": {"detection": "5s", "recovery": "60s"},
            },
            "services": [service],
            "events": [{"at": "30s", "action": "instance_failure"}],
        },
        plots=False,
    )


def test_circuit_breaker_fails_fast_during_an_outage_and_closes_after_it() -> None:
    plain = _outage(None)
    guarded = _outage({"failures": 5, "open_for": "5s"})
    back = guarded.summary["failovers"][0]["writer_available_s"]
    assert back == plain.summary["failovers"][0]["writer_available_s"] == 90.0
    r = guarded.requests
    fast = r[r["code"] == "circuit_open"]
    assert len(fast) > 1000
    # rejected without trying (a few are retries of requests that failed before the breaker opened)
    assert ((fast["t_end"] - fast["t_arrive"]) == 0).mean() > 0.9
    assert guarded.summary["connections"]["circuit_breakers_opened"] == 10
    # failures wait for the pool's connection_timeout without a breaker, and return at once with one
    failed_plain = plain.requests[plain.requests["code"] != "ok"]
    failed_guarded = r[r["code"] != "ok"]
    assert (failed_guarded["t_end"] - failed_guarded["t_arrive"]).mean() < 0.1 * (
        failed_plain["t_end"] - failed_plain["t_arrive"]
    ).mean()
    # retries stop piling on: a request refused by an open breaker is not retried
    assert guarded.summary["requests"]["retries"] < 0.2 * plain.summary["requests"]["retries"]
    # every task's breaker closes on its first trial after the writer is back
    events = guarded.events
    closed = events[events["kind"] == "circuit_closed"]
    assert len(closed) == 10
    assert (closed["time_s"] < back + 5.0 + 1.0).all()
    assert (r[r["t_arrive"] > back + 7.0]["code"] == "ok").all()


def test_a_lambda_burst_is_one_storm_of_rejections() -> None:
    summary = simdb.run("lambda-burst-direct", plots=False).summary
    storms = summary["connections"]["storms"]
    assert len(storms) == 1
    storm = storms[0]
    assert 60.0 <= storm["start_s"] < 61.0  # the burst starts at 1 min
    assert 60.0 <= storm["attempts_peak_at_s"] < 90.0
    assert storm["attempts_peak_per_s"] >= 1000
    assert storm["rejected"] == summary["connections"]["rejected"]
    # it outlasts the 30 s burst: frozen environments keep every connection, so an environment that
    # never got one is refused again each time it is reused
    assert storm["end_s"] > 100.0
