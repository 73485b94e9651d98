"""`simdb explain`: every bundled broken scenario gets its intended diagnosis and its fixed counterpart none.

Each scenario runs once per module (without plots), some shortened where the failure and the scenario's
own `expect:` lines still hold (checked). Variants built here cover the rules no bundled pair isolates:
pool acquire timeouts, Lambda throttling alone, an AZ outage without quorum loss, a reconnect without a
storm. The thresholds are checked at their boundaries on hand-made summaries.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_cli import one_error_line, simdb_process
from test_cli import simdb as simdb_cli

import simdb
from simdb import api
from simdb.analysis import explain as ex
from simdb.analysis.metrics import lookup
from simdb.errors import SimdbError

ROOT = Path(__file__).resolve().parent.parent

POOL_TOO_SMALL = {
    "name": "pool-too-small",
    "description": "Two tasks whose pools of 4 cannot hold the 10 transactions in flight (100/s x 100 ms).",
    "seed": 5,
    "duration": "60s",
    "warmup": "10s",
    "cluster": {"writer": {"class": "db.r6g.large"}},
    "services": [
        {
            "name": "api",
            "tasks": 2,
            "pool": {"max_size": 4, "connection_timeout": "2s"},
            "workload": [
                {
                    "query": "checkout",
                    "kind": "write",
                    "rate": 100,
                    "cpu": "1ms",
                    "transaction": {"external_call": "100ms"},
                }
            ],
        }
    ],
}

# run name -> (scenario, overrides, duration, the scenario's expect: lines must pass)
RUNS: dict[str, tuple[Any, dict[str, Any], str | None, bool]] = {
    # shortened: the deploy's overlap (140-180 s) and its rejections are inside 200 s
    "connection-budget-overlap": ("connection-budget-overlap", {}, "200s", True),
    # shortened: the four waves end at 240 s
    "connection-budget-fixed": ("connection-budget-fixed", {}, "250s", True),
    "failover-reconnect-storm": ("failover-reconnect-storm", {}, None, True),
    "failover-reconnect-fixed": ("failover-reconnect-fixed", {}, None, True),
    "maxlifetime-waves": ("maxlifetime-waves", {}, None, True),
    "maxlifetime-spread": ("maxlifetime-spread", {}, None, True),
    "restore-drill-untested": ("restore-drill-untested", {}, None, True),
    "lock-contention-external-call": ("lock-contention-external-call", {}, None, True),
    "lock-contention-fixed": ("lock-contention-fixed", {}, None, True),
    "restore-drill-rehearsed": ("restore-drill-rehearsed", {}, None, True),
    "failover-proxy": ("failover-proxy", {}, None, True),
    "failover-dns-cache": ("failover-dns-cache", {}, None, True),
    "failover-dns-fixed": ("failover-dns-fixed", {}, None, True),
    "proxy-borrow-timeout": ("proxy-borrow-timeout", {}, None, True),
    "proxy-borrow-fixed": ("proxy-borrow-fixed", {}, None, True),
    "lambda-burst-direct": ("lambda-burst-direct", {}, None, True),
    "lambda-burst-proxy": ("lambda-burst-proxy", {}, None, True),
    # shortened: the write spike (120-180 s) and the lag it leaves are inside 200 s
    "replica-lag-stale-reads": ("replica-lag-stale-reads", {}, "200s", True),
    "replica-lag-routed": ("replica-lag-routed", {}, "200s", True),
    "serverless-idle-in-transaction": ("serverless-idle-in-transaction", {}, None, True),
    "serverless-idle-fixed": ("serverless-idle-fixed", {}, None, True),
    "az-outage-aurora": ("az-outage-aurora", {}, None, True),
    "quickstart": ("quickstart", {}, None, True),
    # variants: their expect: lines describe the bundled scenario, not the variant
    "pool-too-small": (POOL_TOO_SMALL, {}, None, False),
    "pool-sized": (POOL_TOO_SMALL, {"services.api.pool.max_size": 10}, None, False),
    "lambda-reserved-100": (
        "lambda-burst-proxy",
        {"services.thumbnails.reserved_concurrency": 100},
        "100s",
        False,
    ),
    "az-outage-only": (
        "az-outage-aurora",
        {"events": [{"at": "1min", "action": "az_outage", "az": "c", "for": "3min"}]},
        None,
        False,
    ),
    "storm-fixed-pools-jitter": (
        "failover-reconnect-storm",
        {"services.api.pool.min_idle": 20, "services.api.reconnect.jitter": "full"},
        None,
        False,
    ),
}

# broken scenario -> every finding explain must report; the intended diagnosis first
BROKEN = {
    "connection-budget-overlap": ["connection-budget-exceeded"],
    "failover-reconnect-storm": ["reconnect-storm"],
    "maxlifetime-waves": ["connection-churn-wave"],
    "restore-drill-untested": ["restore-failed"],
    "lock-contention-external-call": ["lock-contention"],
    "failover-dns-cache": ["failover-stale-endpoint"],
    # the description's own second symptom: invocations wait up to 120 s to borrow, so concurrency
    # climbs to the account's 10,000 and most of the burst is throttled
    "proxy-borrow-timeout": ["proxy-borrow-exhaustion", "lambda-throttling"],
    # the description's failure is max_connections exhausted (too_many_connections); its few throttles
    # (the account's 1,000 filling with cold starts, as in lambda-burst-proxy) stay under 1%
    "lambda-burst-direct": ["connection-budget-exceeded"],
    "replica-lag-stale-reads": ["read-your-writes-violation"],
    "serverless-idle-in-transaction": ["serverless-capacity-pinned"],
    "az-outage-aurora": ["storage-quorum-lost"],
    "pool-too-small": ["pool-acquire-timeout"],
    "lambda-reserved-100": ["lambda-throttling"],
}

# fixed counterpart -> its broken scenario; a fix must leave no finding at all
FIXED = {
    "connection-budget-fixed": "connection-budget-overlap",
    "failover-dns-fixed": "failover-dns-cache",
    "failover-proxy": "failover-dns-cache",
    "failover-reconnect-fixed": "failover-reconnect-storm",
    "maxlifetime-spread": "maxlifetime-waves",
    "restore-drill-rehearsed": "restore-drill-untested",
    "lock-contention-fixed": "lock-contention-external-call",
    "proxy-borrow-fixed": "proxy-borrow-timeout",
    "lambda-burst-proxy": "lambda-burst-direct",
    "replica-lag-routed": "replica-lag-stale-reads",
    "serverless-idle-fixed": "serverless-idle-in-transaction",
    "az-outage-only": "az-outage-aurora",
    "pool-sized": "pool-too-small",
    # fixed-size pools reopen only what they held, jitter spreads it
    "storm-fixed-pools-jitter": "failover-reconnect-storm",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``runs(name)`` -> (Result, its results folder); each run once, on first use."""
    root = tmp_path_factory.mktemp("explain")
    done: dict[str, tuple[api.Result, Path]] = {}

    def get(name: str) -> tuple[api.Result, Path]:
        if name not in done:
            scenario, overrides, duration, expects = RUNS[name]
            result = api.run(scenario, overrides=overrides, duration=duration, out=root / name, plots=False)
            if expects:
                failed = [e["check"] for e in result.summary["expect"] if not e["passed"]]
                assert not failed, f"{name} no longer shows what it should: {failed}"
            done[name] = (result, root / name)
        return done[name]

    return get


