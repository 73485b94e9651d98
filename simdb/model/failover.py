"""Failover: what the cluster does when an instance is lost, phase by phase (FACTS: failover.phases).

Each phase's length is drawn from ``cluster.failover`` (uniform between min and max; defaults per
topology). A writer loss runs:

1. **fault** — the writer goes down; in-flight work fails ``connection_lost`` (at once, or after the
   client's timeouts when the host is unreachable).
2. **detection** — the service notices (a planned ``failover`` skips this).
3. **promotion** — the new writer accepts writes: Aurora promotes a reader (lowest tier, then the
   largest, FACTS: failover.tiers; no reader: the writer is recreated), a Multi-AZ cluster one of its
   standbys, a Multi-AZ instance moves to its standby's host (a new address). Single-AZ recovers in place.
4. **DNS update** — the writer endpoint's record names the new writer; clients see it through the
   resolver's TTL and their own cache (:mod:`.endpoints`).
5. **recovery** — after the new writer is available, the failed instance is back: as a reader (Aurora, Multi-AZ cluster; clients still
   holding its address now reach a read-only instance, FACTS: dns.stale_writer) or as the new standby.

Readers that fail leave the reader endpoint after detection plus a DNS update and rejoin the same way.
Every step is an event in events.csv; each writer outage is one entry of ``failovers``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..rng import uniforms
from .instance import Instance
from .storage import AuroraVolume, EbsStorage

if TYPE_CHECKING:
    from ..engine import Sim


class Failovers:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.env = sim.env
        cluster = sim.scenario.cluster
        self.topology = cluster.topology
        self.aurora = cluster.is_aurora
        self.phases = cluster.failover
        self.u = uniforms(sim.stream("cluster.failover"))
        self.writer = sim.instances[0]
        self.dns_writer = self.writer  # the instance the writer record should name
        self.standby_az = cluster.standby_az
        self.in_service: list[Instance] = list(sim.instances[1:])  # readers the control plane counts healthy
        self.records: list[dict[str, Any]] = []
        self.busy = False  # a writer failover is running, until its new writer is available
        self._az_waiters: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ helpers

    def draw(self, phase: str) -> float:
        p = getattr(self.phases, phase)
        return p.min + (p.max - p.min) * next(self.u)

    def _event(self, kind: str, target: str, detail: str = "") -> None:
        self.sim.rec.event(self.env.now, kind, target, detail)

    def _until_az_up(self, az: str) -> Generator[Any, Any, None]:
        while self.sim.az_outages.get(az):
            ev = self.env.event()
            self._az_waiters.setdefault(az, []).append(ev)
            yield ev

    def az_back(self, az: str) -> None:
        for ev in self._az_waiters.pop(az, []):
            ev.succeed()

    def _wait_until(self, t: float) -> Any:
        return self.env.timeout(max(0.0, t - self.env.now))

    def _publish(self) -> None:
        """The DNS records as the control plane now sees the cluster."""
        endpoints = self.sim.endpoints
        endpoints["writer"].update([self.dns_writer])
        readers = [i for i in self.in_service if i.role == "reader"]
        # each Region's reader endpoint names its own readers (one Region, "", outside aurora-global); with
        # none, an Aurora cluster's falls back to its writer, and otherwise the record stays as it is
        for name, region in self.sim.reader_endpoints.items():
            ep = endpoints[name]
            mine = [i for i in readers if i.region == region]
            if mine:
                ep.update(mine)
            elif self.aurora and self.dns_writer.region == region:
                ep.update([self.dns_writer])
            else:
                ep.update(ep.members)
        for name, ep in endpoints.items():
            if name.startswith("custom:"):
                custom = name.removeprefix("custom:")
                members = [i for i in readers if i.custom_endpoint == custom]
                ep.update(members or ep.members)
        if self.sim.proxy is not None:
            self.sim.proxy.retarget()

    def _set_storage_writer(
        self, az: str, standbys: list[str] | None = None, missing: set[str] | None = None
    ) -> None:
        """Commit paths after a role change: the writer's AZ, and the standbys a commit waits for."""
        storage = self.sim.storage
        if isinstance(storage, AuroraVolume):
            storage.set_writer_az(az)
        elif isinstance(storage, EbsStorage) and self.topology != "single-az":
            if standbys is None:  # multi-az-cluster: the other two instances, those down not answering
                others = [i for i in self.sim.instances if i is not self.writer and not i.restored]
                standbys = [i.az for i in others]
                missing = {i.az for i in others if not i.up}
            storage.set_writer(az, standbys, missing or set())

    def new_record(
        self, kind: str, cause: str, failed: Instance, blackhole: bool, in_flight: int
    ) -> dict[str, Any]:
        """A writer outage's entry, filled in as its phases pass (summary ``failovers``)."""
        now = self.env.now
        record: dict[str, Any] = {
            "start_s": now,
            "kind": kind,
            "cause": cause,
            "failed": failed.name,
            "mode": "blackhole" if blackhole else "reset",
            "in_flight": in_flight,
            "promoted": None,
            "detected_s": now,
            "writer_available_s": None,
            "dns_updated_s": None,
            "dns_ttl_s": self.sim.scenario.cluster.dns.ttl,
        }
        self.records.append(record)
        return record

    # ------------------------------------------------------------------ entry points

    def lose(
        self, inst: Instance, cause: str, blackhole: bool, planned: bool = False, to: str | None = None
    ) -> None:
        """``inst`` is lost (a fault, an AZ outage, or a planned failover of the writer)."""
        if not inst.up:
            return
        if inst is self.writer and not self.busy:
            self.busy = True
            self.env.process(self._writer_lost(cause, blackhole, planned, to))
        else:
            self.env.process(self._reader_lost(inst, cause, blackhole))

    def reboot(self, inst: Instance) -> None:
        if inst.up:
            self.env.process(self._reboot(inst))

    # ------------------------------------------------------------------ processes

    def _writer_lost(
        self, cause: str, blackhole: bool, planned: bool, to: str | None
    ) -> Generator[Any, Any, None]:
        old = self.writer
        t0 = self.env.now
        recovery = self.draw("recovery")
        in_flight = old.go_down(cause, blackhole)
        record = self.new_record("failover", cause, old, blackhole, in_flight)
        self._event("failover_start", old.name, f"{cause}; {in_flight} requests in flight")
        if not planned:
            yield self.env.timeout(self.draw("detection"))
            record["detected_s"] = self.env.now
            self._event("failure_detected", old.name, f"after {self.env.now - t0:.1f} s")

        if self.topology == "single-az":
            record["kind"] = "restart"
            record["dns_ttl_s"] = 0.0
            yield self._wait_until(t0 + recovery)
            yield from self._until_az_up(old.az)
            old.go_up("recovered in place")
            self.writer_available(record, old, "same address: no DNS change")
            record["dns_updated_s"] = record["writer_available_s"]
            return

        if self.topology == "multi-az-instance":
            standby_az = self.standby_az
            assert standby_az is not None
            yield from self._until_az_up(standby_az)
            self._event("promotion_started", old.name, f"standby in AZ {standby_az}")
            yield self.env.timeout(self.draw("promotion"))
            old_az = old.az
            left = old.move(standby_az)
            left.unreachable = blackhole  # the failed host stays as it failed until it is rebuilt
            old.go_up(f"standby in AZ {standby_az} promoted")
            self._set_storage_writer(standby_az, [old_az], {old_az})
            record["promoted"] = f"{old.name} (standby, AZ {standby_az})"
            self.writer_available(record, old, f"now in AZ {standby_az}")
            yield from self.dns_names(record, old)
            # the failed host is rebuilt as the new standby; it never serves clients
            yield self._wait_until(record["writer_available_s"] + recovery)
            yield from self._until_az_up(old_az)
            left.unreachable = False
            self.standby_az = old_az
            self._set_storage_writer(standby_az, [old_az], set())
            self._event("standby_ready", old.name, f"new standby in AZ {old_az}")
            return

        # aurora, multi-az-cluster: promote a reader, or (aurora, none left) recreate the writer
        new = self._choose(to)
        if new is None:
            yield from self._recreate(old, record)
            return
        if new in self.in_service:
            self.in_service.remove(new)
        # the promoted reader restarts as the writer: its connections are reset (FACTS: failover.phases)
        new.go_down("restarting as the writer")
        self._event("promotion_started", new.name, f"replacing {old.name}")
        record["promoted"] = new.name
        yield self.env.timeout(self.draw("promotion"))
        new.set_role("writer")
        old.set_role("reader")
        self.writer = new
        new.go_up("promoted to writer")
        self._set_storage_writer(new.az)
        self.writer_available(record, new, f"after {self.env.now - t0:.1f} s")
        self.env.process(self.rejoin(old, self.env.now + recovery, "back as a reader"))
        yield from self.dns_names(record, new)

    def writer_available(self, record: dict[str, Any], writer: Instance, detail: str) -> None:
        record["writer_available_s"] = self.env.now
        self.busy = False  # the new writer may fail in turn
        self._event("writer_available", writer.name, detail)
        if self.sim.proxy is not None:
            # the proxy follows the cluster's own view: no DNS wait (FACTS: failover.proxy)
            self.sim.proxy.retarget()

    def dns_names(self, record: dict[str, Any], writer: Instance) -> Generator[Any, Any, None]:
        """After a DNS update, the writer endpoint's record names ``writer`` (at its current address)."""
        yield self.env.timeout(self.draw("dns_update"))
        self.dns_writer = writer
        self._publish()
        record["dns_updated_s"] = self.env.now

    def _choose(self, to: str | None) -> Instance | None:
        # within the writer's Region: a global database's secondary is promoted only by a global operation
        region = self.writer.region
        candidates = [i for i in self.sim.instances if i.role == "reader" and i.up and i.region == region]
        if to is not None:
            named = [i for i in candidates if i.name == to]
            if named:
                return named[0]
        if not candidates:
            return None
        if self.aurora:
            # lowest tier first, then the largest instance; among equals, any (FACTS: failover.tiers)
            def rank(i: Instance) -> tuple:
                return (i.tier, -i.memory_gib, -i.vcpu)

            best = min(rank(i) for i in candidates)
            candidates = [i for i in candidates if rank(i) == best]
        # a Multi-AZ cluster promotes the most caught-up standby; lag is computed after the run, so any
        # of the two (FACTS: failover.multi_az_cluster_choice)
        return candidates[int(next(self.u) * len(candidates))]

    def _recreate(self, old: Instance, record: dict[str, Any]) -> Generator[Any, Any, None]:
        record["kind"] = "recreate"
        self._event("recreate_started", old.name, "no reader to promote: a new writer is created")
        yield self.env.timeout(self.draw("recreate"))
        yield from self._until_az_up(old.az)
        old.move(old.az)
        old.go_up("recreated")
        record["promoted"] = f"{old.name} (recreated)"
        self.writer_available(record, old, "recreated")
        yield from self.dns_names(record, old)  # the same instance at a new address

    def rejoin(self, inst: Instance, back_at: float, cause: str) -> Generator[Any, Any, None]:
        """A failed instance is back as a reader once its recovery has passed and its AZ is up, then joins
        the reader endpoint after a DNS update."""
        yield self._wait_until(back_at)
        yield from self._until_az_up(inst.az)
        if inst.up or inst.role != "reader":
            return
        inst.go_up(cause)
        self._set_storage_writer(self.writer.az)
        yield self.env.timeout(self.draw("dns_update"))
        if inst.up and inst not in self.in_service:
            self.in_service.append(inst)
            self._publish()

    def _reader_lost(self, inst: Instance, cause: str, blackhole: bool) -> Generator[Any, Any, None]:
        t0 = self.env.now
        back_at = t0 + self.draw("recovery")
        inst.go_down(cause, blackhole)
        self._set_storage_writer(self.writer.az)
        yield self.env.timeout(self.draw("detection"))
        if inst in self.in_service and not inst.up:
            self.in_service.remove(inst)
            self._event("failure_detected", inst.name, f"after {self.env.now - t0:.1f} s")
            yield self.env.timeout(self.draw("dns_update"))
            self._publish()
        yield from self.rejoin(inst, back_at, "recovered")

    def _reboot(self, inst: Instance) -> Generator[Any, Any, None]:
        is_writer = inst is self.writer
        in_flight = inst.go_down("reboot")
        length = self.draw("reboot")
        if is_writer:
            record = self.new_record("reboot", "reboot", inst, False, in_flight)
            record["dns_ttl_s"] = 0.0  # same address: no DNS change
        yield self.env.timeout(length)
        yield from self._until_az_up(inst.az)
        inst.go_up("rebooted")
        if is_writer:
            record["writer_available_s"] = record["dns_updated_s"] = self.env.now
