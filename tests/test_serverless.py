"""Aurora Serverless v2: capacity range and steps, ACU-hours, the scaling rule, idle-in-transaction sessions
and their timeout, max_connections by maximum ACU, auto-pause and resume, tier 0-1 readers, cost."""

from __future__ import annotations

import math

import numpy as np
import pytest

import simdb
from simdb import scenario as sc
from simdb.catalog import INSTANCE_CLASSES, serverless_max_connections
from simdb.engine import simulate


def build(**over):
    """A one-writer Serverless v2 cluster with an API fleet; ``over`` are --set style overrides."""
    raw = {
        "name": "sv",
        "seed": 1,
        "duration": "20min",
        "cluster": {
            "engine": "aurora-postgresql",
            "writer": {"class": "db.serverless"},
            "serverless": {"min_acu": 0.5, "max_acu": 16},
        },
        "services": [
            {
                "name": "api",
                "tasks": 4,
                "pool": {"max_size": 10},
                "workload": [
                    {
                        "query": "q",
                        "cpu": "100ms",
                        "schedule": [
                            {"at": 0, "rate": 2},
                            {"at": "5min", "rate": 20},
                            {"at": "12min", "rate": 2},
                        ],
                    }
                ],
            }
        ],
    }
    return sc.from_raw(raw, overrides=[f"{k}={v}" for k, v in over.items()])


def steps(raw_run, name="writer"):
    log = raw_run.extra["serverless"]["instances"][name]
    return np.frombuffer(log["acu_t"], dtype=np.float64), np.frombuffer(log["acu_v"], dtype=np.float64)


# ------------------------------------------------------------------------------------------ capacity


@pytest.mark.parametrize(
    "name", ["serverless-idle-in-transaction", "serverless-idle-fixed", "serverless-autopause"]
)
def test_capacity_stays_in_range_in_half_acu_steps_and_acu_hours_integrate_the_timeseries(name) -> None:
    s = simdb.load_scenario(name)
    raw = simulate(s)
    t, v = steps(raw)
    low, high = s.cluster.serverless.min_acu, s.cluster.serverless.max_acu
    assert np.all(v >= low) and np.all(v <= high)
    assert np.all(np.abs(v * 2 - np.round(v * 2)) < 1e-12), "capacity moves in 0.5 ACU steps"
    assert np.all(np.diff(t) >= 0)
    result = simdb.run(name)
    ts = result.timeseries
    interval = s.timeseries_interval
    from_ts = ts["ServerlessDatabaseCapacity.writer"].sum() * interval / 3600.0
    assert result.summary["serverless"]["acu_hours"] == pytest.approx(from_ts, rel=1e-6, abs=1e-6)
    price = s.cluster.serverless.price_per_acu_hour
    assert result.summary["serverless"]["cost_usd"] == pytest.approx(from_ts * price, rel=1e-6, abs=1e-6)
    # ACUUtilization is capacity over the maximum (FACTS: acu.metrics)
    np.testing.assert_allclose(ts["ACUUtilization"], 100 * ts["ServerlessDatabaseCapacity"] / high)


def rule_time(start: float, target: float, scaling) -> float:
    """Seconds the scaling rule takes from ``start`` to ``target`` ACU, stepping its interval."""
    level, t = start, 0.0
    while level < target - 1e-9:
        level = min(
            target, level + max(scaling.scale_up_rate * level, scaling.scale_up_min) * scaling.interval
        )
        t += scaling.interval
    return t


