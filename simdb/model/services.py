"""Client fleets of kind `ecs`: tasks behind a round-robin load balancer, each with one pool per endpoint.

A task starts serving as soon as it starts (its pools fill in the background, so the first requests
may wait for connections); a stopped task takes no new requests and its pools close as borrowed
connections come back.
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


class Task:
    __slots__ = ("id", "pools")

    def __init__(self, task_id: int, pools: list[Pool]) -> None:
        self.id = task_id
        self.pools = pools


class ServiceRuntime:
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
        self._rr = 0
        self._next_id = 0

    def start_tasks(self, count: int) -> list[Task]:
        started = []
        for _ in range(count):
            task = Task(self._next_id, [])
            self._next_id += 1
            task.pools = [Pool(self.sim, self, task.id, ep) for ep in self.endpoints]
            self.serving.append(task)
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
        req.t_try = self.env._now
        pool = task.pools[req.query.route_slot]
        req.pool = pool
        pool.acquire(req)
