"""Build the model from a Scenario, run it on SimPy, hand back plain arrays (a :class:`RawRun`).

Components are addressed by dotted paths (``cluster.writer``, ``services.api.workload.read``) which also
name their random streams, so adding one component never shifts another's random numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from . import rng
from .catalog import INSTANCE_CLASSES, default_max_connections
from .model.endpoints import Endpoint
from .model.faults import schedule_all
from .model.instance import Instance
from .model.services import ServiceRuntime
from .model.workload import QueryClass
from .record import Recorder
from .scenario import Scenario

PROGRESS_STEPS = 200


@dataclass(frozen=True)
class InstanceInfo:
    name: str
    role: str
    az: str
    instance_class: str
    vcpu: int
    memory_gib: float
    max_connections: int


@dataclass(frozen=True)
class QueryInfo:
    name: str
    service: str
    kind: str
    route: str


@dataclass
class RawRun:
    """Everything a run produced, as arrays and names: the only input analysis gets."""

    scenario: Scenario
    recorder: Recorder
    instances: list[InstanceInfo]
    endpoints: list[str]
    services: list[str]
    queries: list[QueryInfo]
    samples: dict[str, np.ndarray]
    arrived: int
    in_flight_at_end: int
    events_processed: int
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Sim:
    """One simulation run of a scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.env = simpy.Environment()
        self.rec = Recorder()
        self.arrived = 0
        self._connection_ids = 0
        cluster = scenario.cluster
        specs = [("writer", cluster.writer), *(("reader", r) for r in cluster.readers)]
        self.instances: list[Instance] = []
        for index, (role, spec) in enumerate(specs):
            cls = INSTANCE_CLASSES[spec.class_]
            memory = spec.memory_gib or cls.memory_gib
            max_conn = cluster.parameters.max_connections or default_max_connections(
                cluster.engine, cls.name, memory
            )
            self.instances.append(
                Instance(
                    self,
                    index,
                    spec.name or role,
                    role,
                    spec.az,
                    spec.vcpu or cls.vcpu,
                    memory,
                    max_conn,
                    cls.name,
                )
            )
        writer, readers = self.instances[0], self.instances[1:]
        self.endpoints: dict[str, Endpoint] = {}
        self._add_endpoint("writer", [writer])
        if cluster.topology != "single-az":
            self._add_endpoint("reader", readers or [writer])
        for custom in sorted({r.endpoint for r in cluster.readers if r.endpoint}):
            members = [
                inst for inst, spec in zip(readers, cluster.readers, strict=True) if spec.endpoint == custom
            ]
            self._add_endpoint(f"custom:{custom}", members)

        self.services: list[ServiceRuntime] = []
        self.queries: list[QueryClass] = []
        self._by_name: dict[str, ServiceRuntime] = {}
        for s_index, spec in enumerate(scenario.services):
            routes = spec.routes()
            runtime = ServiceRuntime(self, s_index, spec, [self.endpoints[r] for r in routes])
            self.services.append(runtime)
            self._by_name[spec.name] = runtime
            for q in spec.workload:
                self.queries.append(
                    QueryClass(self, runtime, len(self.queries), q, routes.index(q.route or spec.connect_via))
                )
        for runtime in self.services:
            if runtime.spec.tasks:
                runtime.start_tasks(runtime.spec.tasks)
        schedule_all(self, scenario.events)
        self._samples: dict[str, list[float]] = {}
        self._last_integrals: dict[int, tuple[float, float, float]] = {}
        self._n_samples = 0
        self.env.process(self._sampler())

    def _add_endpoint(self, name: str, members: list[Instance]) -> None:
        self.endpoints[name] = Endpoint(len(self.endpoints), name, members)

    def next_connection_id(self) -> int:
        self._connection_ids += 1
        return self._connection_ids - 1

    def stream(self, path: str) -> np.random.Generator:
        return rng.stream(self.scenario.seed, path)

    def service(self, name: str) -> ServiceRuntime:
        return self._by_name[name]

    def _sampler(self):  # type: ignore[no-untyped-def]
        interval = self.scenario.timeseries_interval
        while True:
            yield self.env.timeout(interval)
            self._sample(interval)

    def _sample(self, interval: float) -> None:
        """Per instance over the last interval: CPUUtilization, DBLoad, DatabaseConnections (exact integrals)."""
        self._n_samples += 1
        rows = self._samples
        last = self._last_integrals
        for inst in self.instances:
            busy, active, conns = inst.integrals()
            b0, a0, c0 = last.get(inst.index, (0.0, 0.0, 0.0))
            last[inst.index] = (busy, active, conns)
            rows.setdefault(f"CPUUtilization.{inst.name}", []).append(
                100.0 * (busy - b0) / (inst.vcpu * interval)
            )
            rows.setdefault(f"DBLoad.{inst.name}", []).append((active - a0) / interval)
            rows.setdefault(f"DatabaseConnections.{inst.name}", []).append((conns - c0) / interval)
        for svc in self.services:
            rows.setdefault(f"Tasks.{svc.spec.name}", []).append(float(len(svc.serving)))

    def run(self, progress: Callable[[float], None] | None = None) -> RawRun:
        started = time.perf_counter()
        duration = self.scenario.duration
        if progress is None:
            self.env.run(until=duration)
        else:
            for step in range(1, PROGRESS_STEPS + 1):
                self.env.run(until=duration * step / PROGRESS_STEPS)
                progress(step / PROGRESS_STEPS)
        wall = time.perf_counter() - started
        interval = self.scenario.timeseries_interval
        n_rows = round(duration / interval)
        # the sample due at exactly `duration` is not processed by env.run(until=duration)
        if self._n_samples < n_rows:
            self._sample(interval)
        samples = {k: np.asarray(v[:n_rows], dtype=np.float64) for k, v in self._samples.items()}
        return self._raw(samples, wall)

    def snapshot(self) -> RawRun:
        """The run's names and shape before any time has passed (no requests): what the summary will hold."""
        return self._raw({}, 0.0)

    def _raw(self, samples: dict[str, np.ndarray], wall: float) -> RawRun:
        return RawRun(
            scenario=self.scenario,
            recorder=self.rec,
            instances=[
                InstanceInfo(i.name, i.role, i.az, i.instance_class, i.vcpu, i.memory_gib, i.max_connections)
                for i in self.instances
            ],
            endpoints=list(self.endpoints),
            services=[s.spec.name for s in self.services],
            queries=[
                QueryInfo(q.spec.query, q.service.spec.name, q.spec.kind, q.spec.route or "")
                for q in self.queries
            ],
            samples=samples,
            arrived=self.arrived,
            in_flight_at_end=self.arrived - len(self.rec),
            # SimPy numbers every scheduled event; the counter's next value is how many there were
            events_processed=next(self.env._eid),
            wall_s=wall,
        )


def simulate(scenario: Scenario, progress: Callable[[float], None] | None = None) -> RawRun:
    return Sim(scenario).run(progress)
