"""Backup and restore: a restore creates a NEW cluster, then the application is moved to it
(FACTS: restore.new_resource; course 004 §9).

A ``restore`` event runs these phases (every step is a row in events.csv):

1. **incident** (``at``): with ``old_cluster: lost`` every original instance goes down for good.
2. **provisioning** — the new cluster and its instance are created (``cluster.restore.provisioning``).
3. **copy** — the data at the restore point is copied: size ÷ ``throughput_mib_per_s``.
4. **replay** (point-in-time only) — the logs from the base snapshot (the latest automated snapshot before
   the target) to the target replay at ``replay_speedup`` × real time.
5. **available** — the restored instance (``<writer>-restored``, the writer's class and AZ) is up at a new
   address. RTO = provisioning + copy + replay (FACTS: restore.duration).
6. **cutover** — after ``cutover.update`` the records the application resolves (writer, reader and custom
   endpoints) name the restored instance, with ``cutover.dns_ttl``; clients follow through their resolver and
   DNS caches as after a failover (:mod:`.endpoints`), and their pools reconnect as pools do: at once when
   the old cluster is gone, at ``max_lifetime`` when it still answers, or when the runbook soft-evicts them
   one TTL after the switch (``refresh_pools``).

The first access to each key on the restored instance waits ``cluster.restore.lazy_load`` after its CPU
burst while the key's block is fetched (FACTS: restore.lazy_load); requests for a key whose fetch is under
way wait for the same fetch. A key stands for the block holding it.

Faults (course 004 §14.5, FACTS: restore.failures) stop the drill where they bite: a subnet group that
does not fit and a KMS key the account cannot use fail the restore call at once; a restored instance with
the default security group is up but drops the application's packets (attempts time out); an application
whose configuration names the old cluster endpoint never sees the switch.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..units import format_duration
from .instance import NORMAL, Instance
from .pool import Pool
from .workload import Request

if TYPE_CHECKING:
    from ..engine import Sim
    from ..scenario import RestoreEvent, Scenario

# what each fault says in events.csv and summary.json, and where it stops the drill
FAULT_REASONS = {
    "subnet_group_mismatch": (
        "restore call rejected (DBSubnetGroupNotFoundFault / InvalidSubnet): the DB subnet group named in the "
        "runbook does not exist in the target VPC or does not cover the AZs"
    ),
    "kms_key_inaccessible": (
        "restore call rejected (KMSKeyNotAccessibleFault): the backup's KMS key is not usable by this account "
        "or role; grant it before the drill"
    ),
    "security_group_mismatch": (
        "the restored instance got the default security group, which does not admit the application: "
        "connection attempts time out"
    ),
    "app_config_old_endpoint": (
        "the application's configuration names the old cluster endpoint, so switching the record does not "
        "reach it: clients keep using the old cluster"
    ),
}
CALL_FAULTS = ("subnet_group_mismatch", "kms_key_inaccessible")  # the restore call itself is rejected


def plan(scenario: Scenario, ev: RestoreEvent) -> dict[str, Any]:
    """Restore point, base snapshot, size and phase lengths: arithmetic on the scenario, no randomness."""
    cluster = scenario.cluster
    backup, speed = cluster.backup, cluster.restore
    latest = backup.latest_restorable(ev.at)
    if ev.from_ == "pitr":
        target = latest if ev.restore_time is None else ev.restore_time
        base = backup.automated_snapshot_before(target)
        assert base is not None  # validated: pitr needs automated backups
        replay = (target - base) / speed.replay_speedup
        snapshot = ""
    else:
        snapshot = ev.snapshot or "automated"
        if snapshot == "automated":
            taken = backup.automated_snapshot_before(ev.at)
            assert taken is not None  # validated
            target = taken
        else:
            target = next(e.at for e in scenario.events if getattr(e, "name", None) == snapshot)
        base = target
        replay = 0.0
    size = max(0.0, cluster.storage.size_gib + cluster.storage.growth_gib_per_day * target / 86400.0)
    return {
        "from": ev.from_,
        "snapshot": snapshot,
        "target_s": target,
        "latest_restorable_s": latest,
        "base_snapshot_s": base,
        "size_gib": size,
        "phases": {
            "provisioning_s": speed.provisioning,
            "copy_s": size * 1024.0 / speed.throughput_mib_per_s,
            "replay_s": replay,
        },
    }


class RestoredInstance(Instance):
    """The restored cluster's instance: its blocks load lazily from S3 on first access."""

    restored = True

    def __init__(self, *args: Any, lazy_load: float) -> None:
        super().__init__(*args)
        self.up = False
        self.down_log = [(0.0, math.inf)]  # it does not exist until the restore completes
        self.lazy_load = lazy_load
        self.ready: dict[int, float] = {}  # key -> when its block is (or will be) loaded
        self.loads = array("d")  # first-access times, one per key
        self.waits = 0  # requests that waited for a block
        self._lazy_callbacks = (self._lazy_done,)

    def submit(self, job: Any) -> None:
        if self.lazy_load > 0.0 and job.__class__ is Request:
            job.after_cpu = self._lazy_after_cpu
        super().submit(job)

    def _lazy_after_cpu(self, req: Request) -> None:
        after = req.query._after_cpu
        req.after_cpu = after  # a retried request starts clean
        now = self.env._now
        if req.t_start <= self.broken_before:  # failed with the instance: no fetch
            after(req)
            return
        ready = self.ready.get(req.key)
        if ready is None:
            ready = self.ready[req.key] = now + self.lazy_load
            self.loads.append(now)
        if ready > now:
            self.waits += 1
            req.callbacks = self._lazy_callbacks
            self._schedule(req, NORMAL, ready - now)
        else:
            after(req)

    def _lazy_done(self, req: Request) -> None:
        req.after_cpu(req)