def test_a_load_step_raises_capacity_at_the_rules_rate_and_latency_recovers_within_a_minute() -> None:
    s = build()
    result = simdb.run(s)
    raw = simulate(s)
    t, v = steps(raw)
    step_at = 300.0
    scaling = s.cluster.serverless.scaling
    # 20/s x 100 ms = 2 vCPU of work; at 0.25 vCPU per ACU and a 70% target that is 11.43 -> 11.5 ACU
    need = 2.0 / (s.cluster.serverless.vcpu_per_acu * scaling.target_cpu)
    before = v[np.searchsorted(t, step_at, side="right") - 1]
    reached = t[(t > step_at) & (v >= need)][0]
    # the work is averaged over cpu_window, so the target lags by up to that; then the rule's own pace
    bound = scaling.cpu_window + rule_time(before, need, scaling) + 2 * scaling.interval
    assert reached - step_at <= bound, (reached - step_at, bound)
    assert reached - step_at >= rule_time(before, need, scaling) - scaling.interval, "no faster than the rule"

    req = result.requests
    lat = req["t_end"] - req["t_arrive"]
    ok = req["code"] == "ok"

    def p95(a, b):
        m = ok & (req["t_arrive"] >= a) & (req["t_arrive"] < b)
        return float(np.percentile(lat[m], 95))

    hurt = p95(step_at, step_at + 20)
    recovered = p95(step_at + 60, step_at + 240)
    steady = p95(step_at + 240, 720)
    assert hurt > 3 * steady, "the step overloads the small instance at first"
    assert recovered < 1.5 * steady, "within 60 s of the step latency is back to the peak's steady state"


@pytest.mark.parametrize("seed", [7, 8])
def test_capacity_returns_toward_min_with_the_timeout_but_not_with_idle_sessions(seed) -> None:
    idle = simdb.run("serverless-idle-in-transaction", seed=seed).summary
    fixed = simdb.run("serverless-idle-fixed", seed=seed).summary
    assert idle["serverless"]["peak_acu"] == pytest.approx(fixed["serverless"]["peak_acu"], abs=2)
    assert idle["serverless"]["final_acu"] >= 10, "pinned near the peak off-hours"
    assert fixed["serverless"]["final_acu"] <= 2, "back toward min_acu"
    assert idle["serverless"]["pinned_s"] > 3600 and fixed["serverless"]["pinned_s"] <= 60
    assert fixed["serverless"]["cost_usd"] < 0.6 * idle["serverless"]["cost_usd"]
    # Detect: off-hours, capacity high while CPU and connections are low
    assert idle["transactions"]["held_sessions"][0]["began"] == 3


def test_a_transaction_open_longer_than_pin_after_holds_the_capacity_it_began_under() -> None:
    # load steps down at 12 min; a long transaction begins at 10 min, at peak capacity, for 5 min
    s = build(**{"events": "[{at: 10min, action: long_transaction, service: api, duration: 5min}]"})
    raw = simulate(s)
    t, v = steps(raw)
    at_start = v[np.searchsorted(t, 600.0, side="right") - 1]
    held = v[(t >= 12 * 60) & (t < 15 * 60)]
    assert held.min() >= at_start, "no scale-down below the capacity the transaction began under"
    after = v[np.searchsorted(t, 19 * 60, side="right") - 1]
    assert after < at_start / 2, "once it ends, capacity follows the load down"
    # the same run without it scales down while the load is low
    t0, v0 = steps(simulate(build()))
    assert v0[(t0 >= 14 * 60) & (t0 < 15 * 60)].max() < at_start


# --------------------------------------------------------------------------- idle in transaction


def test_sessions_idle_longer_than_the_timeout_are_ended_exactly_then() -> None:
    s = build(
        **{
            "cluster.parameters.idle_in_transaction_session_timeout": 45000,
            "events": "[{at: 8min, action: idle_in_transaction, service: api, sessions: 4, for: 2min},"
            " {at: 9min, action: idle_in_transaction, service: api, sessions: 2, for: 30s},"
            " {at: 9min, action: long_transaction, service: api, duration: 3min}]",
        }
    )
    result = simdb.run(s)
    held = result.summary["transactions"]["held_sessions"]
    assert held[0]["terminated"] == 4 and held[0]["terminated_after_s"] == [45.0] * 4
    assert held[0]["ended"] == {"connection_lost": 4}, "the app's commit finds the session gone"
    assert held[1]["terminated"] == 0 and held[1]["ended"] == {"ok": 2}, "30 s < 45 s: committed"
    assert held[2]["terminated"] == 0 and held[2]["ended"] == {"ok": 1}, "a busy transaction is not idle"
    raw = simulate(s)
    log = raw.extra["sessions"][0]
    for began, ended in log["terminated"]:
        assert ended - began == pytest.approx(45.0, abs=1e-9)
    events = result.events
    assert (events["kind"] == "session_terminated").sum() == 4
    assert result.summary["transactions"]["terminated"] == 4


