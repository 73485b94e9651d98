"""Aurora Global Database: a primary Region's cluster and a read-only secondary Region's (FACTS: global.lag).

Replication is storage-level and asynchronous (:class:`..replication.GlobalPlan`): a commit waits for its
own Region's quorum only, and the change reaches the other Region's volume a lag later. Apply times are
computed after the run from the plan this module records: the lag drawn for each ``lag_step``, the Regions'
outages, and the *epochs* (one per primary Region, cut by an unplanned failover).

Operations (each is a writer outage in ``failovers`` and an entry of the summary's ``global``):

- **region_outage**: every instance in the Region goes down at once and its ecs services stop; nothing fails
  over across Regions by itself (an operator decides). The instances are back when the Region is.
- **global_switchover** (planned, FACTS: global.switchover): the writer is demoted (writes stop), the
  secondary catches up with every committed write (RPO 0), then one of its readers is promoted
  (``secondary.switchover``) and the global writer endpoint names it after a DNS update. The old writer
  rejoins as a reader of the now secondary Region after ``failover.recovery``.
- **global_failover** (unplanned, detach and promote, FACTS: global.failover): replication stops at the
  failure (the Region's outage, or now when the primary is still up, which fences its writer); writes that had
  not reached the secondary are lost (RPO = the lag then). A secondary reader is promoted
  (``secondary.promotion``) and the global writer endpoint follows, through DNS TTL and client caches.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..record import OK
from ..rng import uniforms
from .replication import Epoch, GlobalPlan
from .services import ServiceRuntime
from .storage import COPIES_PER_AZ, AuroraVolume, draw_lognormal

if TYPE_CHECKING:
    from ..engine import Sim
    from ..scenario import Phase
    from .instance import Instance


def az_name(primary: str, region: str, letter: str) -> str:
    """An AZ's name: the primary Region's keep their bare letters (az_outage names them), the secondary's are
    Region + letter, as AWS names AZs (eu-west-1a), so that the two Regions' AZs never match."""
    return letter if region == primary else f"{region}{letter}"


