"""Backup and restore: RTO against its parameters, RPO against the restore point, the cutover window against
DNS TTL and pool behaviour, lazy loading on first access, the four failure modes, and bad restore fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_scenario_errors import assert_one_line_error, line_of, validate_cli, validate_subprocess

import simdb
from simdb import sweeps
from simdb.analysis.restore import neutral
from simdb.scenario import resolved

AT = 120.0  # restore start (the incident)
PROVISIONING = 30.0
THROUGHPUT = 512.0  # MiB/s: the copy takes 2 s per GiB
SPEEDUP = 8.0
AGE = 100.0  # the last automated snapshot before the run was taken at -100 s
CPU = 0.001


def _scenario(
    *,
    restore: dict | None = None,
    size_gib: float = 10.0,
    duration: float = 400.0,
    service: dict | None = None,
    workload: list | None = None,
    cluster: dict | None = None,
    events: list | None = None,
    seed: int = 3,
) -> dict:
    """RDS PostgreSQL single-AZ, 3 tasks with fresh DNS lookups and a 100 ms reconnect cap; a restore at 120 s."""
    svc = {
        "name": "api",
        "tasks": 3,
        "pool": {"max_size": 4},
        "dns_cache": "0s",
        "reconnect": {"initial_backoff": "10ms", "max_backoff": "100ms"},
        "workload": workload
        or [
            {"query": "r", "rate": 60, "cpu": CPU, "cpu_distribution": "constant", "keys": {"count": 200}},
            {
                "query": "w",
                "kind": "write",
                "rate": 20,
                "cpu": CPU,
                "cpu_distribution": "constant",
                "keys": {"count": 200},
            },
        ],
    }
    svc.update(service or {})
    ev = {"at": AT, "action": "restore", "restore_time": 60, **(restore or {})}
    return {
        "name": "restore-test",
        "seed": seed,
        "duration": duration,
        "cluster": {
            "engine": "postgres",
            "topology": "single-az",
            "writer": {"class": "db.r6g.large"},
            "storage": {"size_gib": size_gib},
            "backup": {
                "log_upload_interval": "60s",
                "snapshot_interval": "1h",
                "automated_snapshot_age": AGE,
            },
            "restore": {
                "provisioning": PROVISIONING,
                "throughput_mib_per_s": THROUGHPUT,
                "replay_speedup": SPEEDUP,
            },
            **(cluster or {}),
        },
        "services": [svc],
        "events": events if events is not None else [ev],
    }


def _run(**kw) -> simdb.Result:
    return simdb.run(_scenario(**kw), plots=False)


def _kinds(result: simdb.Result) -> list[str]:
    return list(result.events["kind"])


# ------------------------------------------------------------------------------------------------ RTO


def test_rto_grows_linearly_with_size_as_the_parameters_say() -> None:
    """RTO(size) = provisioning + size x 1024 / throughput + replay, exactly, over three sizes."""
    sizes = [5.0, 20.0, 80.0]
    runs = [
        _run(
            size_gib=size,
            restore={"old_cluster": "available", "cutover": {"enabled": False}},
        )
        for size in sizes
    ]
    rto = np.array([r.summary["restore"]["rto_s"] for r in runs])
    replay = (60.0 - -AGE) / SPEEDUP  # logs from the automated snapshot at -100 s to the target at 60 s
    slope, intercept = np.polyfit(sizes, rto, 1)
    assert slope == pytest.approx(1024.0 / THROUGHPUT, abs=1e-9)
    assert intercept == pytest.approx(PROVISIONING + replay, abs=1e-6)
    for size, r in zip(sizes, runs, strict=True):
        s = r.summary["restore"]
        expected = PROVISIONING + size * 1024.0 / THROUGHPUT + replay
        assert s["rto_s"] == pytest.approx(expected, abs=1e-6)
        assert s["phases"] == pytest.approx(
            {"provisioning_s": PROVISIONING, "copy_s": size * 1024.0 / THROUGHPUT, "replay_s": replay}
        )
        assert s["completed"] and s["succeeded"], s["reason"]
        events = r.events.set_index("kind")
        assert events.loc["restore_started", "time_s"] == AT
        assert events.loc["restore_copying", "time_s"] == pytest.approx(AT + PROVISIONING)
        assert events.loc["restore_replaying", "time_s"] == pytest.approx(
            AT + PROVISIONING + size * 1024.0 / THROUGHPUT
        )
        assert events.loc["restore_completed", "time_s"] == pytest.approx(AT + expected)
        # an isolated drill: production carries on, nothing reaches the restored instance
        assert s["requests_on_restored"] == 0 and r.summary["requests"]["failed"] == 0
        assert "cutover_started" not in _kinds(r)


def test_a_growing_database_restores_the_size_at_its_restore_point() -> None:
    s = _run(
        cluster={"storage": {"size_gib": 10.0, "growth_gib_per_day": 8640.0}},  # 0.1 GiB per second
        restore={"old_cluster": "available", "cutover": {"enabled": False}},
    ).summary["restore"]
    assert s["size_gib"] == pytest.approx(10.0 + 0.1 * 60.0)
    assert s["phases"]["copy_s"] == pytest.approx(16.0 * 1024.0 / THROUGHPUT)


def test_a_run_that_ends_first_reports_the_time_so_far_and_why() -> None:
    s = _run(size_gib=500.0, restore={"old_cluster": "available"}).summary["restore"]
    assert not s["completed"] and not s["succeeded"]
    assert s["rto_s"] == pytest.approx(400.0 - AT)
    assert s["reason"].startswith("the run ended before the restored cluster was available")


# ------------------------------------------------------------------------------------------------ RPO


def _writes_after(result: simdb.Result, t: float, instance: str = "writer") -> int:
    req = result.requests
    mask = (
        (req["kind"] == "write") & (req["code"] == "ok") & (req["instance"] == instance) & (req["t_end"] > t)
    )
    return int(mask.sum())


def test_pitr_rpo_is_the_gap_from_the_restore_point_to_the_restore() -> None:
    # default: the latest restorable time, the last log upload (every 60 s) at or before 130 s
    latest = _run(restore={"restore_time": None, "at": 130.0})
    s = latest.summary["restore"]
    assert s["latest_restorable_s"] == 120.0 and s["target_s"] == 120.0
    assert s["rpo_s"] == pytest.approx(10.0)
    # the old cluster was lost at the restore: the writes it took after the restore point are gone
    assert s["writes_lost"] == _writes_after(latest, 120.0) > 0
    assert _writes_after(latest, 130.0 + 1e-3) == 0
    # an explicit restore time
    chosen = _run(restore={"restore_time": 45.0})
    assert chosen.summary["restore"]["rpo_s"] == pytest.approx(AT - 45.0)
    assert chosen.summary["restore"]["writes_lost"] == _writes_after(chosen, 45.0)
    assert chosen.summary["restore"]["phases"]["replay_s"] == pytest.approx((45.0 + AGE) / SPEEDUP)


def test_snapshot_restore_rpo_is_the_time_since_the_snapshot() -> None:
    events = [
        {"at": 50.0, "action": "snapshot", "name": "before-migration"},
        {"at": 80.0, "action": "snapshot"},
        {"at": AT, "action": "restore", "from": "snapshot", "snapshot": "before-migration"},
    ]
    r = _run(events=events)
    s = r.summary["restore"]
    assert s["snapshot"] == "before-migration" and s["target_s"] == 50.0
    assert s["rpo_s"] == pytest.approx(AT - 50.0)
    assert s["phases"]["replay_s"] == 0.0  # a snapshot is consistent: nothing to replay
    assert s["writes_lost"] == _writes_after(r, 50.0)
    assert list(r.events.loc[r.events["kind"] == "snapshot_created", "target"]) == [
        "before-migration",
        "snapshot-2",
    ]
    # without a name: the latest manual snapshot before the restore
    unnamed = _run(events=[events[0], events[1], {"at": AT, "action": "restore", "from": "snapshot"}])
    assert unnamed.summary["restore"]["snapshot"] == "snapshot-2"
    assert unnamed.summary["restore"]["rpo_s"] == pytest.approx(AT - 80.0)
    # the automated snapshot: taken at -100 s, one snapshot_interval (1 h) apart
    auto = _run(events=[{"at": AT, "action": "restore", "from": "snapshot", "snapshot": "automated"}])
    assert auto.summary["restore"]["target_s"] == -AGE
    assert auto.summary["restore"]["rpo_s"] == pytest.approx(AT + AGE)


# ---------------------------------------------------------------------------------------- failure modes

FAULTS = {
    "subnet_group_mismatch": ("restore_failed", "DBSubnetGroupNotFoundFault"),
    "kms_key_inaccessible": ("restore_failed", "KMSKeyNotAccessibleFault"),
    "security_group_mismatch": ("cutover_failed", "default security group"),
    "app_config_old_endpoint": ("cutover_failed", "names the old cluster endpoint"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_failure_mode_fails_the_drill_with_its_reason(fault: str) -> None:
    r = _run(restore={"faults": [fault], "cutover": {"update": "10s", "dns_ttl": "1s"}})
    s = r.summary["restore"]
    kind, phrase = FAULTS[fault]
    rows = r.events[r.events["kind"] == kind]
    assert len(rows) == 1, r.events
    detail = rows["detail"].iloc[0]
    assert detail.startswith(f"{fault}: ") and phrase in detail
    assert s["succeeded"] is False
    assert s["reason"] == detail
    assert s["faults"] == [fault]
    assert s["requests_on_restored"] == 0
    after = r.requests[r.requests["t_arrive"] > AT + 1.0]
    assert (after["code"] != "ok").all(), "the old cluster is lost and nobody reaches the new one"
    if kind == "restore_failed":
        assert rows["time_s"].iloc[0] == AT  # the restore call is rejected at once
        assert not s["completed"] and s["available_s"] is None and s["failed_s"] == AT
        assert s["rto_s"] == pytest.approx(400.0 - AT)  # never recovered: the time until the run's end
        assert "restore_completed" not in _kinds(r)
    else:
        assert s["completed"] and s["cutover"]["failed_s"] == rows["time_s"].iloc[0]
        assert s["cutover"]["clients_not_cut_over"] == s["cutover"]["clients"] == 3
    if fault == "security_group_mismatch":
        # the record names the restored instance, but its packets are dropped: attempts time out
        assert "cutover_dns_changed" in _kinds(r)
        assert r.summary["connections"]["timed_out"] > 0
        assert r.summary["requests"]["errors"]["connect_timeout"] > 0
    if fault == "app_config_old_endpoint":
        assert "dns_updated" not in _kinds(r), "the application's name never moved"


def test_app_config_tied_to_a_surviving_old_cluster_keeps_writing_there() -> None:
    r = _run(restore={"old_cluster": "available", "faults": ["app_config_old_endpoint"]})
    s = r.summary["restore"]
    assert s["completed"] and not s["succeeded"]
    assert r.summary["requests"]["failed"] == 0, "the application never noticed anything"
    # every write after the restore point landed on the old cluster, where the restored one cannot see it
    assert s["writes_on_old_after_available"] == _writes_after(r, s["available_s"] - 1e-9) > 0
    assert s["writes_lost"] == _writes_after(r, s["target_s"])


# --------------------------------------------------------------------------------------------- cutover

UPDATE = 20.0


def test_cutover_of_a_lost_cluster_takes_the_update_then_one_reconnect() -> None:
    """Pools retry the dead address in a cycle of 105 ms (the refusal comes after the 5 ms setup latency,
    then the 100 ms max_backoff). With a TTL of 0 and no client cache the first attempt after the switch
    reaches the restored instance: 5 ms setup, 2 ms of setup CPU for each of the 3 pools on 2 vCPUs, then
    the oldest waiting request (1 ms of CPU, and an EBS commit if it is a write: allow 10 ms for both)."""
    bound = UPDATE + 0.105 + 0.005 + 3 * 0.002 + 0.010
    for seed in range(4):
        s = _run(
            seed=seed,
            restore={"cutover": {"update": UPDATE, "dns_ttl": 0}},
            cluster={
                "restore": {"provisioning": PROVISIONING, "throughput_mib_per_s": THROUGHPUT, "lazy_load": 0}
            },
        ).summary["restore"]
        assert s["succeeded"], s["reason"]
        assert s["cutover"]["dns_changed_s"] == pytest.approx(s["available_s"] + UPDATE)
        assert UPDATE < s["cutover_s"] <= bound, (seed, s["cutover_s"])
        assert s["recovery_s"] == pytest.approx(s["rto_s"] + s["cutover_s"])


def test_cutover_with_a_surviving_cluster_waits_for_pool_refresh_or_max_lifetime() -> None:
    """Old cluster still up: pools keep their connections. With refresh_pools the runbook soft-evicts them
    one TTL after the switch (update + TTL after the restore); without, they move when max_lifetime retires
    the connections opened at t = 0 (no lifetime variation). Reads arrive evenly, 300/s over 3 tasks in
    turn: each task's next request comes within 10 ms. It then waits for a new connection (5 ms setup, 2 ms
    of setup CPU per pool, 3 pools on 2 vCPUs) and runs (1 ms of CPU, perhaps behind one other): 23 ms."""
    ttl = 5.0
    lazy0 = {"provisioning": PROVISIONING, "throughput_mib_per_s": THROUGHPUT, "lazy_load": 0}
    reads = [
        {"query": "r", "rate": 300, "arrival": "constant", "cpu": CPU, "cpu_distribution": "constant"},
    ]
    step = 3 / 300 + 0.005 + 3 * 0.002 + 2 * CPU
    refreshed = _run(
        workload=reads,
        restore={
            "old_cluster": "available",
            "cutover": {"update": UPDATE, "dns_ttl": ttl, "refresh_pools": True},
        },
        cluster={"restore": lazy0},
    ).summary["restore"]
    assert refreshed["succeeded"], refreshed["reason"]
    assert refreshed["cutover"]["pools_refreshed_s"] == pytest.approx(refreshed["available_s"] + UPDATE + ttl)
    assert UPDATE + ttl < refreshed["cutover_s"] <= UPDATE + ttl + step, refreshed["cutover_s"]

    lifetime = 300.0
    kept = _run(
        duration=500.0,
        workload=reads,
        restore={"old_cluster": "available", "cutover": {"update": UPDATE, "dns_ttl": ttl}},
        service={"pool": {"max_size": 4, "max_lifetime": lifetime, "max_lifetime_jitter": 0}},
        cluster={"restore": lazy0},
    ).summary["restore"]
    assert kept["succeeded"], kept["reason"]
    assert kept["available_s"] + UPDATE + ttl < lifetime  # the switch is visible before they retire
    # each pool opened its 4 connections one after another from t = 0 (at most 4 x 11 ms): they retire
    # 300 s later, each replaced at the new address
    waited = lifetime - kept["available_s"]
    assert waited < kept["cutover_s"] <= waited + 4 * (0.005 + 3 * 0.002) + step, kept["cutover_s"]
    assert kept["writes_on_old_after_available"] == 0  # reads only here
    assert kept["requests_on_restored"] > 0

    stuck = _run(
        workload=reads,
        restore={"old_cluster": "available", "cutover": {"update": UPDATE, "dns_ttl": ttl}},
        cluster={"restore": lazy0},
    ).summary["restore"]
    assert not stuck["succeeded"] and stuck["cutover"]["clients_not_cut_over"] == 3
    assert "until max_lifetime; refresh the pools" in stuck["reason"]
    assert stuck["cutover_s"] == pytest.approx(400.0 - stuck["available_s"])
    assert stuck["requests_on_restored"] == 0


# ------------------------------------------------------------------------------------------- lazy load


def test_lazy_load_delays_the_first_access_to_each_key_and_then_is_gone() -> None:
    """Reads only, constant CPU c, penalty P: a read of key k on the restored instance ends at
    max(CPU end, f_k + c + P), f_k being the first CPU start for k there; after that, reads take c."""
    penalty = 0.2
    r = _run(
        duration=300.0,
        workload=[
            {"query": "r", "rate": 90, "cpu": CPU, "cpu_distribution": "constant", "keys": {"count": 200}}
        ],
        restore={"cutover": {"update": "5s", "dns_ttl": 0}},
        cluster={
            "restore": {
                "provisioning": PROVISIONING,
                "throughput_mib_per_s": THROUGHPUT,
                "lazy_load": penalty,
            }
        },
    )
    s = r.summary["restore"]
    assert s["succeeded"], s["reason"]
    req = r.requests
    on = req[(req["instance"] == "writer-restored") & req["t_start"].notna()].copy()
    assert (on["code"] == "ok").all()
    first = on.groupby("key")["t_start"].transform("min")
    ready = first + CPU + penalty
    np.testing.assert_allclose(on["t_end"], np.maximum(on["t_start"] + CPU, ready), rtol=0, atol=1e-9)
    assert s["lazy_load"]["keys_loaded"] == on["key"].nunique() == 200
    assert s["lazy_load"]["penalty_ms"] == pytest.approx(penalty * 1000)
    firsts = on[on["t_start"] == first]
    assert (firsts["t_end"] - firsts["t_start"] >= penalty).all()
    later = on[on["t_start"] >= ready]
    assert len(later) > 0.9 * len(on)
    np.testing.assert_allclose(later["t_end"] - later["t_start"], CPU, atol=1e-9)
    # visible on the first accesses after the cutover, gone once every key was touched
    waited = (on["t_end"] - on["t_start"]) > CPU + 1e-6
    start = on["t_start"].min()
    assert waited[on["t_start"] < start + penalty].mean() > 0.5
    last_load = s["lazy_load"]["last_load_s"]
    assert last_load < 250.0
    assert not waited[on["t_start"] > last_load + CPU + penalty].any()
    late = on[on["t_arrive"] > 250.0]
    assert len(late) > 0 and ((late["t_end"] - late["t_arrive"]) < penalty).all()
    assert r.timeseries["LazyLoads"].sum() == pytest.approx(200)
    assert s["lazy_load"]["waits"] >= 200


def test_aurora_restores_copy_the_data_first_so_no_lazy_loading() -> None:
    scenario = _scenario(restore={"cutover": {"update": "5s", "dns_ttl": 0}})
    scenario["cluster"].update({"engine": "aurora-postgresql", "topology": "aurora"})
    r = simdb.run(scenario, plots=False)
    s = r.summary["restore"]
    assert s["succeeded"] and s["lazy_load"]["penalty_ms"] == 0 and s["lazy_load"]["keys_loaded"] == 0
    assert s["requests_on_restored"] > 0


# ------------------------------------------------------------------------------- neutral and determinism


def test_a_run_without_restore_has_the_neutral_block_and_nothing_else_changes() -> None:
    plain = _scenario(events=[])
    with_backup = _scenario(events=[])
    with_backup["cluster"]["backup"] = {"retention_days": 35, "log_upload_interval": "1min"}
    a, b = simdb.run(plain, plots=False), simdb.run(with_backup, plots=False)
    assert a.summary["restore"] == neutral()
    assert a.summary_json() == b.summary_json(), "backup settings alone change nothing"
    assert list(a.summary["connections"]["max_connections"]) == ["writer"]
    assert "LazyLoads" not in a.timeseries


def test_same_seed_gives_byte_identical_summary_and_events() -> None:
    kw = {"restore": {"cutover": {"update": "5s", "dns_ttl": "3s"}}}
    first, second = _run(**kw), _run(**kw)
    assert first.summary_json() == second.summary_json()
    pd.testing.assert_frame_equal(first.events, second.events)
    assert _run(seed=4, **kw).summary_json() != first.summary_json()
    # scenario.resolved.yaml (every default filled in, the snapshot chosen) replays to the same summary
    replayed = simdb.run(yaml.safe_load(yaml.safe_dump(resolved(first.scenario))), plots=False)
    assert replayed.summary_json() == first.summary_json()


def test_results_folder_has_the_restore_plot(tmp_path: Path) -> None:
    r = simdb.run(_scenario(restore={"cutover": {"update": "5s"}}), out=tmp_path / "run")
    assert (tmp_path / "run" / "plots" / "restore.png").stat().st_size > 10_000
    events = pd.read_csv(tmp_path / "run" / "events.csv")
    assert {"restore_started", "restore_completed", "cutover_dns_changed", "cutover_completed"} <= set(
        events["kind"]
    )
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["restore"] == r.summary["restore"]


# ----------------------------------------------------------------------------------------------- sweep


def test_restore_rto_sweep_over_size_is_linear() -> None:
    """The README's `simdb sweep restore-rto --grid cluster.storage.size_gib=...`, on a small grid."""
    base = simdb.load_scenario(simdb.api.find_scenario("restore-rto"))
    speed, backup = base.cluster.restore, base.cluster.backup
    (ev,) = [e for e in base.events if e.action == "restore"]
    target = backup.latest_restorable(ev.at)
    replay = (target - backup.automated_snapshot_before(target)) / speed.replay_speedup
    result = sweeps.sweep("restore-rto", ["cluster.storage.size_gib=50,100,200"], duration="45min", workers=1)
    table = result.table.set_index("cluster.storage.size_gib")
    for size in (50, 100, 200):
        expected = speed.provisioning + size * 1024.0 / speed.throughput_mib_per_s + replay
        assert table.loc[size, "restore.rto_s"] == pytest.approx(expected, abs=1e-6)
        assert table.loc[size, "restore.succeeded"] == 1.0
        assert table.loc[size, "requests.failed"] == 0


