"""Lambda: the scaling rate, reserved and account concurrency, throttles, cold starts and frozen
environments that keep their connections."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import simdb
from simdb import scenario as sc
from simdb.analysis.steps import level_at, sorted_levels
from simdb.engine import RawRun, simulate
from simdb.record import CODE


def function(
    *,
    invocations: dict[str, Any],
    handler: dict[str, Any] | None = None,
    duration_s: float = 60.0,
    seed: int = 3,
    account: int = 1000,
    max_connections: int = 5000,
    **service: Any,
) -> dict[str, Any]:
    return {
        "name": "fn",
        "seed": seed,
        "duration": duration_s,
        "cluster": {"writer": {"vcpu": 256}, "parameters": {"max_connections": max_connections}},
        "account": {"lambda_concurrency": account},
        "services": [
            {
                "name": "fn",
                "kind": "lambda",
                "invocations": invocations,
                "handler": {"query": "h", "cpu": "1ms", **(handler or {})},
                **service,
            }
        ],
    }


def run_raw(data: dict[str, Any]) -> RawRun:
    return simulate(sc.validate(data))


def concurrency(raw: RawRun) -> tuple[np.ndarray, np.ndarray]:
    log = raw.extra["lambda"]["fn"]
    return sorted_levels(log["conc_t"], log["conc_delta"])


def window_low(t: np.ndarray, level: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Lowest level of the step function on [at - 10 s, at] (brute force over the change points)."""
    start = level_at(t, level, at - 10.0)
    lo = np.searchsorted(t, at - 10.0, side="right")
    hi = np.searchsorted(t, at, side="right")
    prefix_free = [level[a:b].min() if b > a else np.inf for a, b in zip(lo, hi, strict=True)]
    return np.minimum(start, np.asarray(prefix_free))


def test_concurrency_never_rises_more_than_1000_per_10_s() -> None:
    # 5,000 invocations/s of 4 s each want 20,000 concurrent executions at once; the account allows 20,000
    raw = run_raw(
        function(
            invocations={"rate": "5000/s"},
            work="4s",
            account=20_000,
            duration_s=45.0,
        )
    )
    t, level = concurrency(raw)
    rise = level - window_low(t, level, t)
    assert rise.max() <= 1000
    assert rise.max() >= 990  # the limit binds
    assert level.max() > 4000  # and the function keeps scaling, 1,000 per 10 s
    # every invocation was either admitted or throttled
    log = raw.extra["lambda"]["fn"]
    admitted = int((log["conc_delta"] > 0).sum())
    codes = raw.recorder.requests()["code"]
    assert (codes == CODE["throttled"]).sum() == log["throttle_t"].size
    assert admitted + log["throttle_t"].size == raw.arrived
    # a throttle happens only when admitting would have broken the scaling rule
    th = log["throttle_t"]
    assert (level_at(t, level, th) + 1 - window_low(t, level, th) > 1000).all()


@pytest.mark.parametrize(("reserved", "account"), [(50, 1000), (None, 300)])
def test_reserved_and_account_limits_cap_concurrency_and_throttle_the_excess(
    reserved: int | None, account: int
) -> None:
    extra = {"reserved_concurrency": reserved} if reserved is not None else {}
    limit = reserved if reserved is not None else account
    # offered concurrency about twice the limit
    raw = run_raw(
        function(invocations={"rate": f"{2 * limit}/s"}, work="1s", account=account, duration_s=40.0, **extra)
    )
    t, level = concurrency(raw)
    assert level.max() == limit
    log = raw.extra["lambda"]["fn"]
    th = log["throttle_t"]
    assert th.size > 0.3 * raw.arrived
    # every throttle found the function at its limit
    assert (level_at(t, level, th) == limit).all()
    assert (raw.recorder.requests()["code"] == CODE["throttled"]).sum() == th.size