class GlobalDatabase:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.env = sim.env
        cluster = sim.scenario.cluster
        spec = cluster.secondary
        assert spec is not None  # validated: aurora-global has a secondary
        self.spec = spec
        self.regions = cluster.regions()
        self.home = self.regions[0]  # the first primary: its AZs are the bare letters
        self.primary = self.regions[0]
        n = math.ceil(sim.scenario.duration / spec.lag_step) + 1
        self.lag_s = draw_lognormal(sim.stream("cluster.secondary.lag"), spec.lag, (n,))
        self.u = uniforms(sim.stream("cluster.secondary.failover"))
        self.epochs: list[Epoch] = [Epoch(0.0, self.regions[0], self.regions[1])]
        self.outages: dict[str, list[list[float]]] = {r: [] for r in self.regions}
        self.operations: list[dict[str, Any]] = []
        self.busy = False  # a switchover or failover is running
        self._outage_record: dict[str, Any] | None = None  # a primary Region's outage not yet resolved
        self._taken: dict[str, list[Instance]] = {}
        self._stopped: dict[str, list[tuple[ServiceRuntime, int]]] = {}

    # ------------------------------------------------------------------ helpers

    def other(self, region: str) -> str:
        return self.regions[1] if region == self.regions[0] else self.regions[0]

    def is_down(self, region: str) -> bool:
        windows = self.outages[region]
        return bool(windows) and math.isinf(windows[-1][1])

    def draw(self, phase: Phase) -> float:
        return phase.min + (phase.max - phase.min) * next(self.u)

    def _event(self, kind: str, target: str, detail: str = "") -> None:
        self.sim.rec.event(self.env.now, kind, target, detail)

    def region_azs(self, region: str) -> set[str]:
        azs = {i.az for i in self.sim.instances if i.region == region}
        if region == self.home:
            azs.update(self.sim.scenario.cluster.storage.azs)
        else:
            azs.update(az_name(self.home, region, a) for a in self.sim.scenario.cluster.storage.azs)
        return azs

    def plan(self) -> GlobalPlan:
        """The replication plan so far; an outage still running has no end (changes waiting for it never
        arrive)."""
        return GlobalPlan(
            lag_s=self.lag_s,
            lag_step=self.spec.lag_step,
            epochs=tuple(self.epochs),
            outages={r: tuple((a, b) for a, b in w) for r, w in self.outages.items()},
            instance_region=tuple(i.region for i in self.sim.instances),
        )

    def _replicated_by(self) -> float:
        """When every write committed so far in this epoch is in the other Region's volume."""
        sim = self.sim
        rec = sim.rec.requests()
        is_write = np.array([q.is_write for q in sim.queries] + [False], dtype=bool)
        query = rec["query"]
        epoch = self.epochs[-1]
        mask = (rec["code"] == OK) & is_write[np.where(query >= 0, query, len(sim.queries))]
        mask &= rec["t_end"] >= epoch.start
        write_t = np.sort(rec["t_end"][mask])
        arrive = self.plan().arrivals(write_t, epoch)
        return float(arrive[-1]) if arrive.size else self.env.now

    # ------------------------------------------------------------------ Region outages

    def region_down(self, region: str, cause: str, blackhole: bool) -> None:
        sim = self.sim
        failovers = sim.failovers
        self.outages[region].append([self.env.now, math.inf])
        self._event("region_outage", region, cause)
        # instances waiting to come back (a failed reader's recovery) wait for the Region too
        for az in self.region_azs(region):
            sim.az_outages[az] = sim.az_outages.get(az, 0) + 1
        taken = [i for i in sim.instances if i.region == region and i.up]
        self._taken[region] = taken
        writer_in_flight = 0
        for inst in taken:
            in_flight = inst.go_down(f"Region {region} outage", blackhole)
            if inst is failovers.writer:
                writer_in_flight = in_flight
            if inst in failovers.in_service:
                failovers.in_service.remove(inst)
        stopped = []
        for svc in sim.services:
            # ecs tasks placed in the Region stop with it (Lambda functions are not modelled so)
            if isinstance(svc, ServiceRuntime) and (svc.spec.region or self.home) == region and svc.serving:
                stopped.append((svc, len(svc.serving)))
                svc.stop_tasks(list(svc.serving))
        self._stopped[region] = stopped
        if failovers.writer.region == region and failovers.writer in taken:
            failovers.busy = True  # no in-Region failover: the whole Region is gone
            self._outage_record = failovers.new_record(
                "region_outage", f"Region {region} outage", failovers.writer, blackhole, writer_in_flight
            )
            self._outage_record["detected_s"] = None

    def region_up(self, region: str) -> None:
        sim = self.sim
        failovers = sim.failovers
        self.outages[region][-1][1] = self.env.now
        self._event("region_recovered", region, "outage over")
        for az in self.region_azs(region):
            sim.az_outages[az] -= 1
            if not sim.az_outages[az]:
                if az in sim.storage.down_azs:  # an az_outage that ended while the Region was out
                    sim.storage.az_up(az)
                failovers.az_back(az)
        for runtime, count in self._stopped.pop(region, []):
            runtime.start_tasks(count)
        record = self._outage_record
        for inst in self._taken.pop(region, []):
            if inst is failovers.writer and record is not None:
                # nobody failed over: the writer is back in place, at the same address
                inst.go_up(f"Region {region} back")
                record["detected_s"] = self.env.now
                failovers.writer_available(record, inst, f"Region {region} back")
                record["dns_updated_s"] = self.env.now
                record["dns_ttl_s"] = 0.0
                self._outage_record = None
            elif inst.role == "reader":
                # a demoted writer is rebuilt as a reader of the other Region's primary first
                back = self.env.now + (
                    self.draw(sim.scenario.cluster.failover.recovery) if inst.demoted else 0.0
                )
                self.env.process(failovers.rejoin(inst, back, f"Region {region} back: a reader again"))

    # ------------------------------------------------------------------ switchover and failover

    def _candidates(self, region: str, to: str | None) -> Instance | None:
        """The instance to promote in ``region``: ``to`` if up, else the lowest tier, then the largest."""
        up = [i for i in self.sim.instances if i.region == region and i.up and i.role == "reader"]
        named = [i for i in up if i.name == to]
        if named:
            return named[0]
        if not up:
            return None

        def rank(i: Instance) -> tuple:
            return (i.tier, -i.memory_gib, -i.vcpu)

        best = min(rank(i) for i in up)
        up = [i for i in up if rank(i) == best]
        return up[int(next(self.u) * len(up))]

    def _skip(self, action: str, why: str) -> None:
        self._event(f"{action}_skipped", self.other(self.primary), why)

    def switchover(self, to: str | None) -> None:
        failovers = self.sim.failovers
        target = self.other(self.primary)
        if self.busy or failovers.busy:
            self._skip("global_switchover", "a failover or switchover is still running")
            return
        if self.is_down(self.primary) or self.is_down(target):
            self._skip("global_switchover", "a switchover needs both Regions up")
            return
        new = self._candidates(target, to)
        if new is None:
            self._skip("global_switchover", f"no reader of {target} is up to promote")
            return
        self.busy = failovers.busy = True
        self.env.process(self._switchover(new))

    def _switchover(self, new: Instance) -> Generator[Any, Any, None]:
        failovers = self.sim.failovers
        old = failovers.writer
        t0 = self.env.now
        in_flight = old.go_down("demoted by a global switchover")
        record = failovers.new_record("global_switchover", "global switchover", old, False, in_flight)
        op = self._operation("switchover", record, new)
        self._event(
            "global_switchover_start",
            self.primary,
            f"writes stop; {self.other(self.primary)} catches up first",
        )
        synced = max(self._replicated_by(), t0)
        yield self.env.timeout(synced - t0)
        op["synced_s"] = self.env.now
        self._event(
            "global_synced",
            op["to_region"],
            f"every committed write is in {op['to_region']} after {1000 * (synced - t0):.0f} ms: RPO 0",
        )
        yield from self._promote(record, op, old, new, self.spec.switchover)

    def failover(self, to: str | None) -> None:
        failovers = self.sim.failovers
        target = self.other(self.primary)
        if self.busy:
            self._skip("global_failover", "a failover or switchover is still running")
            return
        if failovers.busy and self._outage_record is None:
            self._skip("global_failover", "an in-Region failover is still running")
            return
        new = self._candidates(target, to)
        if new is None:
            self._skip("global_failover", f"no reader of {target} is up to promote")
            return
        self.busy = failovers.busy = True
        self.env.process(self._failover(new))

    def _failover(self, new: Instance) -> Generator[Any, Any, None]:
        failovers = self.sim.failovers
        old = failovers.writer
        now = self.env.now
        if self._outage_record is not None:
            # the primary Region is out: replication stopped when it went
            record = self._outage_record
            self._outage_record = None
            record["kind"] = "global_failover"
            record["detected_s"] = now
            cut = record["start_s"]
        else:
            # a drill on a healthy primary: detaching stops replication now and fences the old writer
            in_flight = old.go_down("fenced by a global failover (detached)")
            record = failovers.new_record(
                "global_failover", "global failover (detach and promote)", old, False, in_flight
            )
            cut = now
        epoch = self.epochs[-1]
        self.epochs[-1] = Epoch(epoch.start, epoch.source, epoch.target, cut)
        op = self._operation("failover", record, new)
        op["failure_s"] = cut
        self._event(
            "global_failover_start",
            op["to_region"],
            f"detach and promote {new.name}: replication from {op['from_region']} stopped at {cut:g} s; "
            "writes not yet replicated are lost",
        )
        yield from self._promote(record, op, old, new, self.spec.promotion)

    def _operation(self, kind: str, record: dict[str, Any], new: Instance) -> dict[str, Any]:
        op: dict[str, Any] = {
            "kind": kind,
            "start_s": self.env.now,
            "from_region": self.primary,
            "to_region": new.region,
            "promoted": new.name,
            "failure_s": None,
            "synced_s": None,
            "promotion_started_s": None,
            "writer_available_s": None,
            "dns_updated_s": None,
            "epoch": len(self.epochs) - 1,
            "failover_index": self.sim.failovers.records.index(record),
        }
        self.operations.append(op)
        return op

    def _promote(
        self, record: dict[str, Any], op: dict[str, Any], old: Instance, new: Instance, phase: Phase
    ) -> Generator[Any, Any, None]:
        """The chosen secondary reader restarts as the writer; then the global writer endpoint names it."""
        failovers = self.sim.failovers
        if new in failovers.in_service:
            failovers.in_service.remove(new)
        new.go_down("restarting as the writer of the global database")
        op["promotion_started_s"] = self.env.now
        record["promoted"] = new.name
        self._event("promotion_started", new.name, f"replacing {old.name} (Region {op['from_region']})")
        yield self.env.timeout(self.draw(phase))
        new.set_role("writer")
        old.set_role("reader")
        old.demoted = True
        failovers.writer = new
        self.primary = new.region
        self.epochs.append(Epoch(self.env.now, new.region, self.other(new.region)))
        volume = self.sim.storage
        if isinstance(volume, AuroraVolume):
            letters = self.sim.scenario.cluster.storage.azs
            azs = [az_name(self.home, new.region, a) for a in letters for _ in range(COPIES_PER_AZ)]
            volume.move(new.region, azs, new.az, {az for az in azs if self.sim.az_outages.get(az)})
        new.go_up(f"promoted: {new.region} is the primary Region")
        op["writer_available_s"] = self.env.now
        failovers.writer_available(record, new, f"{new.region} is the primary Region")
        self.busy = False
        if not self.is_down(old.region) and not old.up:
            # the old primary's writer is rebuilt as a reader of the new secondary Region
            back = self.env.now + self.draw(self.sim.scenario.cluster.failover.recovery)
            self.env.process(failovers.rejoin(old, back, f"a reader of {old.region}, now the secondary"))
        yield from failovers.dns_names(record, new)  # the global writer endpoint
        op["dns_updated_s"] = self.env.now

    def log(self) -> dict[str, Any]:
        return {
            "regions": list(self.regions),
            "primary_region": self.primary,
            "plan": self.plan(),
            "operations": [dict(op) for op in self.operations],
        }