def _check_finding(f: ex.Finding, summary: dict[str, Any], ts: pd.DataFrame) -> None:
    """What every finding promises: a cited metric that exists, units, a threshold, a time range."""
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", f.id) and f.id in ex.RULES
    assert f.severity in ex.SEVERITIES
    assert f.why and f.fix and f.unit and f.title
    assert "Threshold:" in f.detect
    if f.source == "summary.json":
        assert isinstance(lookup(summary, f.metric), int | float)
    else:
        assert f.source == "timeseries.csv" and f.metric in ts
    assert 0.0 <= f.t_start <= f.t_end <= summary["duration_s"]
    json.dumps(f.to_dict(), allow_nan=False)


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_run_gets_its_diagnosis(runs, name: str) -> None:  # type: ignore[no-untyped-def]
    result, folder = runs(name)
    findings = ex.explain_dir(folder)
    assert sorted(f.id for f in findings) == sorted(BROKEN[name]), [f.id for f in findings]
    for f in findings:
        _check_finding(f, result.summary, result.timeseries)
    # the API on the in-memory result says the same as the folder
    in_memory = ex.explain(result.summary, result.timeseries, result.events)
    assert [(f.id, f.t_start, f.t_end) for f in in_memory] == [(f.id, f.t_start, f.t_end) for f in findings]