@pytest.mark.parametrize(("timeout_ms", "lost"), [(2000, True), (10000, False)])
def test_the_timeout_ends_query_transactions_that_idle_longer(timeout_ms, lost) -> None:
    """A query whose transaction idles 5 s (app work) on a provisioned PostgreSQL writer."""
    raw = {
        "name": "idle-query",
        "seed": 2,
        "duration": "2min",
        "cluster": {"parameters": {"idle_in_transaction_session_timeout": timeout_ms}},
        "services": [
            {
                "name": "api",
                "pool": {"max_size": 50},
                "workload": [{"query": "w", "kind": "write", "rate": 2, "transaction": {"hold": "5s"}}],
            }
        ],
    }
    s = sc.from_raw(raw)
    result = simdb.run(s)
    req = result.requests
    done = req[req["t_arrive"] < 100]
    assert len(done) > 100
    if lost:
        # every transaction is ended 2 s into its 5 s idle; the commit then fails connection_lost
        assert (done["code"] == "connection_lost").all()
        sim_raw = simulate(s)
        ended = np.asarray(sim_raw.extra["terminated"]["writer"])
        assert len(ended) >= len(done)
        assert result.summary["transactions"]["terminated"] == len(ended)
    else:
        assert (done["code"] == "ok").all()
        assert result.summary["transactions"]["terminated"] == 0


# ------------------------------------------------------------------------------ max_connections


@pytest.mark.parametrize(
    ("engine", "min_acu", "max_acu", "expected"),
    [
        ("aurora-postgresql", 1, 1, 189),
        ("aurora-postgresql", 1, 4, 823),
        ("aurora-postgresql", 1, 8, 1669),
        ("aurora-postgresql", 1, 16, 3360),
        ("aurora-postgresql", 1, 64, 5000),
        ("aurora-postgresql", 0.5, 16, 2000),
        ("aurora-postgresql", 0.5, 8, 1669),
        ("aurora-mysql", 1, 1, 90),
        ("aurora-mysql", 1, 4, 135),
        ("aurora-mysql", 1, 8, 1000),
        ("aurora-mysql", 1, 32, 3000),
        ("aurora-mysql", 1, 128, 5000),
    ],
)
def test_max_connections_follow_the_maximum_acu_table(engine, min_acu, max_acu, expected) -> None:
    assert serverless_max_connections(engine, min_acu, max_acu) == expected
    s = build(
        **{
            "cluster.engine": engine,
            "cluster.serverless": f"{{min_acu: {min_acu}, max_acu: {max_acu}}}",
            "duration": "10s",
        }
    )
    summary = simdb.run(s).summary
    assert summary["connections"]["max_connections"]["writer"] == expected
    # fixed by the maximum, whatever the capacity is now
    assert summary["serverless"]["min_acu"] < max_acu or max_acu == min_acu


# ---------------------------------------------------------------------------------- auto-pause


