"""Aurora Global Database: cross-Region lag, RPO and lost writes against their definitions recomputed
from the run's commits and lag draws; switchover loses nothing; promotion and the DNS shift within their
windows; secondary reads stale as Poisson writes inside the lag; bad global fields are one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cli import one_error_line, simdb_process
from test_scenario_errors import assert_one_line_error, edit, line_of, validate_cli

import simdb
from simdb import plots
from simdb.analysis.global_db import neutral
from simdb.analysis.metrics import Analysis
from simdb.api import prepare
from simdb.engine import Sim, simulate
from simdb.record import OK

PROMOTION = (20.0, 50.0)  # secondary.promotion default; FACTS global.promotion: under a minute
DNS_UPDATE = (1.0, 5.0)  # cluster.failover.dns_update (aurora)
TTL = 5.0
MAX_BACKOFF = 0.2


def _scenario(
    *,
    seed: int = 1,
    duration: float = 120.0,
    events: list[dict] | None = None,
    lag: dict | None = None,
    keys: int = 1000,
    writes: float = 200.0,
    reads: float = 400.0,
    services: list[dict] | None = None,
) -> dict[str, Any]:
    secondary: dict[str, Any] = {"region": "eu-west-1", "readers": [{"az": "a", "tier": 0}, {"az": "b"}]}
    if lag is not None:
        secondary["lag"] = lag
    web = {
        "name": "web",
        "region": "eu-west-1",
        "tasks": 4,
        "pool": {"max_size": 20},
        "dns_cache": "0s",
        "reconnect": {"initial_backoff": "10ms", "max_backoff": f"{MAX_BACKOFF}s"},
        "sessions": 100_000,
        "workload": [
            {"query": "w", "kind": "write", "rate": writes, "cpu": "0.2ms", "keys": {"count": keys}},
            {
                "query": "r",
                "route": "reader:eu-west-1",
                "rate": reads,
                "cpu": "0.2ms",
                "keys": {"count": keys},
            },
        ],
    }
    return {
        "name": "global",
        "seed": seed,
        "duration": duration,
        "cluster": {
            "engine": "aurora-postgresql",
            "topology": "aurora-global",
            "region": "us-east-1",
            "writer": {"class": "db.r6g.2xlarge", "az": "a"},
            "readers": [{"class": "db.r6g.2xlarge", "az": "b"}],
            "secondary": secondary,
        },
        "services": services if services is not None else [web],
        "events": events or [],
    }


def _run(raw: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
    """(the model's raw output, summary.json, the analysis) of one run."""
    out = simulate(prepare(raw))
    analysis = Analysis(out)
    return out, analysis.summary(), analysis


def _commits(analysis: Analysis) -> np.ndarray:
    """Commit times of the successful writes, from the request log."""
    c = analysis.cols
    return np.sort(c["t_end"][analysis.is_write & (c["code"] == OK)])


def _arrivals(out: Any, write_t: np.ndarray) -> np.ndarray:
    """When each write reached the other Region, from the recorded lag draws: each write ships one lag
    (the draw of its lag_step) after its commit, in commit order."""
    plan = out.extra["global"]["plan"]
    lag = plan.lag_s[np.minimum((write_t / plan.lag_step).astype(np.int64), plan.lag_s.size - 1)]
    return np.maximum.accumulate(write_t + lag)


OUTAGE_THEN_FAILOVER = [
    {"at": 40.0, "action": "region_outage", "region": "us-east-1"},
    {"at": 55.0, "action": "global_failover"},
]
DRILL = [{"at": 40.5, "action": "global_failover"}]  # the primary is up: detaching fences its writer


@pytest.mark.parametrize(
    ("events", "cut"), [(OUTAGE_THEN_FAILOVER, 40.0), (DRILL, 40.5)], ids=["outage", "drill"]
)
def test_failover_rpo_is_the_lag_at_the_failure_and_the_unreplicated_writes_are_lost(events, cut) -> None:
    out, s, analysis = _run(_scenario(events=events))
    write_t = _commits(analysis)
    before = write_t[write_t <= cut]
    assert before.size > 5000 and write_t[(write_t > cut) & (write_t < cut + PROMOTION[0])].size == 0
    arrive = _arrivals(out, before)
    lost = arrive > cut  # not in eu-west-1 when replication stopped
    rpo = cut - before[lost].min()
    g = s["global"]
    assert g["failovers"] == 1 and g["operations"][0]["failure_s"] == cut
    assert lost.sum() > 0
    assert g["lost_writes"] == lost.sum()
    assert g["rpo_s"] == pytest.approx(rpo, abs=1e-6)
    assert 0 < g["rpo_s"] < 1.0  # FACTS global.lag: under a second
    # exactly the writes committed in (failure - RPO, failure]: replication is in commit order
    np.testing.assert_array_equal(lost, before >= cut - rpo)
    # the model marks the same writes as never arriving, and no reader in eu-west-1 ever shows them
    log = out.replication
    np.testing.assert_array_equal(log.global_epoch[: before.size], 0)
    np.testing.assert_array_equal(np.isinf(log.global_arrival[log.global_epoch == 0]), lost)
    for j, replica in enumerate(log.replicas):
        if replica.region == "eu-west-1":
            assert np.isinf(log.apply_t[: before.size, j][lost]).all()
            assert np.isfinite(log.apply_t[: before.size, j][~lost]).all()
    # AuroraGlobalDBRPOLag at the failure instant (a whole second in the outage case) is the RPO
    if cut == int(cut):
        rpo_lag = analysis.timeseries().set_index("time_s")["AuroraGlobalDBRPOLag"]
        assert rpo_lag[cut - 1] == pytest.approx(rpo * 1000.0, abs=1e-6)


def test_the_promoted_reader_sees_its_own_commits_at_once_and_the_others_after_their_lag() -> None:
    out, s, _ = _run(_scenario(events=OUTAGE_THEN_FAILOVER))
    op = s["global"]["operations"][0]
    log = out.replication
    names = [i.name for i in out.instances]
    after = log.write_t > op["writer_available_s"]
    assert after.sum() > 5000
    assert (log.write_instance[after] == names.index(op["promoted"])).all()
    for j, replica in enumerate(log.replicas):
        lag = log.apply_t[after, j] - log.write_t[after]
        if replica.name == op["promoted"]:
            assert (lag == 0).all()
        elif replica.region == "eu-west-1":  # the new primary's own volume: Aurora's milliseconds
            assert 0.002 < lag.mean() < 0.01


@pytest.mark.parametrize("seed", range(5))
def test_recovery_is_the_promotion_plus_the_dns_shift(seed: int) -> None:
    s = simdb.run(_scenario(seed=seed, duration=110.0, events=OUTAGE_THEN_FAILOVER), plots=False).summary
    (op,) = s["global"]["operations"]
    assert op["start_s"] == 55.0 and op["promotion_started_s"] == 55.0
    assert PROMOTION[0] <= op["promotion_s"] <= PROMOTION[1] < 60.0
    assert op["writer_available_s"] == pytest.approx(op["promotion_started_s"] + op["promotion_s"])
    assert DNS_UPDATE[0] <= op["dns_updated_s"] - op["writer_available_s"] <= DNS_UPDATE[1]
    # no client cache: every client writes within the resolver's TTL of the record change (plus a backoff)
    assert 0 < op["clients_recovered_s"] - op["dns_updated_s"] <= TTL + MAX_BACKOFF + 0.05
    assert op["recovery_s"] == pytest.approx(op["clients_recovered_s"] - op["start_s"])
    assert s["global"]["recovery_s"] == op["recovery_s"] and s["global"]["promotion_s"] == op["promotion_s"]
    (fo,) = s["failovers"]
    assert fo["kind"] == "global_failover" and fo["start_s"] == 40.0 and fo["detected_s"] == 55.0
    assert fo["clients_not_recovered"] == 0
    # client-seen write downtime (merged over clients): from the failure to the first successful write
    assert op["write_downtime_s"] == pytest.approx(fo["first_write_ok_s"] - 40.0, abs=0.05)


def test_a_switchover_catches_up_first_and_loses_nothing() -> None:
    out, s, analysis = _run(_scenario(events=[{"at": 40.0, "action": "global_switchover"}]))
    g = s["global"]
    (op,) = g["operations"]
    assert g["switchovers"] == 1 and g["failovers"] == 0
    assert g["rpo_s"] == 0 and g["lost_writes"] == 0 and op["failure_s"] is None
    write_t = _commits(analysis)
    before = write_t[write_t <= 40.0]
    # writes stopped at the switchover; the promotion starts once the last of them is in eu-west-1
    assert write_t[(write_t > 40.0) & (write_t < op["writer_available_s"])].size == 0
    assert op["synced_s"] == pytest.approx(_arrivals(out, before).max(), abs=1e-6)
    assert 40.0 < op["synced_s"] < 41.0 and op["promotion_started_s"] == op["synced_s"]
    log = out.replication
    assert np.isfinite(log.global_arrival).all()
    promoted = next(j for j, r in enumerate(log.replicas) if r.name == op["promoted"])
    assert (log.apply_t[: before.size, promoted] <= op["writer_available_s"]).all()
    assert s["failovers"][0]["kind"] == "global_switchover"
    events = analysis.events_frame()
    assert list(events["kind"][:4]) == [
        "instance_down",
        "global_switchover_start",
        "global_synced",
        "instance_down",
    ]


@pytest.mark.parametrize("lag_s", [0.1, 0.4])
def test_secondary_reads_are_stale_as_poisson_writes_inside_the_lag(lag_s: float) -> None:
    # a read in eu-west-1 is stale when its key was written during the last `lag` seconds:
    # P = 1 - exp(-λw · lag / K) for Poisson writes spread uniformly over K keys
    raw = _scenario(lag={"p50": lag_s, "p99": lag_s}, keys=1000, writes=1000.0, reads=2000.0, duration=60.0)
    raw["seed"] = 9
    s = simdb.run(raw, plots=False).summary
    lags = s["replication"]["lag_ms_by_replica"]
    total = np.mean([lags[n]["mean"] for n in ("secondary-1", "secondary-2")]) / 1000.0
    assert lag_s < total < lag_s + 0.01  # the cross-Region lag plus the readers' own redo apply
    assert s["global"]["lag_ms"]["mean"] == pytest.approx(lag_s * 1000.0)
    want = 1.0 - math.exp(-1000.0 * total / 1000.0)
    got = s["global"]["secondary_reads"]["stale_read_fraction"]
    assert got == pytest.approx(want, rel=0.05)
    assert s["global"]["secondary_reads"]["reads"] == s["replication"]["reads_on_replicas"]


def test_the_lag_draws_follow_the_stated_lognormal() -> None:
    raw = _scenario(duration=2000.0, services=[])
    raw["cluster"]["secondary"].update({"lag": {"p50": "150ms", "p99": "900ms"}, "lag_step": "0.1s"})
    out = Sim(prepare(raw)).snapshot()
    draws = out.extra["global"]["plan"].lag_s
    assert draws.size == 20001
    p50, p99 = np.percentile(draws, [50, 99])
    assert p50 == pytest.approx(0.150, rel=0.03)
    assert p99 == pytest.approx(0.900, rel=0.1)


def test_each_write_ships_no_earlier_than_its_lag_and_in_commit_order() -> None:
    out, _, analysis = _run(_scenario(duration=60.0))
    log = out.replication
    plan = out.extra["global"]["plan"]
    assert np.isfinite(log.global_arrival).all()
    assert (log.global_arrival - log.write_t >= plan.lag_at(log.write_t) - 1e-9).all()
    assert (np.diff(log.global_arrival) >= 0).all()
    np.testing.assert_array_equal(log.global_arrival, _arrivals(out, _commits(analysis)))


def test_a_region_outage_without_a_failover_keeps_the_writer_and_replicates_the_backlog_later() -> None:
    us = {
        "name": "api-us",
        "tasks": 2,
        "pool": {"max_size": 5},
        "dns_cache": "0s",
        "workload": [{"query": "lookup", "route": "reader", "rate": 100, "cpu": "0.2ms"}],
    }
    raw = _scenario(events=[{"at": 30.0, "action": "region_outage", "region": "us-east-1", "for": "20s"}])
    raw["services"].append(us)
    out, s, analysis = _run(raw)
    (fo,) = s["failovers"]
    assert fo["kind"] == "region_outage" and fo["promoted"] is None
    assert fo["writer_available_s"] == 50.0 and fo["dns_ttl_s"] == 0.0
    g = s["global"]
    assert (
        g["failovers"] == 0
        and g["lost_writes"] == 0
        and g["operations"] == []
        and g["primary_region"] == "us-east-1"
    )
    log = out.replication
    assert np.isfinite(log.global_arrival).all()
    # the changes not yet shipped when the Region went leave when it is back
    unshipped = (log.write_t < 30.0) & (log.write_t + out.extra["global"]["plan"].lag_at(log.write_t) >= 30.0)
    assert unshipped.sum() > 0 and (log.global_arrival[unshipped] >= 50.0).all()
    # the service placed in us-east-1 stops with its Region and serves again after it
    req = analysis.requests_frame()
    mine = req[req["service"] == "api-us"]
    during = mine[(mine["t_arrive"] > 30.5) & (mine["t_arrive"] < 50.0)]
    assert len(during) > 1000 and (during["code"] == "service_unavailable").all()
    late = mine[mine["t_arrive"] > 52.0]
    assert (late["code"] == "ok").mean() > 0.99
    kinds = list(analysis.events_frame()["kind"])
    assert "region_outage" in kinds and "region_recovered" in kinds


def test_an_in_region_failover_promotes_a_reader_of_the_primary_region() -> None:
    # the secondary's tier-0 reader outranks reader-1 (tier 1), but Aurora fails over within its Region
    s = simdb.run(
        _scenario(duration=60.0, events=[{"at": 20.0, "action": "instance_failure", "target": "writer"}]),
        plots=False,
    ).summary
    (fo,) = s["failovers"]
    assert fo["kind"] == "failover" and fo["promoted"] == "reader-1"
    assert s["global"]["operations"] == [] and s["global"]["primary_region"] == "us-east-1"


def test_the_shape_of_a_global_cluster() -> None:
    scenario = prepare(_scenario(), overrides=["cluster.secondary.readers.secondary-2.class=db.r6g.xlarge"])
    sim = Sim(scenario)
    assert list(sim.endpoints) == ["writer", "reader", "reader:eu-west-1"]
    assert [(i.name, i.region, i.az) for i in sim.instances] == [
        ("writer", "us-east-1", "a"),
        ("reader-1", "us-east-1", "b"),
        ("secondary-1", "eu-west-1", "eu-west-1a"),
        ("secondary-2", "eu-west-1", "eu-west-1b"),
    ]
    assert sim.instances[3].instance_class == "db.r6g.xlarge"
    assert [i.name for i in sim.endpoints["reader:eu-west-1"].members] == ["secondary-1", "secondary-2"]


def test_other_topologies_carry_a_neutral_global_block() -> None:
    raw = {
        "name": "plain",
        "duration": "10s",
        "cluster": {"readers": [{"az": "b"}]},
        "services": [{"name": "api", "workload": [{"query": "w", "kind": "write", "rate": "50/s"}]}],
    }
    result = simdb.run(raw, plots=False)
    assert result.summary["global"] == neutral()
    assert not any(c.startswith("AuroraGlobalDB") for c in result.timeseries.columns)


def test_a_global_run_is_byte_identical_for_the_same_seed(tmp_path: Path) -> None:
    raw = _scenario(duration=90.0, events=OUTAGE_THEN_FAILOVER)
    first = simdb.run(raw, plots=False)
    second = simdb.run(raw, plots=False)
    first.save(tmp_path / "a", plots=False)
    second.save(tmp_path / "b", plots=False)
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()
    other = simdb.run({**raw, "seed": 2}, plots=False).summary
    assert json.dumps(other["global"]) != json.dumps(first.summary["global"])


def test_global_png_is_drawn(tmp_path: Path) -> None:
    result = simdb.run(_scenario(duration=90.0, events=OUTAGE_THEN_FAILOVER), plots=False)
    path = tmp_path / "global.png"
    plots.global_db(result.timeseries, result.events, result.summary, path)
    assert path.stat().st_size > 10_000


# ------------------------------------------------------------------------------------------- errors

BASE = """\
name: g
duration: 2min
cluster:
  engine: aurora-postgresql
  topology: aurora-global
  region: us-east-1
  writer: {az: a}
  secondary:
    region: eu-west-1
    readers:
      - {az: a}
services:
  - name: web
    region: eu-west-1
    workload:
      - {query: r, route: reader:eu-west-1, rate: 10/s}
events:
  - {at: 10s, action: region_outage, region: us-east-1, for: 20s}
  - {at: 20s, action: global_failover}
"""

ERRORS = {
    "secondary-on-aurora": (
        edit(BASE, "topology: aurora-global\n  region: us-east-1\n", "topology: aurora\n"),
        "secondary:",
        "cluster.secondary: secondary applies to topology aurora-global",
    ),
    "global-without-secondary": (
        BASE.split("  secondary:")[0] + "services: []\n",
        "topology:",
        "cluster.topology: topology aurora-global needs `secondary`",
    ),
    "same-region": (
        edit(BASE, "region: eu-west-1\n    readers", "region: us-east-1\n    readers"),
        "    region: us-east-1",
        "cluster.secondary.region: the secondary cluster must be in another Region than the primary (us-east-1)",
    ),
    "no-secondary-reader": (
        edit(BASE, "    readers:\n      - {az: a}\n", "    readers: []\n"),
        "readers: []",
        "cluster.secondary.readers: List should have at least 1 item",
    ),
    "secondary-apply-rate": (
        edit(BASE, "      - {az: a}\n", "      - {az: a, apply_rate: 100/s}\n"),
        "apply_rate",
        "cluster.secondary.readers[0].apply_rate: Aurora readers apply no change stream",
    ),
    "serverless-secondary": (
        edit(BASE, "      - {az: a}\n", "      - {az: a, class: db.serverless}\n"),
        "db.serverless",
        "cluster.secondary.readers[0].class: db.serverless (Serverless v2) in an aurora-global cluster is not "
        "modelled yet",
    ),
    "lag-p99-below-p50": (
        edit(BASE, "  secondary:\n", "  secondary:\n    lag: {p50: 1s, p99: 100ms}\n"),
        "lag:",
        "cluster.secondary.lag: p99 (0.1 s) must be at least p50 (1 s)",
    ),
    "unknown-secondary-field": (
        edit(BASE, "  secondary:\n", "  secondary:\n    lagg: 1s\n"),
        "lagg",
        "cluster.secondary.lagg: unknown field 'lagg'; did you mean 'lag'?",
    ),
    "postgres-engine": (
        edit(BASE, "engine: aurora-postgresql", "engine: postgres"),
        "engine:",
        "cluster.engine: topology aurora-global runs on engine aurora-postgresql, aurora-mysql, not postgres",
    ),
    "proxy": (
        edit(BASE, "  writer: {az: a}\n", "  writer: {az: a}\n  proxy: {}\n"),
        "proxy:",
        "cluster.proxy: RDS Proxy in an aurora-global cluster is not modelled yet",
    ),
    "unknown-region-route": (
        edit(BASE, "route: reader:eu-west-1", "route: reader:eu-west-2"),
        "route:",
        "services[0].workload[0].route: unknown route 'reader:eu-west-2'; allowed: reader, reader:eu-west-1, writer",
    ),
    "service-in-unknown-region": (
        edit(BASE, "    region: eu-west-1\n    workload", "    region: eu-central-1\n    workload"),
        "region: eu-central-1",
        "services[0].region: no Region named 'eu-central-1'; the cluster's Regions: us-east-1, eu-west-1",
    ),
    "outage-of-unknown-region": (
        edit(BASE, "region: us-east-1, for", "region: us-west-2, for"),
        "region_outage",
        "events[0].region: no Region named 'us-west-2'",
    ),
    "switchover-while-primary-out": (
        edit(BASE, "action: global_failover", "action: global_switchover"),
        "global_switchover",
        "events[1].action: a switchover needs both Regions up, and us-east-1 is out at 20 s",
    ),
    "promote-a-region-that-is-out": (
        edit(BASE, "region: us-east-1, for: 20s", "region: eu-west-1, for: 20s"),
        "global_failover",
        "events[1].at: at 20 s the Region to promote (eu-west-1) is out (region_outage)",
    ),
    "promote-a-primary-instance": (
        edit(BASE, "action: global_failover}", "action: global_failover, to: writer}"),
        "global_failover",
        "events[1].to: no instance named 'writer' in eu-west-1, the Region this event promotes; its instances: "
        "secondary-1",
    ),
    "overlapping-outages": (
        BASE + "  - {at: 25s, action: region_outage, region: us-east-1}\n",
        "at: 25s",
        "events[2].at: this outage of us-east-1 overlaps another one of the same Region",
    ),
    "global-event-on-aurora": (
        "name: g\nduration: 1min\nevents:\n  - {at: 10s, action: global_switchover}\n",
        "global_switchover",
        "events[0].action: global_switchover applies to topology aurora-global",
    ),
    "switchover-unknown-field": (
        edit(BASE, "action: global_failover}", "action: global_failover, for: 10s}"),
        "global_failover",
        "events[1].for: unknown field 'for'",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_global_fields_are_one_line_errors(case: str, tmp_path: Path) -> None:
    text, needle, message = ERRORS[case]
    path = tmp_path / "g.yaml"
    path.write_text(text)
    line = assert_one_line_error(validate_cli(str(path)))
    assert line.startswith(f"simdb: {path}:{line_of(text, needle)}: "), line
    assert message in line, line


def test_the_base_of_the_error_cases_is_valid_and_a_real_process_exits_2(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    assert simdb_process("validate", good).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit(BASE, "action: global_failover", "action: global_switchover"))
    line = one_error_line(simdb_process("validate", bad))
    assert "a switchover needs both Regions up" in line