@pytest.mark.parametrize("name", list(FIXED))
def test_fixed_run_has_no_findings(runs, name: str) -> None:  # type: ignore[no-untyped-def]
    intended = BROKEN[FIXED[name]][0]
    ids = [f.id for f in ex.explain_dir(runs(name)[1])]
    assert intended not in ids
    assert ids == []


def test_quickstart_has_no_findings(runs) -> None:  # type: ignore[no-untyped-def]
    assert ex.explain_dir(runs("quickstart")[1]) == []


def _one(runs, name: str, rule: str) -> tuple[ex.Finding, dict[str, Any]]:  # type: ignore[no-untyped-def]
    result, folder = runs(name)
    (finding,) = [f for f in ex.explain_dir(folder) if f.id == rule]
    return finding, result.summary


def test_time_ranges_follow_the_scenarios(runs) -> None:  # type: ignore[no-untyped-def]
    # the storage node fails at 2 min and Aurora repairs the copy in segment_repair (10 s)
    f, _ = _one(runs, "az-outage-aurora", "storage-quorum-lost")
    assert (f.t_start, f.t_end) == (120.0, 130.0)
    # the leak happens at 55 min and nothing ends it
    f, s = _one(runs, "serverless-idle-in-transaction", "serverless-capacity-pinned")
    assert (f.t_start, f.t_end) == (3300.0, s["duration_s"])
    # the writer fails at 1 min and 13 clients never recover
    f, s = _one(runs, "failover-dns-cache", "failover-stale-endpoint")
    assert (f.t_start, f.t_end) == (60.0, s["duration_s"])
    assert f.values["clients_not_recovered"] == s["failovers"][0]["clients_not_recovered"] > 0
    # the storm starts when the new writer answers
    f, s = _one(runs, "failover-reconnect-storm", "reconnect-storm")
    assert f.t_start == s["failovers"][0]["writer_available_s"]
    assert f.values["connections_after_peak"] > ex.STORM_GROWTH * f.values["connections_before"]
    # rejections start with the burst at 1 min, not before
    f, _ = _one(runs, "lambda-burst-direct", "connection-budget-exceeded")
    assert 60.0 <= f.t_start < 61.0
    # the budget is overrun from the first measured second (800 > 600) and again in the deploy
    f, s = _one(runs, "connection-budget-overlap", "connection-budget-exceeded")
    assert f.t_start == s["warmup_s"] and f.t_end > 140.0
    # throttles only while the 30 s burst runs
    f, _ = _one(runs, "lambda-reserved-100", "lambda-throttling")
    assert f.t_start >= 60.0 and f.t_end <= 91.0
    assert f.values["peak_concurrency"] == f.values["concurrency_limit"] == 100


def test_variants_isolate_one_mechanism(runs) -> None:  # type: ignore[no-untyped-def]
    s = runs("lambda-reserved-100")[0].summary
    assert s["requests"]["errors"]["too_many_connections"] == 0 and s["lambda"]["throttles"] > 0
    s = runs("pool-too-small")[0].summary
    assert s["requests"]["errors"]["acquire_timeout"] > 0 and s["connections"]["rejected"] == 0
    s = runs("az-outage-only")[0].summary
    assert s["storage"]["write_quorum_lost_s"] == 0
    # the reconnect still happens, without growing the fleet: what the rule measures
    s = runs("storm-fixed-pools-jitter")[0].summary
    assert s["failovers"][0]["reconnect_peak_per_s"] > 0


# ------------------------------------------------------------------------ thresholds on hand-made runs


def _summary(**sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scenario": "hand-made",
        "seed": 0,
        "duration_s": 100.0,
        "warmup_s": 0.0,
        "requests": {"total": 10_000, "errors": {}},
    }
    base.update(sections)
    return base


def _ts(**columns: list[float]) -> pd.DataFrame:
    n = 100
    return pd.DataFrame({"time_s": [float(i) for i in range(n)], **columns})


