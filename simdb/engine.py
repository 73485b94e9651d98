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
from .catalog import INSTANCE_CLASSES, SERVERLESS_CLASS, default_max_connections, serverless_max_connections
from .model.endpoints import Endpoint
from .model.failover import Failovers
from .model.faults import schedule_all, schedule_random_failures
from .model.global_db import GlobalDatabase, az_name
from .model.instance import Instance
from .model.lambdas import Account, LambdaRuntime
from .model.proxy import Proxy
from .model.replication import ReplicaInfo, ReplicationLog, apply_times
from .model.restore import RestoreRun
from .model.serverless import ServerlessFleet, ServerlessInstance
from .model.services import ServiceRuntime
from .model.sessions import HeldSessions
from .model.storage import AuroraVolume, EbsStorage, StorageModel
from .model.workload import QueryClass
from .record import OK, Recorder
from .scenario import Scenario

PROGRESS_STEPS = 200
# DB load by wait class, in Performance Insights' terms (FACTS: pi.wait_classes)
WAIT_CLASSES = ("CPU", "IO", "Lock", "Client")


@dataclass(frozen=True)
class InstanceInfo:
    name: str
    role: str
    az: str
    instance_class: str
    vcpu: int
    memory_gib: float
    max_connections: int
    region: str = ""  # aurora-global: the instance's Region


@dataclass(frozen=True)
class QueryInfo:
    name: str
    service: str
    kind: str
    route: str