class RestoreRun:
    """One restore and its cutover, as a SimPy process; ``log()`` is what analysis gets."""

    def __init__(self, sim: Sim, ev: RestoreEvent) -> None:
        self.sim = sim
        self.env = sim.env
        self.ev = ev
        self.plan = plan(sim.scenario, ev)
        self.original = list(sim.instances)
        writer = self.original[0]
        self.instance = RestoredInstance(
            sim,
            len(sim.instances),
            f"{writer.name}-restored",
            "writer",
            writer.az,
            writer.vcpu,
            writer.memory_gib,
            writer.max_connections,
            writer.instance_class,
            lazy_load=sim.scenario.cluster.restore.lazy_load or 0.0,
        )
        sim.instances.append(self.instance)
        cutover = ev.cutover
        self.record: dict[str, Any] = {
            "instance": self.instance.index,
            "name": self.instance.name,
            "old_cluster": ev.old_cluster,
            "faults": list(ev.faults),
            "started_s": ev.at,
            **self.plan,
            "available_s": None,
            "failed_s": None,
            "reason": "",
            "lazy_load_s": self.instance.lazy_load,
            "cutover": {
                "enabled": cutover.enabled,
                "update_s": cutover.update,
                "dns_ttl_s": cutover.dns_ttl,
                "refresh_pools": cutover.refresh_pools,
                "started_s": None,
                "dns_changed_s": None,
                "pools_refreshed_s": None,
                "failed_s": None,
                "reason": "",
            },
        }
        self.env.process(self._run())
        self.env.process(self._automated_snapshots())

    def _automated_snapshots(self) -> Generator[Any, Any, None]:
        """The daily automated snapshots that fall inside the run, as events (FACTS: backup.window)."""
        backup = self.sim.scenario.cluster.backup
        if backup.retention_days == 0:
            return
        t = -backup.automated_snapshot_age + backup.snapshot_interval
        while t < self.sim.scenario.duration:
            yield self.env.timeout(t - self.env.now)
            self.sim.rec.event(
                self.env.now, "snapshot_created", "automated", "automated snapshot (backup window)"
            )
            t += backup.snapshot_interval

    def _event(self, kind: str, detail: str, target: str | None = None) -> None:
        self.sim.rec.event(self.env.now, kind, target or self.instance.name, detail)

    def _fail(self, fault: str) -> None:
        self.record["failed_s"] = self.env.now
        self.record["reason"] = f"{fault}: {FAULT_REASONS[fault]}"
        self._event("restore_failed", self.record["reason"])

    def _run(self) -> Generator[Any, Any, None]:
        ev, p, env = self.ev, self.plan, self.env
        phases = p["phases"]
        yield env.timeout(ev.at)
        source = "point-in-time" if ev.from_ == "pitr" else f"snapshot {p['snapshot']}"
        self._event(
            "restore_started",
            f"{source} to {p['target_s']:g} s (latest restorable {p['latest_restorable_s']:g} s), "
            f"{p['size_gib']:g} GiB, into a new cluster; planned provisioning {phases['provisioning_s']:g} s + copy "
            f"{phases['copy_s']:g} s + replay {phases['replay_s']:g} s; old cluster {ev.old_cluster}",
        )
        if ev.old_cluster == "lost":
            for inst in self.original:
                inst.go_down("lost: the cluster is being restored from backup")
        for fault in CALL_FAULTS:
            if fault in ev.faults:
                self._fail(fault)
                return
        yield env.timeout(phases["provisioning_s"])
        self._event("restore_copying", f"copying {p['size_gib']:g} GiB ({phases['copy_s']:g} s)")
        yield env.timeout(phases["copy_s"])
        if phases["replay_s"] > 0:
            self._event(
                "restore_replaying",
                f"replaying logs from the snapshot at {p['base_snapshot_s']:g} s to {p['target_s']:g} s "
                f"({phases['replay_s']:g} s)",
            )
            yield env.timeout(phases["replay_s"])
        inst = self.instance
        inst.go_up(f"restored ({source})")
        self.record["available_s"] = env.now
        self._event("restore_completed", f"available after {env.now - ev.at:g} s (RTO)")
        if "security_group_mismatch" in ev.faults:
            inst.address.unreachable = True  # the default security group drops the application's packets
        cutover = ev.cutover
        if not cutover.enabled:
            return
        record = self.record["cutover"]
        record["started_s"] = env.now
        self._event(
            "cutover_started",
            f"updating the application's endpoint (takes {format_duration(cutover.update)})",
        )
        yield env.timeout(cutover.update)
        if "app_config_old_endpoint" in ev.faults:
            self._cutover_failed("app_config_old_endpoint")
            return
        for endpoint in self.sim.endpoints.values():
            if not endpoint.is_proxy:
                endpoint.ttl = cutover.dns_ttl
                endpoint.update([inst], "restore cutover")
        record["dns_changed_s"] = env.now
        self._event(
            "cutover_dns_changed", f"records name {inst.name}; TTL {format_duration(cutover.dns_ttl)}"
        )
        if "security_group_mismatch" in ev.faults:
            self._cutover_failed("security_group_mismatch")
            return
        if cutover.refresh_pools:
            yield env.timeout(cutover.dns_ttl)
            evicted = self._soft_evict()
            record["pools_refreshed_s"] = env.now
            self._event("cutover_pools_refreshed", f"{evicted} connections soft-evicted")

    def _cutover_failed(self, fault: str) -> None:
        record = self.record["cutover"]
        record["failed_s"] = self.env.now
        record["reason"] = f"{fault}: {FAULT_REASONS[fault]}"
        self._event("cutover_failed", record["reason"])

    def _soft_evict(self) -> int:
        """HikariCP softEvictConnections on every pool (FACTS: hikari.soft_evict)."""
        evicted = 0
        for inst in self.sim.instances:
            for conn in list(inst.open_connections.values()):
                if isinstance(conn.pool, Pool) and not conn.closed:
                    conn.pool.soft_evict(conn)
                    evicted += 1
        return evicted

    def log(self) -> dict[str, Any]:
        inst = self.instance
        return {**self.record, "loads": list(inst.loads), "waits": inst.waits}


def schedule_restore(sim: Sim, ev: Any, index: int) -> None:
    sim.restore = RestoreRun(sim, ev)


def schedule_snapshot(sim: Sim, ev: Any, index: int) -> None:
    def run():  # type: ignore[no-untyped-def]
        yield sim.env.timeout(ev.at)
        sim.rec.event(sim.env.now, "snapshot_created", ev.name, "manual snapshot: a restore point")

    sim.env.process(run())