def test_error_share_threshold_is_one_percent() -> None:
    col = [0.0] * 50 + [10.0] * 10 + [0.0] * 40  # acquire timeouts per second, 50-60 s
    at = _summary(requests={"total": 10_000, "errors": {"acquire_timeout": 100}})
    above = _summary(requests={"total": 10_000, "errors": {"acquire_timeout": 101}})
    assert ex.explain(at, _ts(**{"Errors.acquire_timeout": col}), pd.DataFrame()) == []
    (f,) = ex.explain(above, _ts(**{"Errors.acquire_timeout": col}), pd.DataFrame())
    assert (f.id, f.t_start, f.t_end) == ("pool-acquire-timeout", 50.0, 60.0)


def _failover(recovered: float | None) -> dict[str, Any]:
    return {
        "start_s": 20.0,
        "writer_available_s": 40.0,
        "dns_updated_s": 45.0,
        "dns_ttl_s": 5.0,
        "clients_recovered_s": recovered,
        "clients": 4,
        "clients_not_recovered": 0 if recovered is not None else 4,
        "reconnect_peak_per_s": 10.0,
    }


def test_stale_endpoint_allows_the_ttl_and_one_backoff() -> None:
    ts = _ts(DatabaseConnections=[40.0] * 100)
    deadline = 45.0 + 5.0 + ex.BACKOFF_CAP_S
    assert ex.explain(_summary(failovers=[_failover(deadline)]), ts, pd.DataFrame()) == []
    (f,) = ex.explain(_summary(failovers=[_failover(deadline + 0.5)]), ts, pd.DataFrame())
    assert f.id == "failover-stale-endpoint" and (f.t_start, f.t_end) == (20.0, deadline + 0.5)
    (f,) = ex.explain(_summary(failovers=[_failover(None)]), ts, pd.DataFrame())
    assert f.t_end == 100.0


def test_reconnect_storm_needs_a_burst_and_growth() -> None:
    before, after = [40.0] * 20, [0.0] * 20
    grown = before + after + [61.0] * 60  # 1.525x the 40 connections held before the fault
    kept = before + after + [60.0] * 60  # 1.5x: not more
    fast = _failover(50.0) | {"reconnect_peak_per_s": 41.0}
    slow = _failover(50.0) | {"reconnect_peak_per_s": 40.0}
    assert ex.explain(_summary(failovers=[fast]), _ts(DatabaseConnections=kept), pd.DataFrame()) == []
    assert ex.explain(_summary(failovers=[slow]), _ts(DatabaseConnections=grown), pd.DataFrame()) == []
    (f,) = ex.explain(_summary(failovers=[fast]), _ts(DatabaseConnections=grown), pd.DataFrame())
    assert (f.id, f.t_start, f.t_end) == ("reconnect-storm", 40.0, 41.0)
    # the proxy's own connections are not the clients'
    proxy = [0.0] * 40 + [30.0] * 60
    assert (
        ex.explain(
            _summary(failovers=[fast]),
            _ts(DatabaseConnections=grown, **{"DatabaseConnections.proxy": proxy}),
            pd.DataFrame(),
        )
        == []
    )


def test_pinned_capacity_threshold_is_the_course_timeout() -> None:
    def run(pinned: float) -> list[ex.Finding]:
        sv = {"instances": {"writer": {"pinned_s": pinned}}, "capacity_range": [0.5, 16.0]}
        return ex.explain(_summary(serverless=sv), _ts(), pd.DataFrame())

    assert run(ex.PIN_LIMIT_S) == []
    assert [f.id for f in run(ex.PIN_LIMIT_S + 10)] == ["serverless-capacity-pinned"]


def test_only_read_your_writes_violations_are_flagged() -> None:
    report = {"reads_on_replicas": 1000, "stale_reads": 900, "stale_read_fraction": 0.9}
    stale_only = {"by_query": {"report": report | {"read_your_writes_violations": 0}}}
    assert ex.explain(_summary(replication=stale_only), _ts(), pd.DataFrame()) == []
    one = {"by_query": {"confirm": report | {"read_your_writes_violations": 1}}}
    (f,) = ex.explain(_summary(replication=one), _ts(), pd.DataFrame())
    assert f.id == "read-your-writes-violation" and f.severity == "critical"


def test_replications_summary_is_refused() -> None:
    with pytest.raises(SimdbError, match="replications"):
        ex.explain(_summary(replications={"n": 3}), _ts(), pd.DataFrame())