@dataclass
class StorageLog:
    """Commit latencies and reachable copies over time."""

    kind: str  # aurora | ebs
    copies: int
    write_quorum: int
    read_quorum: int
    commit_t: np.ndarray
    commit_s: np.ndarray
    state_t: np.ndarray
    state_reachable: np.ndarray
    data_loss: bool


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
    storage: StorageLog
    replication: ReplicationLog
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
        self.az_outages: dict[str, int] = {}
        cluster = scenario.cluster
        regions = cluster.regions()
        home = regions[0] if regions else ""
        specs = [("writer", cluster.writer, home), *(("reader", r, home) for r in cluster.readers)]
        if cluster.secondary is not None:
            specs += [("reader", r, regions[1]) for r in cluster.secondary.readers]
        self.instances: list[Instance] = []
        serverless: list[ServerlessInstance] = []
        for index, (role, spec, region) in enumerate(specs):
            az = az_name(home, region, spec.az)
            inst: Instance
            if spec.class_ == SERVERLESS_CLASS:
                assert cluster.serverless is not None  # validated
                limit = cluster.parameters.max_connections or serverless_max_connections(
                    cluster.engine, cluster.serverless.min_acu, cluster.serverless.max_acu
                )
                inst = ServerlessInstance(self, index, spec.name or role, role, az, cluster.serverless, limit)
                serverless.append(inst)
            else:
                cls = INSTANCE_CLASSES[spec.class_]
                memory = spec.memory_gib or cls.memory_gib
                max_conn = cluster.parameters.max_connections or default_max_connections(
                    cluster.engine, cls.name, memory
                )
                inst = Instance(
                    self,
                    index,
                    spec.name or role,
                    role,
                    az,
                    spec.vcpu or cls.vcpu,
                    memory,
                    max_conn,
                    cls.name,
                )
            inst.tier = spec.tier
            inst.custom_endpoint = spec.endpoint
            inst.region = region
            self.instances.append(inst)
        writer = self.instances[0]
        readers = [i for i in self.instances[1:] if i.region == home]
        self.serverless: ServerlessFleet | None = None
        if serverless:
            assert cluster.serverless is not None
            self.serverless = ServerlessFleet(self, cluster.serverless, serverless)
        self.sessions: list[HeldSessions] = []
        self.storage = self._build_storage()
        self.storage.region = home
        self.endpoints: dict[str, Endpoint] = {}
        # reader endpoints and the Region each serves ("" outside aurora-global)
        self.reader_endpoints: dict[str, str] = {}
        # the writer endpoint; in aurora-global the global writer endpoint, which follows the primary Region
        # (FACTS: global.endpoints)
        self._add_endpoint("writer", [writer])
        # Aurora's reader endpoint falls back to the writer; on RDS, `reader` spreads over the replicas
        if cluster.is_aurora or readers:
            self._add_endpoint("reader", readers or [writer])
            self.reader_endpoints["reader"] = home
        if regions:
            secondary = [i for i in self.instances if i.region == regions[1]]
            self._add_endpoint(f"reader:{regions[1]}", secondary)
            self.reader_endpoints[f"reader:{regions[1]}"] = regions[1]
        for custom in sorted({r.endpoint for r in cluster.readers if r.endpoint}):
            members = [
                inst for inst, spec in zip(readers, cluster.readers, strict=True) if spec.endpoint == custom
            ]
            self._add_endpoint(f"custom:{custom}", members)

        self.failovers = Failovers(self)
        self.global_db = GlobalDatabase(self) if regions else None
        self.proxy: Proxy | None = None
        if cluster.proxy is not None:
            self.proxy = Proxy(self, cluster.proxy, len(self.endpoints))
            self.endpoints.update(self.proxy.routes)

        self.services: list[ServiceRuntime | LambdaRuntime] = []
        self.queries: list[QueryClass] = []
        self._by_name: dict[str, ServiceRuntime | LambdaRuntime] = {}
        self.account = Account(
            scenario.account.lambda_concurrency,
            sum(s.reserved_concurrency or 0 for s in scenario.services if s.kind == "lambda"),
        )
        for s_index, spec in enumerate(scenario.services):
            routes = spec.routes()
            endpoints = [self.endpoints[r] for r in routes]
            runtime: ServiceRuntime | LambdaRuntime = (
                LambdaRuntime(self, s_index, spec, endpoints, self.account)
                if spec.kind == "lambda"
                else ServiceRuntime(self, s_index, spec, endpoints)
            )
            self.services.append(runtime)
            self._by_name[spec.name] = runtime
            for q in spec.workload:
                self.queries.append(
                    QueryClass(self, runtime, len(self.queries), q, routes.index(q.route or spec.connect_via))
                )
        for q in self.queries:
            if q.spec.follows is not None:
                leader = next(
                    p for p in self.queries if p.service is q.service and p.spec.query == q.spec.follows.query
                )
                leader.followers.append(q)
        for runtime in self.services:
            if isinstance(runtime, ServiceRuntime) and runtime.spec.tasks:
                runtime.start_tasks(runtime.spec.tasks)
        self.restore: RestoreRun | None = None  # set by a `restore` event
        schedule_all(self, scenario.events)
        schedule_random_failures(self)
        self._samples: dict[str, list[float]] = {}
        self._last_integrals: dict[int, tuple[float, ...]] = {}
        self._n_samples = 0
        self.env.process(self._sampler())

    def _build_storage(self) -> StorageModel:
        cluster = self.scenario.cluster
        spec, writer_az = cluster.storage, cluster.writer.az
        if cluster.is_aurora:
            return AuroraVolume(self, spec, writer_az)
        if cluster.topology == "multi-az-instance":
            assert cluster.standby_az is not None
            return EbsStorage(self, spec, writer_az, [cluster.standby_az], "all")
        if cluster.topology == "multi-az-cluster":
            return EbsStorage(self, spec, writer_az, [r.az for r in cluster.readers], "first")
        return EbsStorage(self, spec, writer_az, [], "all")

    def _add_endpoint(self, name: str, members: list[Instance]) -> None:
        self.endpoints[name] = Endpoint(self, len(self.endpoints), name, members)

    def instance(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    def next_connection_id(self) -> int:
        self._connection_ids += 1
        return self._connection_ids - 1

    def stream(self, path: str) -> np.random.Generator:
        return rng.stream(self.scenario.seed, path)

    def service(self, name: str) -> ServiceRuntime:
        runtime = self._by_name[name]
        assert isinstance(runtime, ServiceRuntime)  # events address ecs services only
        return runtime

    def _sampler(self):  # type: ignore[no-untyped-def]
        interval = self.scenario.timeseries_interval
        while True:
            yield self.env.timeout(interval)
            self._sample(interval)

    def _sample(self, interval: float) -> None:
        """Per instance over the last interval: CPUUtilization, DBLoad by wait class and in total,
        DatabaseConnections (exact integrals)."""
        self._n_samples += 1
        rows = self._samples
        last = self._last_integrals
        for inst in self.instances:
            busy, active, conns = inst.integrals()
            io, lock, client = inst.wait_integrals()
            b0, a0, c0, io0, lock0, client0 = last.get(inst.index, (0.0,) * 6)
            last[inst.index] = (busy, active, conns, io, lock, client)
            rows.setdefault(f"CPUUtilization.{inst.name}", []).append(
                100.0 * (busy - b0) / (inst.vcpu * interval)
            )
            loads = (
                (active - a0) / interval,
                (io - io0) / interval,
                (lock - lock0) / interval,
                (client - client0) / interval,
            )
            for wait, load in zip(WAIT_CLASSES, loads, strict=True):
                rows.setdefault(f"DBLoad.wait.{wait}.{inst.name}", []).append(load)
            rows.setdefault(f"DBLoad.{inst.name}", []).append(loads[0] + loads[1] + loads[2] + loads[3])
            rows.setdefault(f"DatabaseConnections.{inst.name}", []).append((conns - c0) / interval)
        for svc in self.services:
            svc.sample(rows)
        if self.proxy is not None:
            rows.setdefault("MaxDatabaseConnectionsAllowed", []).append(float(self.proxy.max_allowed()))
        if self.serverless is not None:
            self.serverless.sample(rows, interval)

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

    def replicas(self) -> list[ReplicaInfo]:
        kind = self.scenario.cluster.replica_kind()
        now = self.env.now
        return [
            ReplicaInfo(i.name, i.index, kind, tuple((a, min(b, now)) for a, b in i.down_log), i.region)
            for i in self.instances
            if i.initial_role == "reader"
        ]

    def _replication(self, samples: dict[str, np.ndarray]) -> ReplicationLog:
        rec = self.rec.requests()
        is_write = np.array([q.is_write for q in self.queries] + [False], dtype=bool)
        query = rec["query"]
        mask = (rec["code"] == OK) & is_write[np.where(query >= 0, query, len(self.queries))]
        write_t = rec["t_end"][mask]
        order = np.argsort(write_t, kind="stable")  # requests are recorded in end order already
        write_t = write_t[order]
        replicas = self.replicas()
        now = self.env.now
        downtime = {i.name: [(a, min(b, now)) for a, b in i.down_log] for i in self.instances if i.down_log}
        cpu = {r.name: samples.get(f"CPUUtilization.{r.name}", np.empty(0)) / 100.0 for r in replicas}
        scenario = self.scenario
        write_instance = rec["instance"][mask][order].astype(np.int64)
        plan = self.global_db.plan() if self.global_db is not None else None
        arrival, epoch = (
            plan.all_arrivals(write_t) if plan is not None else (np.empty(0), np.empty(0, np.int64))
        )
        return ReplicationLog(
            write_t=write_t,
            write_key=rec["key"][mask][order],
            write_session=rec["session"][mask][order],
            write_query=query[mask][order],
            replicas=replicas,
            apply_t=apply_times(
                scenario.cluster,
                replicas,
                write_t,
                cpu,
                downtime,
                scenario.timeseries_interval,
                now,
                write_instance,
                plan,
                arrival if plan is not None else None,
            ),
            write_instance=write_instance,
            global_arrival=arrival,
            global_epoch=epoch,
        )

    def _storage_log(self) -> StorageLog:
        st = self.storage
        return StorageLog(
            kind=st.kind,
            copies=st.total_copies(),
            write_quorum=st.write_quorum(),
            read_quorum=st.read_quorum(),
            commit_t=np.frombuffer(st.commit_t, dtype=np.float64),
            commit_s=np.frombuffer(st.commit_s, dtype=np.float64),
            state_t=np.frombuffer(st.state_t, dtype=np.float64),
            state_reachable=np.frombuffer(st.state_reachable, dtype=np.int8).astype(np.int64),
            data_loss=st.data_loss,
        )

    def snapshot(self) -> RawRun:
        """The run's names and shape before any time has passed (no requests): what the summary will hold."""
        return self._raw({}, 0.0)

    def _raw(self, samples: dict[str, np.ndarray], wall: float) -> RawRun:
        return RawRun(
            scenario=self.scenario,
            recorder=self.rec,
            instances=[
                InstanceInfo(
                    i.name,
                    i.initial_role,
                    i.az,
                    i.instance_class,
                    i.vcpu,
                    i.memory_gib,
                    i.max_connections,
                    i.region,
                )
                for i in self.instances
            ],
            endpoints=list(self.endpoints),
            services=[s.spec.name for s in self.services],
            queries=[
                QueryInfo(q.spec.query, q.service.spec.name, q.spec.kind, q.spec.route or "")
                for q in self.queries
            ],
            samples=samples,
            storage=self._storage_log(),
            replication=self._replication(samples),
            arrived=self.arrived,
            in_flight_at_end=self.arrived - len(self.rec),
            # SimPy numbers every scheduled event; the counter's next value is how many there were
            events_processed=next(self.env._eid),
            wall_s=wall,
            extra={
                "failovers": [dict(r) for r in self.failovers.records],
                "retried": {q.index: q.retried for q in self.queries},
                "proxy": self.proxy.log() if self.proxy is not None else None,
                "lambda": {s.spec.name: s.log() for s in self.services if isinstance(s, LambdaRuntime)},
                "breakers": {
                    s.spec.name: s.breaker_opened for s in self.services if isinstance(s, ServiceRuntime)
                },
                "serverless": self.serverless.log() if self.serverless is not None else None,
                "sessions": [h.log() for h in self.sessions],
                "terminated": {i.name: list(i.terminated_t) for i in self.instances if i.terminated_t},
                "restore": self.restore.log() if self.restore is not None else None,
                "global": self.global_db.log() if self.global_db is not None else None,
            },
        )


def simulate(scenario: Scenario, progress: Callable[[float], None] | None = None) -> RawRun:
    return Sim(scenario).run(progress)