def test_a_cold_start_happens_once_per_new_environment() -> None:
    raw = run_raw(
        function(
            invocations={"rate": "50/s", "bursts": [{"at": "20s", "rate": "400/s", "for": "10s"}]},
            work="200ms",
            duration_s=60.0,
        )
    )
    log = raw.extra["lambda"]["fn"]
    created = int((log["env_delta"] > 0).sum())
    assert log["cold_t"].size == created
    # each environment's id is on its requests: one cold start per distinct environment that ran one
    tasks = raw.recorder.requests()["task"]
    assert np.unique(tasks[tasks >= 0]).size == created
    # environments are reused: far fewer cold starts than invocations, and never more than the peak
    _, level = concurrency(raw)
    assert created <= level.max()
    assert created < 0.05 * raw.arrived


def test_steady_traffic_has_under_one_percent_cold_starts() -> None:
    result = simdb.run(
        function(invocations={"rate": "100/s"}, work="50ms", duration_s=600.0), plots=False
    ).summary
    fn = result["lambda"]["functions"]["fn"]
    # FACTS: lambda.cold_start (under 1% of invocations in steady use)
    assert fn["cold_starts"] / fn["invocations"] < 0.01


def test_frozen_environments_keep_their_connections_until_reclaimed() -> None:
    data = function(
        invocations={"rate": "5/s", "bursts": [{"at": "30s", "rate": "500/s", "for": "10s"}]},
        work="300ms",
        duration_s=1200.0,
    )
    result = simdb.run(data, plots=False)
    ts = result.timeseries.set_index("time_s")
    envs = ts["Environments.fn"]
    conns = ts["DatabaseConnections.writer"]
    peak_envs = envs.max()
    assert peak_envs > 100
    # a minute after the burst, almost nothing runs, yet every environment still holds its connection
    assert ts.loc[100.0, "ConcurrentExecutions.fn"] < 10
    assert conns.loc[100.0] == pytest.approx(envs.loc[100.0], abs=1)
    assert envs.loc[100.0] == peak_envs
    # reclaimed 5-15 min after their last invocation (FACTS: lambda.frozen)
    assert envs.loc[40.0 + 300.0 - 10.0] == peak_envs
    assert envs.loc[40.0 + 900.0 + 20.0] < 10
    assert conns.loc[40.0 + 900.0 + 20.0] < 10

    per_invocation = simdb.run(
        {**data, "services": [{**data["services"][0], "connection": "per_invocation"}]}, plots=False
    )
    ts2 = per_invocation.timeseries.set_index("time_s")
    assert ts2.loc[100.0, "DatabaseConnections.writer"] < 10


def test_async_invocations_are_retried_after_throttles() -> None:
    base = function(
        invocations={"rate": "5/s", "bursts": [{"at": "10s", "rate": "200/s", "for": "5s"}]},
        work="1s",
        reserved_concurrency=20,
        duration_s=300.0,
    )
    sync = simdb.run(base, plots=False).summary
    asyn = simdb.run(
        {**base, "services": [{**base["services"][0], "invocation_type": "async"}]}, plots=False
    ).summary
    assert sync["requests"]["errors"]["throttled"] > 500
    # Lambda keeps retrying the events (1 s doubling to 5 min): all run in the end
    assert asyn["requests"]["errors"]["throttled"] == 0
    assert asyn["requests"]["ok"] == asyn["requests"]["total"]
    assert asyn["lambda"]["throttles"] > sync["requests"]["errors"]["throttled"]


def test_a_failover_breaks_frozen_connections_and_the_next_invocation_reconnects() -> None:
    data = function(invocations={"rate": "20/s"}, work="10ms", duration_s=180.0, dns_cache=0)
    data["cluster"]["readers"] = [{"az": "b"}]
    data["events"] = [{"at": "60s", "action": "failover"}]
    result = simdb.run(data, plots=False)
    errors = result.summary["requests"]["errors"]
    # each frozen environment finds its connection broken once, then opens a new one
    assert errors["connection_lost"] > 0
    assert errors["connection_lost"] <= result.summary["lambda"]["functions"]["fn"]["peak_environments"] + 5
    r = result.requests
    late = r[r["t_arrive"] > 150]
    assert (late["code"] == "ok").all()