def test_auto_pause_after_the_idle_time_and_the_first_connection_waits_for_resume() -> None:
    s = simdb.load_scenario("serverless-autopause")
    result = simdb.run(s)
    raw = simulate(s)
    ev = result.events
    paused = ev.loc[ev["kind"] == "acu_paused", "time_s"].to_numpy()
    resuming = ev.loc[ev["kind"] == "acu_resuming", "time_s"].to_numpy()
    resumed = ev.loc[ev["kind"] == "acu_resumed", "time_s"].to_numpy()
    assert len(paused) == len(resuming) == len(resumed) == 1
    conn = raw.recorder.connections()
    closes = conn["t"][(conn["kind"] == 2) & (conn["t"] < paused[0])]
    wait = s.cluster.serverless.seconds_until_auto_pause
    assert paused[0] == pytest.approx(closes.max() + wait, abs=1e-9), "pauses exactly after the idle time"
    assert resumed[0] - resuming[0] == pytest.approx(s.cluster.serverless.resume, abs=1e-9)
    assert resuming[0] == pytest.approx(40 * 60, abs=2.0), "the first attempt after 40 min resumes it"
    # no connection opened while paused; the first one after it opened only when the resume finished
    opened = conn["t"][conn["kind"] == 0]
    assert not ((opened > paused[0]) & (opened < resumed[0])).any()
    assert opened[opened >= resumed[0]].min() == pytest.approx(resumed[0], abs=1e-9)
    # the driver's 10 s connect timeout ran out once while it resumed
    timed_out = conn["t"][conn["kind"] == 4]
    assert len(timed_out) == 1 and timed_out[0] == pytest.approx(resuming[0] + 10.0, abs=0.01)
    t, v = steps(raw)
    assert v[np.searchsorted(t, (paused[0] + resuming[0]) / 2, side="right") - 1] == 0
    summary = result.summary["serverless"]
    assert summary["paused_s"] == pytest.approx(resumed[0] - paused[0], abs=1e-6)
    first = result.requests[result.requests["t_arrive"] >= 40 * 60].iloc[0]
    assert first["t_end"] - first["t_arrive"] >= s.cluster.serverless.resume - 0.5


def test_a_pool_that_keeps_idle_connections_never_lets_it_pause() -> None:
    s = simdb.load_scenario("serverless-autopause", overrides=["services.backoffice.pool.min_idle=2"])
    summary = simdb.run(s).summary["serverless"]
    assert summary["pauses"] == 0 and summary["paused_s"] == 0


# ------------------------------------------------------------------------------------ readers


def test_tier_0_1_readers_follow_the_writer_and_others_scale_alone() -> None:
    s = build(
        **{
            "cluster.readers": "[{class: db.serverless, tier: 1, az: b}, {class: db.serverless, tier: 2, az: c}]",
        }
    )
    raw = simulate(s)
    tw, vw = steps(raw, "writer")
    t1, v1 = steps(raw, "reader-1")
    t2, v2 = steps(raw, "reader-2")
    grid = np.arange(0, 1200, 5.0) + 2.5

    def at(t, v):
        return v[np.searchsorted(t, grid, side="right") - 1]

    writer, tier1, tier2 = at(tw, vw), at(t1, v1), at(t2, v2)
    assert writer.max() >= 11.5
    # a tier-1 reader, idle itself, keeps (within a step) the writer's capacity, so it can take over
    assert (tier1 >= writer - 0.5).all()
    assert tier1.max() >= 11.5
    assert tier2.max() == 0.5, "an idle tier-2 reader stays at min_acu"


# --------------------------------------------------------------------------------------- cost


def test_cost_compares_with_the_provisioned_class_of_the_peak_memory() -> None:
    summary = simdb.run("serverless-daily-cycle").summary["serverless"]
    prov = summary["provisioned"]
    peak_gib = 2 * summary["peak_acu"]
    memory = INSTANCE_CLASSES[prov["instance_classes"]["writer"]].memory_gib
    assert memory >= peak_gib and memory / 2 < peak_gib, "the smallest r6g class that holds the peak"
    assert prov["cost_usd"] == pytest.approx(memory * 0.01625 * 24, rel=1e-6)
    assert prov["saving_usd"] == pytest.approx(prov["cost_usd"] - summary["cost_usd"], abs=1e-5)
    assert math.isclose(summary["cost_usd"], summary["acu_hours"] * 0.12, rel_tol=1e-5)


def test_pinned_time_counts_only_the_measured_window() -> None:
    # the sessions go idle at 55 min and pin from 55.5 min: a 1 h warm-up cuts at most the 270 s up to 1 h
    full = simdb.run("serverless-idle-in-transaction").summary["serverless"]["pinned_s"]
    cut = simdb.run("serverless-idle-in-transaction", overrides=["warmup=1h"]).summary["serverless"]
    assert 0 < full - cut["pinned_s"] <= 3600 - (55 * 60 + 30)
    assert cut["pinned_s"] <= 3 * 3600 - 3600
