"""Aurora Serverless v2: capacity in ACU that follows the load, auto-pause and resume, and what it costs.

A ``db.serverless`` instance is an :class:`~.instance.Instance` whose compute follows its capacity
(FACTS: acu.memory): ``capacity × vcpu_per_acu`` vCPUs of work per second, served by
⌈that⌉ FIFO servers that each run at the fractional speed. A CPU burst runs at the speed in effect when it
starts (bursts last milliseconds; capacity changes at most once per ``scaling.interval``).

Every ``scaling.interval`` one controller sets each instance's target (all rates assumed, FACTS: acu.scaling):

- CPU: the work submitted in the last ``cpu_window`` (what the load asks, even beyond the capacity) should
  use ``target_cpu`` of the capacity;
- memory: open connections hold ``memory_per_connection`` each, at most ``target_memory`` of 2 GiB per ACU;
- open transactions: one open for more than ``pin_after`` keeps the capacity it began under (course 000's
  idle-in-transaction case, FACTS: acu.idle_txn; the mechanism is assumed);
- readers in promotion tier 0-1 keep at least the writer's capacity, so either can take over.

Capacity moves toward the target continuously (up by ``scale_up_rate`` of itself per second, at least
``scale_up_min``; down by ``scale_down_rate``) and is billed in 0.5 ACU steps: the smallest step that
covers it. With ``min_acu: 0``, instances with no connections for ``seconds_until_auto_pause`` pause at
0 ACU; the writer and tier 0-1 readers pause and resume together. A connection attempt to a paused
instance starts the resume and waits ``resume`` for it, or fails at its connect timeout.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import TYPE_CHECKING, Any

from ..catalog import ACU_STEP, GIB_PER_ACU, SERVERLESS_CLASS
from .instance import NORMAL, Instance

if TYPE_CHECKING:
    from ..engine import Sim
    from ..scenario import Serverless

RESUMED_ACU = 0.5  # assumed: a resumed instance starts at the smallest running capacity


def quantise(level: float, low: float, high: float) -> float:
    """The smallest 0.5 ACU step at or above ``level``, within [low, high]."""
    return min(high, max(low, math.ceil(level / ACU_STEP - 1e-9) * ACU_STEP))


class _PauseCheck:
    __slots__ = ("callbacks", "since")
    _ok = True

    def __init__(self, callbacks: tuple, since: float) -> None:
        self.callbacks = callbacks
        self.since = since


class ServerlessInstance(Instance):
    """A ``db.serverless`` instance."""

    serverless = True

    def __init__(
        self,
        sim: Sim,
        index: int,
        name: str,
        role: str,
        az: str,
        spec: Serverless,
        max_connections: int,
    ) -> None:
        self.spec = spec
        self.vcpu_per_acu = spec.vcpu_per_acu
        self.min_acu = spec.min_acu
        self.max_acu = spec.max_acu
        self.floor_acu = spec.min_acu or RESUMED_ACU  # the lowest running capacity
        max_vcpu = spec.max_acu * spec.vcpu_per_acu
        # CPUUtilization of a Serverless v2 instance is relative to the CPU of the maximum capacity
        # (FACTS: acu.metrics), so `vcpu` is that CPU
        super().__init__(
            sim,
            index,
            name,
            role,
            az,
            max_vcpu,
            GIB_PER_ACU * spec.max_acu,
            max_connections,
            SERVERLESS_CLASS,
        )
        self.acu = self.floor_acu
        self.level = self.acu
        self.servers = 1
        self.speed = 1.0  # work per second of one busy server, in vCPU
        self.slowdown = 1.0  # 1 / speed: a burst of `cpu` vCPU-seconds takes cpu * slowdown
        self._set_servers()
        self.work_area = 0.0  # vCPU-seconds of work done
        self.offered = 0.0  # vCPU-seconds of work submitted (what the load asks, even beyond capacity)
        self.acu_area = 0.0  # ACU-seconds
        self._t_acu = 0.0
        self.acu_t = array("d", [0.0])  # capacity as a step function: (time, ACU)
        self.acu_v = array("d", [self.acu])
        self.paused = False
        self.resuming = False
        self.resume_event: Any = None
        self.pauses_t: list[float] = []
        self.resumes_t: list[float] = []  # when each resume finished
        self.idle_since: float | None = 0.0
        self._pause_callbacks = (self._pause_check,)
        # ends of the controller intervals in which open transactions held capacity above what the load needed
        self.pinned_t = array("d")
        self.group: list[ServerlessInstance] = [self]  # instances that pause and resume together
        self._last_work = 0.0
        # the work of the last cpu_window, per controller interval
        slots = max(1, round(spec.scaling.cpu_window / spec.scaling.interval))
        self._work_window: deque[float] = deque([0.0] * slots, maxlen=slots)
        self._work_sum = 0.0
        if self.min_acu == 0:
            self._schedule_pause_check(0.0)

    # ----------------------------------------------------------------- CPU

    def _set_servers(self) -> None:
        vcpu = self.acu * self.vcpu_per_acu
        self.servers = max(1, math.ceil(vcpu - 1e-9))
        self.speed = vcpu / self.servers
        self.slowdown = 1.0 / self.speed if self.speed > 0 else math.inf

    def _advance(self, now: float) -> None:
        dt = now - self._t
        if dt > 0.0:
            busy = self.busy
            self.busy_area += busy * dt
            self.active_area += self.active * dt
            self.work_area += busy * self.speed * dt
            self._t = now

    def integrals(self) -> tuple[float, float, float]:
        """(vCPU-seconds of work, active-session-seconds, connection-seconds) up to now."""
        now = self.env.now
        self._advance(now)
        self._advance_connections(now)
        return self.work_area, self.active_area, self.conn_area

    def submit(self, job: Any) -> None:
        now = self.env._now
        self._advance(now)
        self.offered += job.cpu
        self.active += 1
        if self.busy < self.servers:
            self.busy += 1
            job.t_start = now
            job.callbacks = self._done_callbacks
            self._schedule(job, NORMAL, job.cpu * self.slowdown)
        else:
            self.queue.append(job)

    def _cpu_done(self, job: Any) -> None:
        now = self.env._now
        self._advance(now)
        self.active -= 1
        if self.queue and self.busy <= self.servers:
            nxt = self.queue.popleft()
            nxt.t_start = now
            nxt.callbacks = self._done_callbacks
            self._schedule(nxt, NORMAL, nxt.cpu * self.slowdown)
        else:
            self.busy -= 1
        job.after_cpu(job)

    def _start_queued(self) -> None:
        now = self.env._now
        while self.queue and self.busy < self.servers:
            nxt = self.queue.popleft()
            self.busy += 1
            nxt.t_start = now
            nxt.callbacks = self._done_callbacks
            self._schedule(nxt, NORMAL, nxt.cpu * self.slowdown)

    # ------------------------------------------------------------ capacity

    def tracked_capacity(self) -> float:
        return self.acu

    def set_capacity(self, acu: float) -> None:
        if acu == self.acu:
            return
        now = self.env._now
        self._advance(now)
        self.acu_area += self.acu * (now - self._t_acu)
        self._t_acu = now
        self.acu = acu
        self.acu_t.append(now)
        self.acu_v.append(acu)
        if acu > 0:
            self._set_servers()
            self._start_queued()

    def acu_integral(self) -> float:
        now = self.env.now
        return self.acu_area + self.acu * (now - self._t_acu)

    def step(self, now: float, dt: float, follow: float) -> None:
        """One controller interval: move the capacity toward this interval's target."""
        self._advance(now)
        work = self.offered
        window = self._work_window
        self._work_sum += (work - self._last_work) - window[0]
        window.append(work - self._last_work)
        self._last_work = work
        if self.paused or self.resuming or not self.up:
            return
        scaling = self.spec.scaling
        work_rate = max(self._work_sum, 0.0) / (len(window) * dt)
        cpu_need = work_rate / (self.vcpu_per_acu * scaling.target_cpu)
        memory_gib = self.connections * scaling.memory_per_connection / 1024.0
        memory_need = memory_gib / (GIB_PER_ACU * scaling.target_memory)
        need = max(cpu_need, memory_need, follow)
        pin = 0.0
        if self.open_tx:
            held_since = now - scaling.pin_after
            pin = max((tx.acu for tx in self.open_tx if tx.start <= held_since), default=0.0)
        if pin > max(need, self.floor_acu) and pin >= self.acu:
            self.pinned_t.append(now)
        target = min(self.max_acu, max(need, pin, self.floor_acu))
        level = self.level
        if target > level:
            level = min(target, level + max(scaling.scale_up_rate * level, scaling.scale_up_min) * dt)
        elif target < level:
            level = max(target, level * (1.0 - scaling.scale_down_rate * dt))
        self.level = level
        self.set_capacity(quantise(level, self.floor_acu, self.max_acu))

    # ------------------------------------------------------- pause, resume

    def accept(self, service: int) -> int:
        conn_id = super().accept(service)
        if conn_id >= 0:
            self.idle_since = None
        return conn_id

    def disconnect(self, service: int, conn_id: int) -> None:
        super().disconnect(service, conn_id)
        if self.connections == 0:
            self._now_idle()

    def go_down(self, cause: str, blackhole: bool = False) -> int:
        in_flight = super().go_down(cause, blackhole)
        self._now_idle()
        return in_flight

    def _now_idle(self) -> None:
        now = self.env._now
        self.idle_since = now
        if self.min_acu == 0:
            self._schedule_pause_check(now)

    def _schedule_pause_check(self, since: float) -> None:
        wait = self.spec.seconds_until_auto_pause
        assert wait is not None
        self._schedule(_PauseCheck(self._pause_callbacks, since), NORMAL, wait)

    def _pause_check(self, check: _PauseCheck) -> None:
        now = self.env._now
        wait = self.spec.seconds_until_auto_pause
        assert wait is not None
        if self.idle_since != check.since:
            return  # a connection came and went since; its own check decides
        group = self.group
        if all(
            m.up
            and not m.paused
            and not m.resuming
            and m.connections == 0
            and m.idle_since is not None
            and now - m.idle_since >= wait - 1e-9
            for m in group
        ):
            for m in group:
                m.pause()

    def pause(self) -> None:
        now = self.env._now
        self.paused = True
        self.resume_event = self.env.event()
        self.set_capacity(0.0)
        self.level = 0.0
        self.pauses_t.append(now)
        self.sim.rec.event(now, "acu_paused", self.name, "no connections: paused at 0 ACU")

    def wait_resumed(self, timeout: float):  # type: ignore[no-untyped-def]
        """A connection attempt reached the paused instance: start the resume, wait for it up to
        ``timeout``. A generator returning whether the instance is running."""
        if not self.resuming:
            self._resume_group()
        event = self.resume_event
        if timeout > 0:
            yield event | self.env.timeout(timeout)
        return event.triggered

    def _resume_group(self) -> None:
        now = self.env._now
        for m in self.group:
            if m.paused and not m.resuming:
                m.resuming = True
                m.sim.rec.event(now, "acu_resuming", m.name, "a connection attempt arrived")
                m.env.process(m._resume())

    def _resume(self):  # type: ignore[no-untyped-def]
        yield self.env.timeout(self.spec.resume)
        now = self.env._now
        self.paused = False
        self.resuming = False
        self.level = self.floor_acu
        self.set_capacity(self.floor_acu)
        self.resumes_t.append(now)
        self.sim.rec.event(now, "acu_resumed", self.name, f"running at {self.floor_acu:g} ACU")
        self.resume_event.succeed()
        if self.connections == 0:
            self._now_idle()

    def log(self) -> dict[str, Any]:
        return {
            "acu_t": self.acu_t,
            "acu_v": self.acu_v,
            "pauses_t": self.pauses_t,
            "resumes_t": self.resumes_t,
            "pinned_t": self.pinned_t,
        }