# ----------------------------------------------------------------------------------------- bad fields

BASE_TEXT = """\
name: drill
duration: 20min
cluster:
  engine: postgres
  topology: single-az
  backup: {retention_days: 7}
services:
  - name: api
    workload:
      - {query: q, rate: 10/s}
events:
  - {at: 2min, action: snapshot, name: pre-deploy}
  - {at: 9min, action: restore, from: pitr}
"""


def _edit(old: str, new: str) -> str:
    assert BASE_TEXT.count(old) == 1
    return BASE_TEXT.replace(old, new)


BAD = [
    (
        "restore-time-after-latest-restorable",
        _edit("from: pitr}", "from: pitr, restore_time: 8min}"),
        "from: pitr",
        "events[1].restore_time",
        "after the latest restorable time when the restore starts (300 s",
    ),
    (
        "pitr-without-automated-backups",
        _edit("retention_days: 7", "retention_days: 0"),
        "from: pitr",
        "events[1].from",
        "point-in-time restore needs automated backups",
    ),
    (
        "aurora-retention-0",
        _edit(
            "engine: postgres\n  topology: single-az", "engine: aurora-postgresql\n  topology: aurora"
        ).replace("retention_days: 7", "retention_days: 0"),
        "backup:",
        "cluster.backup.retention_days",
        "Aurora keeps automated backups for 1-35 days",
    ),
    (
        "retention-too-long",
        _edit("retention_days: 7", "retention_days: 36"),
        "backup:",
        "cluster.backup.retention_days",
        "less than or equal to 35",
    ),
    (
        "unknown-snapshot",
        _edit("from: pitr}", "from: snapshot, snapshot: pre-deplyo}"),
        "from: snapshot",
        "events[1].snapshot",
        "no snapshot 'pre-deplyo' before the restore; did you mean 'pre-deploy'?",
    ),
    (
        "snapshot-after-restore",
        _edit("at: 2min, action: snapshot", "at: 10min, action: snapshot").replace(
            "from: pitr}", "from: snapshot, snapshot: pre-deploy}"
        ),
        "from: snapshot",
        "events[1].snapshot",
        "(it is taken after the restore starts)",
    ),
    (
        "restore-time-with-snapshot",
        _edit("from: pitr}", "from: snapshot, restore_time: 1min}"),
        "from: snapshot",
        "events[1].restore_time",
        "restore_time applies to `from: pitr`",
    ),
    (
        "unknown-source",
        _edit("from: pitr}", "from: backup}"),
        "from: backup",
        "events[1].from",
        "'pitr' or 'snapshot'",
    ),
    (
        "unknown-fault",
        _edit("from: pitr}", "from: pitr, faults: [kms]}"),
        "faults: [kms]",
        "events[1].faults[0]",
        "'subnet_group_mismatch', 'kms_key_inaccessible'",
    ),
    (
        "cutover-field-misspelt",
        _edit("from: pitr}", "from: pitr, cutover: {ttl: 5s}}"),
        "cutover:",
        "events[1].cutover.ttl",
        "did you mean 'dns_ttl'?",
    ),
    (
        "two-restores",
        BASE_TEXT + "  - {at: 15min, action: restore}\n",
        "at: 15min",
        "events[2].action",
        "one restore per run",
    ),
    (
        "restore-behind-a-proxy",
        _edit("  backup: {retention_days: 7}\n", "  backup: {retention_days: 7}\n  proxy: {}\n"),
        "from: pitr",
        "events[1].action",
        "restore with RDS Proxy is not modelled yet",
    ),
    (
        "restore-of-a-global-database",
        _edit(
            "  engine: postgres\n  topology: single-az\n",
            "  engine: aurora-postgresql\n  topology: aurora-global\n"
            "  secondary: {region: eu-west-1, readers: [{az: a}]}\n",
        ),
        "from: pitr",
        "events[1].action",
        "restore of an aurora-global database is not modelled yet",
    ),
    (
        "snapshot-named-automated",
        _edit("name: pre-deploy", "name: automated"),
        "action: snapshot",
        "events[0].name",
        "names the automated snapshots",
    ),
]


@pytest.mark.parametrize(
    ("text", "needle", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_restore_fields_give_one_line_and_exit_2(
    text: str, needle: str, field: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "drill.yaml"
    path.write_text(text, encoding="utf-8")
    line = assert_one_line_error(validate_cli(str(path)))
    assert line.startswith(f"simdb: {path}:{line_of(text, needle)}: {field}: "), line
    assert message in line, line


def test_the_base_of_the_bad_cases_is_valid_and_a_real_process_exits_2(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BASE_TEXT, encoding="utf-8")
    assert validate_cli(str(good)).code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD[0][1], encoding="utf-8")
    assert "restore_time" in assert_one_line_error(validate_subprocess(str(bad)))
