"""Client fleets of kind `ecs`: tasks behind a round-robin load balancer, each with one pool per endpoint.

A task starts serving as soon as it starts (its pools fill in the background, so the first requests
may wait for connections); a stopped task takes no new requests and its pools close as borrowed
connections come back.

With ``circuit_breaker``, each task counts connection-class failures in a row; at ``failures`` it opens
and requests fail ``circuit_open`` without trying, so retries and waiting requests stop piling onto a
saturated database. After ``open_for`` one trial request goes through: a success closes the breaker, a
failure opens it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..record import CODE
from ..rng import uniforms
from .pool import Backoff, Pool

if TYPE_CHECKING:
    from ..engine import Sim
    from ..scenario import Service
    from .endpoints import Endpoint
    from .workload import Request

SERVICE_UNAVAILABLE = CODE["service_unavailable"]
CIRCUIT_OPEN = CODE["circuit_open"]
# failures that say the database (or the way to it) is saturated or gone; a query's own errors do not count
BREAKER_CODES = frozenset(
    CODE[c]
    for c in (
        "too_many_connections",
        "acquire_timeout",
        "borrow_timeout",
        "connection_refused",
        "connect_timeout",
        "connection_lost",
        "quorum_unavailable",
    )
)


class Task:
    __slots__ = ("failures", "id", "open_until", "pools", "trial")

    def __init__(self, task_id: int, pools: list[Pool]) -> None:
        self.id = task_id
        self.pools = pools
        self.failures = 0  # connection-class failures in a row
        self.open_until = -1.0  # circuit breaker: open until then; -1 closed
        self.trial = False  # half-open: a trial request is out


class ServiceRuntime:
    kind = "ecs"

    def __init__(self, sim: Sim, index: int, spec: Service, endpoints: list[Endpoint]) -> None:
        self.sim = sim
        self.env = sim.env
        self.index = index
        self.spec = spec
        self.endpoints = endpoints  # one pool per task for each, in route-slot order
        self.pick = uniforms(sim.stream(f"services.{spec.name}.dns"))
        self.lifetime_u = uniforms(sim.stream(f"services.{spec.name}.pool"))
        # drawn only around DNS changes and failures, so runs without them keep their other draws
        self.dns_age = uniforms(sim.stream(f"services.{spec.name}.resolver"))
        self.keepalive_u = uniforms(sim.stream(f"services.{spec.name}.keepalive"))
        self.reconnect = Backoff(spec.reconnect, uniforms(sim.stream(f"services.{spec.name}.reconnect")))
        self.serving: list[Task] = []
        self.by_id: dict[int, Task] = {}
        self._rr = 0
        self._next_id = 0
        self.breaker = spec.circuit_breaker
        # what each query class reports its outcomes to (None without a breaker)
        self.breaker_outcome = self._breaker_outcome if self.breaker is not None else None
        self.breaker_opened = 0  # times a task's breaker opened

    def start_tasks(self, count: int) -> list[Task]:
        started = []
        for _ in range(count):
            task = Task(self._next_id, [])
            self._next_id += 1
            task.pools = [Pool(self.sim, self, task.id, ep) for ep in self.endpoints]
            self.serving.append(task)
            if self.breaker is not None:
                self.by_id[task.id] = task
            for pool in task.pools:
                pool.start()
            started.append(task)
        return started

    def stop_tasks(self, tasks: list[Task]) -> None:
        for task in tasks:
            if task in self.serving:
                self.serving.remove(task)
                for pool in task.pools:
                    pool.shutdown()

    def dispatch(self, req: Request) -> None:
        serving = self.serving
        n = len(serving)
        if not n:
            req.task = -1
            req.query.fail(req, SERVICE_UNAVAILABLE)
            return
        self._rr += 1
        if self._rr >= n:
            self._rr = 0
        task = serving[self._rr]
        req.task = task.id
        if self.breaker is not None and task.open_until >= 0.0:
            # open: fail at once; half-open: one trial request at a time goes through
            if self.env._now < task.open_until or task.trial:
                req.query.fail(req, CIRCUIT_OPEN)
                return
            task.trial = True
        req.t_try = self.env._now
        pool = task.pools[req.query.route_slot]
        req.pool = pool
        pool.acquire(req)

    def sample(self, rows: dict[str, list[float]]) -> None:
        rows.setdefault(f"Tasks.{self.spec.name}", []).append(float(len(self.serving)))

    def _breaker_outcome(self, req: Request, code: int) -> None:
        task = self.by_id.get(req.task)
        if task is None:
            return
        breaker = self.breaker
        assert breaker is not None
        now = self.env._now
        if code in BREAKER_CODES:
            task.failures += 1
            if task.trial or (task.open_until < 0.0 and task.failures >= breaker.failures):
                if task.open_until < 0.0:
                    self.breaker_opened += 1
                    self.sim.rec.event(
                        now, "circuit_open", f"{self.spec.name}/{task.id}", f"after {task.failures} failures"
                    )
                task.open_until = now + breaker.open_for
                task.trial = False
        else:  # the database answered (a success, or an error of the query itself)
            task.failures = 0
            if task.open_until >= 0.0 and task.trial:
                task.open_until = -1.0
                task.trial = False
                self.sim.rec.event(
                    now, "circuit_closed", f"{self.spec.name}/{task.id}", "trial request succeeded"
                )