class ServerlessFleet:
    """The controller for a cluster's Serverless v2 instances, and their metrics."""

    def __init__(self, sim: Sim, spec: Serverless, instances: list[ServerlessInstance]) -> None:
        self.sim = sim
        self.env = sim.env
        self.spec = spec
        self.instances = instances
        # FACTS: acu.pause_groups — the writer and tier 0-1 readers pause and resume together
        together = [i for i in instances if i.role == "writer" or i.tier <= 1]
        for inst in together:
            inst.group = together
        self._last: dict[int, float] = {}
        self.env.process(self._run())

    def _run(self):  # type: ignore[no-untyped-def]
        dt = self.spec.scaling.interval
        while True:
            yield self.env.timeout(dt)
            now = self.env.now
            # the writer first, so tier 0-1 readers follow its new capacity
            ordered = sorted(self.instances, key=lambda i: i.role != "writer")
            writer_acu = 0.0
            for inst in ordered:
                follow = writer_acu if inst.role != "writer" and inst.tier <= 1 else 0.0
                inst.step(now, dt, follow)
                if inst.role == "writer":
                    writer_acu = inst.acu

    def sample(self, rows: dict[str, list[float]], interval: float) -> None:
        """ServerlessDatabaseCapacity and ACUUtilization per instance (interval means) and for the cluster
        (the mean over its Serverless v2 instances, as CloudWatch reports it; FACTS: acu.metrics)."""
        total_acu = 0.0
        total_util = 0.0
        for inst in self.instances:
            area = inst.acu_integral()
            mean = (area - self._last.get(inst.index, 0.0)) / interval
            self._last[inst.index] = area
            util = 100.0 * mean / inst.max_acu
            rows.setdefault(f"ServerlessDatabaseCapacity.{inst.name}", []).append(mean)
            rows.setdefault(f"ACUUtilization.{inst.name}", []).append(util)
            total_acu += mean
            total_util += util
        n = len(self.instances)
        rows.setdefault("ServerlessDatabaseCapacity", []).append(total_acu / n)
        rows.setdefault("ACUUtilization", []).append(total_util / n)

    def log(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "instances": {i.name: i.log() for i in self.instances},
            "interval": spec.scaling.interval,
            "price_per_acu_hour": spec.price_per_acu_hour,
            "provisioned_price_per_gib_hour": spec.provisioned_price_per_gib_hour,
            "min_acu": spec.min_acu,
            "max_acu": spec.max_acu,
        }