def test_every_rule_id_is_documented() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [rule for rule in ex.RULES if f"`{rule}`" not in readme]
    assert not missing


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_text_shows_why_detect_fix(runs) -> None:  # type: ignore[no-untyped-def]
    folder = runs("connection-budget-overlap")[1]
    ran = simdb_process("explain", folder)
    assert ran.returncode == 0, ran.stderr
    assert "connection-budget-exceeded" in ran.stdout
    for label in ("Why", "Detect", "Fix", "Metric"):
        assert re.search(rf"^  {label} +\S", ran.stdout, re.M), label
    assert "connections.rejected" in ran.stdout


def test_cli_json_carries_ids_metrics_and_ranges(runs) -> None:  # type: ignore[no-untyped-def]
    result, folder = runs("proxy-borrow-timeout")
    ran = simdb_cli("explain", folder, "--format", "json")
    assert ran.returncode == 0
    data = json.loads(ran.stdout)
    assert data["scenario"] == "proxy-borrow-timeout" and data["rules"] == list(ex.RULES)
    ids = [f["id"] for f in data["findings"]]
    assert sorted(ids) == sorted(BROKEN["proxy-borrow-timeout"])
    for f in data["findings"]:
        assert isinstance(lookup(result.summary, f["metric"]), int | float)
        assert 0 <= f["t_start"] <= f["t_end"] <= result.summary["duration_s"]
        assert {"why", "detect", "fix", "unit", "severity", "values"} <= f.keys()


def test_cli_no_findings_says_so(runs) -> None:  # type: ignore[no-untyped-def]
    ran = simdb_cli("explain", runs("quickstart")[1])
    assert ran.returncode == 0
    assert "0 findings" in ran.stdout and "no findings" in ran.stdout
    data = json.loads(simdb_cli("explain", runs("quickstart")[1], "--format", "json").stdout)
    assert data["findings"] == []


def test_cli_rejects_what_is_not_a_results_folder(tmp_path: Path, runs) -> None:  # type: ignore[no-untyped-def]
    line = one_error_line(simdb_process("explain", tmp_path))
    assert "not a simdb results folder" in line
    assert "not a simdb results folder" in one_error_line(simdb_process("explain", tmp_path / "nowhere"))
    assert "text or json" in one_error_line(simdb_cli("explain", runs("quickstart")[1], "--format", "xml"))
    broken = tmp_path / "broken"
    shutil.copytree(runs("quickstart")[1], broken)
    (broken / "summary.json").write_text("{not json")
    assert "not a readable" in one_error_line(simdb_cli("explain", broken))
    means = tmp_path / "means"
    shutil.copytree(runs("quickstart")[1], means)
    summary = json.loads((means / "summary.json").read_text())
    (means / "summary.json").write_text(json.dumps(summary | {"replications": {"n": 2}}))
    assert "replications" in one_error_line(simdb_cli("explain", means))


def test_every_bundled_case_scenario_is_checked_here() -> None:
    """A new broken/fixed pair in scenarios/ must say what explain finds in it."""
    cases = {name: simdb.load_scenario(path).case for name, path in simdb.bundled().items()}
    assert {n for n, c in cases.items() if c and c.role == "broken"} <= set(BROKEN)
    assert {n for n, c in cases.items() if c and c.role == "fixed"} <= set(FIXED)


def test_churn_wave_needs_half_the_fleet_twice_at_steady_state_and_no_event() -> None:
    times = np.arange(300.0)
    conns = np.full(300, 100.0)
    conns[:5] = [0, 20, 50, 80, 95]  # the initial fill is not steady state
    attempts = np.zeros(300)
    attempts[1] = 100.0

    def found(att: np.ndarray, events: tuple[tuple[float, str], ...] = ()) -> list[ex.Finding]:
        ts = pd.DataFrame({"time_s": times, "ConnectionAttempts": att, "DatabaseConnections": conns})
        ev = pd.DataFrame(events, columns=["time_s", "kind"]).assign(target="", detail="")
        return ex.connection_churn_wave(ex.Context({"duration_s": 300.0}, ts, ev))

    twice = attempts.copy()
    twice[[100, 200]] = 50.0
    (f,) = found(twice)
    assert (f.id, f.t_start, f.t_end, f.values["waves"]) == ("connection-churn-wave", 100.0, 201.0, 2)
    under = attempts.copy()
    under[[100, 200]] = 49.0
    assert found(under) == []
    once = attempts.copy()
    once[100] = 80.0
    assert found(once) == []
    assert found(twice, [(150.0, "deploy_wave")]) == []  # the second wave follows a deploy
