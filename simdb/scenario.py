"""The scenario file: pydantic models of the contract in the README, loading, overrides and errors.

Every field has a default with its source (docs/facts.md key, or "assumed" with the reason) in its
description, which ``simdb schema`` publishes. Loading never raises anything but :class:`ScenarioError`.
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .cases import CASES
from .catalog import ACU_STEP, AURORA_CLASSES, ENGINES, INSTANCE_CLASSES, SERVERLESS_CLASS
from .errors import ScenarioError, one_line
from .units import DURATION_HELP, RATE_HELP, parse_duration, parse_rate


def _finite(parse: typing.Callable[[object], float], help_text: str) -> typing.Callable[[object], float]:
    """``parse`` with numbers too large for a float reported as a validation error, not OverflowError."""

    def checked(value: object) -> float:
        try:
            return parse(value)
        except OverflowError:
            raise ValueError(f"too large; expected {help_text}") from None

    return checked


Duration = Annotated[
    float,
    BeforeValidator(_finite(parse_duration, DURATION_HELP)),
    WithJsonSchema({"type": ["string", "number"], "description": DURATION_HELP}),
]
Rate = Annotated[
    float,
    BeforeValidator(_finite(parse_rate, RATE_HELP)),
    WithJsonSchema({"type": ["string", "number"], "description": RATE_HELP}),
]


def _warmup(value: object) -> object:
    if value == "auto":
        return value
    seconds = _finite(parse_duration, DURATION_HELP)(value)
    if seconds > MAX_DURATION_S:
        raise ValueError(f"at most {MAX_DURATION_S:g} s")
    return seconds


Warmup = Annotated[
    float | Literal["auto"],
    BeforeValidator(_warmup),
    WithJsonSchema({"type": ["string", "number"], "description": DURATION_HELP + ", or auto"}),
]
# no dots: names are path segments in --set and expect: (services.api.pool.max_size)
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")]

MAX_DURATION_S = 30 * 86400.0
MAX_RATE = 10_000_000.0
MAX_TASKS = 100_000
MAX_POOL = 10_000
MAX_LOCKS = 1000  # row locks per request transaction
MAX_BATCH_KEYS = 100_000  # row locks a batch_update or long_transaction session holds (a dict entry each)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


# --------------------------------------------------------------------------------------------- cluster


class InstanceSpec(Strict):
    """A DB instance: the writer or one reader."""

    name: Name | None = Field(
        None, description="instance name; default `writer`, `reader-1`, `reader-2`, ..."
    )
    class_: str = Field(
        "db.r6g.large",
        alias="class",
        description="instance class (vCPU and memory from the class table; FACTS: instance.classes); "
        "default db.r6g.large, the smallest memory-optimised Graviton class",
    )
    az: str = Field("a", pattern=r"^[a-z]$", description="availability zone letter; assumed default `a`")
    tier: int = Field(1, ge=0, le=15, description="failover promotion tier 0-15 (FACTS: failover.tiers)")
    endpoint: Name | None = Field(None, description="custom endpoint this reader belongs to")
    apply_rate: Rate | None = Field(
        None,
        gt=0,
        le=MAX_RATE,
        description="RDS read replicas and Multi-AZ cluster standbys: writes/s the replica applies; default "
        "2000/s for read replicas (assumed, FACTS: replication.rds_apply_rate) and "
        "cluster.replication.cluster_apply_rate for standbys",
    )
    vcpu: int | None = Field(None, ge=1, le=1024, description="override the class's vCPU count (what-if)")
    memory_gib: float | None = Field(None, gt=0, le=32768, description="override the class's memory (GiB)")

    @field_validator("class_")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in INSTANCE_CLASSES and value != SERVERLESS_CLASS:
            close = difflib.get_close_matches(value, INSTANCE_CLASSES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            families = sorted({c.rsplit(".", 1)[0] for c in INSTANCE_CLASSES})
            raise ValueError(
                f"unknown instance class {value!r}; {hint}known families: {', '.join(families)}, "
                f"or {SERVERLESS_CLASS} (Aurora Serverless v2)"
            )
        return value


MS_HELP = DURATION_HELP.replace("a bare number means seconds", "a bare number means milliseconds")


def _milliseconds(value: object) -> object:
    # the parameter group gives this PostgreSQL setting in milliseconds: a bare number is ms
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value!r}ms"
    try:
        seconds = _finite(parse_duration, MS_HELP)(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace(DURATION_HELP, MS_HELP)) from None
    if seconds > MAX_DURATION_S:
        raise ValueError(f"at most {MAX_DURATION_S:g} s")
    return seconds


Milliseconds = Annotated[
    float,
    BeforeValidator(_milliseconds),
    PlainSerializer(lambda seconds: f"{seconds * 1000.0:g}ms" if seconds else 0),
    WithJsonSchema(
        {"type": ["string", "number"], "description": "a duration (250ms, 60s, 5min) or a bare number of ms"}
    ),
]


class Parameters(Strict):
    """DB parameter group overrides; unset parameters follow the engine's formulas."""

    max_connections: int | None = Field(
        None,
        ge=1,
        le=262_143,
        description="default from the engine's formula on the instance's memory "
        "(FACTS: max_connections.postgres, max_connections.mysql); Serverless v2 from the maximum ACU "
        "(FACTS: acu.max_connections)",
    )
    idle_in_transaction_session_timeout: Milliseconds = Field(
        0.0,
        description="PostgreSQL: a session idle inside an open transaction longer than this is ended by the "
        "server; its client gets connection_lost on its next statement. A bare number is milliseconds, as in "
        "the parameter group (60000 = 60 s). Default 0, off (FACTS: pg.idle_in_txn, acu.idle_txn)",
    )
    lock_timeout: Milliseconds = Field(
        0.0,
        description="PostgreSQL: a statement that waits longer than this for a row lock fails lock_timeout (the "
        "app rolls back, releasing the locks it held). A bare number is milliseconds, as in the parameter group. "
        "Default 0, wait forever (FACTS: pg.lock_timeout)",
    )
    innodb_lock_wait_timeout: Duration | None = Field(
        None,
        gt=0,
        le=MAX_DURATION_S,
        description="MySQL engines: how long a statement waits for a row lock before it fails lock_timeout "
        "(MySQL error 1205). A bare number is seconds, as in MySQL. Default 50 s (FACTS: mysql.lock_wait_timeout)",
    )

    def row_lock_timeout(self, engine: str) -> float:
        """Seconds a row-lock wait may last before it fails (0 = forever), for ``engine``."""
        if "mysql" in engine:
            # FACTS: mysql.lock_wait_timeout
            return self.innodb_lock_wait_timeout if self.innodb_lock_wait_timeout is not None else 50.0
        return self.lock_timeout


class ConnectionCost(Strict):
    """What opening one DB connection costs (TCP, TLS, authentication, backend start)."""

    setup: Duration = Field(0.005, le=60, description="client-side latency; assumed 5 ms (FACTS: conn.setup)")
    setup_cpu: Duration = Field(
        0.002, le=10, description="DB CPU per new connection; assumed 2 ms (FACTS: conn.setup)"
    )


class LatencyDist(Strict):
    """A lognormal latency given by its median and 99th percentile."""

    p50: Duration = Field(..., gt=0, le=60)
    p99: Duration = Field(..., gt=0, le=600)

    @model_validator(mode="after")
    def _ordered(self) -> LatencyDist:
        if self.p99 < self.p50:
            raise ValueError(f"p99 ({self.p99:g} s) must be at least p50 ({self.p50:g} s)")
        return self


class StorageFailures(Strict):
    """Random failures of Aurora storage: each segment's node and each AZ alternate up and down."""

    segment_mtbf: Duration | None = Field(
        None, gt=0, le=1e9, description="mean time between failures of one segment's node; unset = none"
    )
    segment_mttr: Duration | None = Field(
        None, gt=0, le=1e9, description="mean time to repair a segment; default storage.segment_repair"
    )
    az_mtbf: Duration | None = Field(
        None, gt=0, le=1e9, description="mean time between outages of one AZ; unset = none"
    )
    az_mttr: Duration = Field(3600.0, gt=0, le=1e9, description="mean AZ outage length; assumed 1 h")


class Storage(Strict):
    """Commit paths: Aurora's 6-copy quorum volume, or EBS (plus the standby's copy on Multi-AZ)."""

    azs: list[Annotated[str, Field(pattern=r"^[a-z]$")]] = Field(
        default_factory=lambda: ["a", "b", "c"],
        description="aurora: the 3 AZs holding the volume's 6 copies, 2 each (FACTS: storage.copies)",
    )
    segment_latency: LatencyDist = Field(
        default_factory=lambda: LatencyDist(p50=0.0005, p99=0.002),
        description="aurora: one storage node's write ack time before network, lognormal; assumed p50 0.5 ms, "
        "p99 2 ms (FACTS: storage.segment_latency)",
    )
    ebs_latency: LatencyDist = Field(
        default_factory=lambda: LatencyDist(p50=0.0008, p99=0.003),
        description="RDS: an EBS write (commit flush), lognormal; assumed p50 0.8 ms, p99 3 ms "
        "(FACTS: storage.ebs_latency)",
    )
    same_az_rtt: Duration = Field(
        0.00025,
        ge=0,
        le=1,
        description="network round trip inside an AZ; assumed 0.25 ms (FACTS: network.same_az_rtt)",
    )
    cross_az_rtt: Duration = Field(
        0.001,
        ge=0,
        le=1,
        description="network round trip between AZs; assumed 1 ms (FACTS: network.cross_az_rtt)",
    )
    segment_repair: Duration = Field(
        10.0,
        ge=0,
        le=86400,
        description="aurora: time to re-create a lost 10 GiB segment on another node; 10 s (FACTS: storage.repair); "
        "0 = no repair",
    )
    write_quorum_timeout: Duration = Field(
        5.0,
        ge=0,
        le=3600,
        description="aurora: commits wait for a lost write quorum to return (FACTS: storage.quorum_loss); after "
        "this long the client gives up with quorum_unavailable. Assumed 5 s, an application statement "
        "timeout; 0 = fail at once",
    )
    standby_ack_latency: LatencyDist = Field(
        default_factory=lambda: LatencyDist(p50=0.0001, p99=0.0005),
        description="multi-az-cluster: a readable standby's acknowledgement once the change reaches its log, "
        "lognormal; assumed p50 0.1 ms, p99 0.5 ms (FACTS: multi_az_cluster)",
    )
    failures: StorageFailures = Field(default_factory=StorageFailures)
    size_gib: float = Field(
        100.0,
        gt=0,
        le=131072,
        description="data size in GiB at t = 0 (up to 128 TiB, FACTS: storage.max_size); what a restore "
        "copies. Assumed default 100 GiB",
    )
    growth_gib_per_day: float = Field(
        0.0,
        ge=0,
        le=131072,
        description="data growth in GiB per day: the size at time t is size_gib + growth x t (a restore copies "
        "the size at its restore point). Default 0",
    )

    @field_validator("azs")
    @classmethod
    def _three_azs(cls, value: list[str]) -> list[str]:
        if len(value) != 3 or len(set(value)) != 3:
            raise ValueError(f"needs 3 different AZ letters, got {value}")
        return value


class AuroraLag(Strict):
    """Aurora reader lag: a line fitted to the Aurora paper's Table 4, scaled up by reader CPU load."""

    base: Duration = Field(
        0.00257,
        ge=0,
        le=60,
        description="lag at no writes; 2.57 ms (fitted to FACTS: replication.aurora_lag)",
    )
    per_1000_writes: Duration = Field(
        0.000282,
        ge=0,
        le=60,
        description="extra lag per 1000 writes/s; 0.282 ms (fitted to FACTS: replication.aurora_lag)",
    )
    load_factor: float = Field(
        1.0,
        ge=0,
        le=100,
        description="lag x (1 + load_factor x reader CPU utilisation); assumed 1 (FACTS: replication.aurora_lag)",
    )


class Replication(Strict):
    aurora: AuroraLag = Field(default_factory=AuroraLag)
    network_delay: Duration = Field(
        0.0005,
        ge=0,
        le=60,
        description="RDS read replicas: one-way delay shipping a change; assumed 0.5 ms "
        "(FACTS: replication.rds_network_delay)",
    )
    cluster_apply_rate: Rate = Field(
        2000.0,
        gt=0,
        le=MAX_RATE,
        description="Multi-AZ cluster standbys: writes/s each applies after acknowledging; assumed 2000/s, as "
        "for read replicas (FACTS: replication.cluster_apply_rate)",
    )


def _phase_shorthand(value: object) -> object:
    # `detection: 10s` is short for `{min: 10s, max: 10s}`
    return {"min": value, "max": value} if isinstance(value, str | int | float) else value


class Phase(Strict):
    """A failover phase's length: uniform between min and max (equal for a fixed length)."""

    min: Duration = Field(..., ge=0, le=86400)
    max: Duration = Field(..., ge=0, le=86400)

    @model_validator(mode="after")
    def _ordered(self) -> Phase:
        if self.max < self.min:
            raise ValueError(f"max ({self.max:g} s) must be at least min ({self.min:g} s)")
        return self


PhaseField = Annotated[Phase | None, BeforeValidator(_phase_shorthand)]

# Per topology, the phases of an unplanned writer failure, in seconds (min, max). The sums match the
# documented totals; the split between phases is assumed (FACTS: failover.phases).
FAILOVER_DEFAULTS: dict[str, dict[str, tuple[float, float]]] = {
    # FACTS: failover.aurora: 16-40 s, half of them under 30 s
    "aurora": {
        "detection": (5.0, 15.0),
        "promotion": (10.0, 20.0),
        "dns_update": (1.0, 5.0),
        "recovery": (10.0, 30.0),
        "recreate": (180.0, 600.0),  # FACTS: failover.aurora_no_replica (under 10 min)
        "reboot": (10.0, 30.0),  # FACTS: reboot.duration
    },
    # FACTS: failover.multi_az_instance: 60-120 s
    "multi-az-instance": {
        "detection": (10.0, 20.0),
        "promotion": (40.0, 80.0),
        "dns_update": (10.0, 20.0),
        "recovery": (120.0, 300.0),
        "recreate": (180.0, 600.0),
        "reboot": (30.0, 120.0),
    },
    # FACTS: failover.multi_az_cluster: under 35 s
    "multi-az-cluster": {
        "detection": (5.0, 10.0),
        "promotion": (5.0, 15.0),
        "dns_update": (2.0, 8.0),
        "recovery": (30.0, 90.0),
        "recreate": (180.0, 600.0),
        "reboot": (30.0, 120.0),
    },
    # single-az has no standby: a failed instance is recovered in place, at the same address, so promotion
    # and dns_update do not apply (FACTS: failover.single_az)
    "single-az": {
        "detection": (10.0, 20.0),
        "promotion": (0.0, 0.0),
        "dns_update": (0.0, 0.0),
        "recovery": (180.0, 600.0),
        "recreate": (180.0, 600.0),
        "reboot": (30.0, 120.0),
    },
}


class Failover(Strict):
    """How the cluster handles a lost instance, phase by phase. Unset phases take the topology's default."""

    detection: PhaseField = Field(
        None, description="fault until the service declares the instance failed (not for a planned failover)"
    )
    promotion: PhaseField = Field(
        None, description="detection until the new writer accepts writes (standby or reader promoted)"
    )
    dns_update: PhaseField = Field(
        None, description="new writer available until the endpoint's DNS record names it"
    )
    recovery: PhaseField = Field(
        None,
        description="until the failed instance is back. Aurora, Multi-AZ cluster: the failed writer rejoins as a "
        "reader this long after the new writer is available; Multi-AZ instance: its host is rebuilt as the "
        "standby this long after; single-az writer and failed readers: this long after the fault",
    )
    recreate: PhaseField = Field(
        None,
        description="aurora without a reader: detection until a new writer is created (FACTS: "
        "failover.aurora_no_replica)",
    )
    reboot: PhaseField = Field(None, description="a `reboot` event: the instance's restart time")

    def resolve(self, topology: str) -> None:
        for phase, (low, high) in FAILOVER_DEFAULTS[topology].items():
            if getattr(self, phase) is None:
                setattr(self, phase, Phase(min=low, max=high))


class Dns(Strict):
    ttl: Duration = Field(
        5.0, ge=0, le=86400, description="TTL of the cluster's endpoint records; 5 s (FACTS: dns.ttl)"
    )


class Backup(Strict):
    """Automated backups: daily snapshots plus transaction logs shipped to S3, for point-in-time restore."""

    retention_days: int = Field(
        7,
        ge=0,
        le=35,
        description="automated backups are kept 1-35 days (RDS: 0 turns them off, and with them point-in-time "
        "restore); default 7, the console's default (the API's is 1) (FACTS: backup.retention)",
    )
    log_upload_interval: Duration = Field(
        300.0,
        gt=0,
        le=86400,
        description="transaction logs reach S3 this often; the latest restorable time is the last upload, so it "
        "trails the present by up to this much. Default 5 min (FACTS: backup.latest_restorable)",
    )
    snapshot_interval: Duration = Field(
        86400.0,
        ge=60,
        le=MAX_DURATION_S,
        description="automated snapshots are taken this often, in the backup window; default 1 day "
        "(FACTS: backup.window)",
    )
    automated_snapshot_age: Duration = Field(
        43200.0,
        ge=0,
        le=MAX_DURATION_S,
        description="the last automated snapshot before the run was taken this long before t = 0; assumed 12 h "
        "(the backup window at some time of day). A point-in-time restore replays the logs from the latest "
        "automated snapshot before its target",
    )

    @model_validator(mode="after")
    def _age(self) -> Backup:
        if self.automated_snapshot_age >= self.snapshot_interval:
            raise ValueError(
                f"automated_snapshot_age ({self.automated_snapshot_age:g} s) must be shorter than "
                f"snapshot_interval ({self.snapshot_interval:g} s): it is the age of the last snapshot before t = 0"
            )
        return self

    def latest_restorable(self, t: float) -> float:
        """The latest restorable time at ``t``: the last log upload (FACTS: backup.latest_restorable)."""
        u = self.log_upload_interval
        return math.floor(t / u + 1e-9) * u

    def automated_snapshot_before(self, t: float) -> float | None:
        """The time of the latest automated snapshot at or before ``t``; None without automated backups."""
        if self.retention_days == 0:
            return None
        age, interval = self.automated_snapshot_age, self.snapshot_interval
        return -age + math.floor((t + age) / interval + 1e-9) * interval


class RestoreSettings(Strict):
    """How fast a restore runs. AWS publishes no rates: the split is assumed (FACTS: restore.duration)."""

    provisioning: Duration = Field(
        600.0,
        ge=0,
        le=86400,
        description="creating the new cluster and its instance before data arrives; assumed 10 min "
        "(FACTS: restore.provisioning)",
    )
    throughput_mib_per_s: float = Field(
        250.0,
        gt=0,
        le=1_000_000,
        description="data copied from the snapshot per second, MiB/s: the copy takes size_gib x 1024 / this; "
        "assumed 250 (FACTS: restore.duration)",
    )
    replay_speedup: float = Field(
        20.0,
        gt=0,
        le=1_000_000,
        description="point-in-time restore: logs from the base snapshot to the target replay this many times "
        "faster than they were written; assumed 20 (FACTS: restore.replay)",
    )
    lazy_load: Duration | None = Field(
        None,
        ge=0,
        le=600,
        description="extra latency of the first access to each key on the restored instance (its block is "
        "fetched from S3). Default 35 ms on RDS (EBS, FACTS: restore.lazy_load), 0 on Aurora, whose restore "
        "copies the data before the cluster is available",
    )

    def resolve(self, topology: str) -> None:
        if self.lazy_load is None:
            self.lazy_load = 0.0 if topology == "aurora" else LAZY_LOAD_EBS_S


LAZY_LOAD_EBS_S = 0.035  # FACTS: restore.lazy_load


class Proxy(Strict):
    """RDS Proxy in front of the cluster: services reach it with `connect_via: proxy` (or `proxy:reader`)."""

    max_connections_percent: float = Field(
        100.0,
        gt=0,
        le=100,
        description="MaxConnectionsPercent: the proxy opens at most this % of each target instance's "
        "max_connections; default 100 (FACTS: proxy.max_conn_pct)",
    )
    max_idle_connections_percent: float | None = Field(
        None,
        ge=0,
        le=100,
        description="MaxIdleConnectionsPercent: idle DB connections above this % of max_connections are closed "
        "once idle for 5 min; default half of max_connections_percent (FACTS: proxy.max_idle_pct, proxy.idle_trim)",
    )
    connection_borrow_timeout: Duration = Field(
        120.0,
        ge=0.001,
        le=3600,
        description="ConnectionBorrowTimeout: a transaction waiting this long for a DB connection fails "
        "borrow_timeout; default 120 s (FACTS: proxy.borrow_timeout)",
    )
    pinning_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of client connections that set session state in their first transaction and stay "
        "pinned to one DB connection until they close (FACTS: proxy.pinning); default 0",
    )
    overhead: Duration = Field(
        0.001,
        ge=0,
        le=10,
        description="latency the proxy adds to each transaction; assumed 1 ms (FACTS: proxy.overhead)",
    )
    idle_trim: Duration = Field(
        60.0,
        gt=0,
        le=86400,
        description="how often the proxy looks for idle DB connections to close; assumed 60 s (FACTS: "
        "proxy.idle_trim)",
    )

    @model_validator(mode="after")
    def _idle_default(self) -> Proxy:
        if self.max_idle_connections_percent is None:
            self.max_idle_connections_percent = self.max_connections_percent / 2
        elif self.max_idle_connections_percent > self.max_connections_percent:
            raise ValueError(
                f"max_idle_connections_percent ({self.max_idle_connections_percent:g}) must be at most "
                f"max_connections_percent ({self.max_connections_percent:g})"
            )
        return self


def _acu(value: float) -> float:
    if abs(value / ACU_STEP - round(value / ACU_STEP)) > 1e-9:
        raise ValueError(f"{value:g} is not a multiple of 0.5 ACU (FACTS: acu.range)")
    return value


Acu = Annotated[float, AfterValidator(_acu)]


class ServerlessScaling(Strict):
    """How a Serverless v2 instance's capacity follows its load. AWS publishes no rates: every figure here
    is assumed (FACTS: acu.scaling, acu.controller) and a parameter."""

    interval: Duration = Field(
        1.0, ge=0.1, le=3600, description="capacity is re-evaluated this often; assumed 1 s"
    )
    target_cpu: float = Field(
        0.7,
        gt=0,
        le=1,
        description="capacity is sized so the CPU work submitted in the last cpu_window would use this share of "
        "it; assumed 0.7",
    )
    cpu_window: Duration = Field(
        10.0,
        gt=0,
        le=3600,
        description="the submitted CPU work is averaged over this long, so single busy seconds do not hold "
        "capacity up; assumed 10 s",
    )
    target_memory: float = Field(
        0.75,
        gt=0,
        le=1,
        description="capacity is sized so connection memory uses at most this share of it; assumed 0.75",
    )
    memory_per_connection: float = Field(
        5.0,
        ge=0,
        le=1024,
        description="MiB each open connection holds (a backend process); assumed 5 MiB",
    )
    scale_up_rate: float = Field(
        0.1,
        gt=0,
        le=10,
        description="while below its target, capacity grows by this fraction of itself per second (faster "
        "the larger it is, FACTS: acu.scaling); assumed 0.1",
    )
    scale_up_min: float = Field(
        0.5, gt=0, le=256, description="...but by at least this many ACU per second; assumed 0.5"
    )
    scale_down_rate: float = Field(
        0.01,
        gt=0,
        le=10,
        description="while above its target, capacity shrinks by this fraction of itself per second (scale-down "
        "is gradual); assumed 0.01 (halves in about 70 s)",
    )
    pin_after: Duration = Field(
        30.0,
        ge=0,
        le=86400,
        description="a transaction open for longer than this keeps the capacity it began under: the instance "
        "does not scale below it until the transaction ends (FACTS: acu.idle_txn; the mechanism is assumed); "
        "assumed 30 s",
    )


class Serverless(Strict):
    """Aurora Serverless v2 capacity range for the cluster's `class: db.serverless` instances."""

    min_acu: Acu = Field(
        ...,
        ge=0,
        le=256,
        description="minimum capacity, 0 or 0.5-256 ACU in steps of 0.5; 0 turns on auto-pause (FACTS: acu.range)",
    )
    max_acu: Acu = Field(
        ..., ge=1, le=256, description="maximum capacity, 1-256 ACU in steps of 0.5 (FACTS: acu.range)"
    )
    seconds_until_auto_pause: Duration | None = Field(
        None,
        ge=300,
        le=86400,
        description="min_acu 0: an instance with no connections for this long pauses at 0 ACU; 300 s-1 day, "
        "default 300 s (FACTS: acu.range)",
    )
    resume: Duration = Field(
        15.0,
        ge=0,
        le=600,
        description="a paused instance takes this long to resume after a connection attempt; connection "
        "attempts wait for it up to their connect_timeout (FACTS: acu.resume); 15 s",
    )
    vcpu_per_acu: float = Field(
        0.25,
        gt=0,
        le=4,
        description="CPU in proportion to memory (FACTS: acu.memory): 1 ACU = 2 GiB, and memory-optimised "
        "classes have 8 GiB per vCPU, so 0.25 vCPU per ACU (assumed)",
    )
    price_per_acu_hour: float = Field(
        0.12, ge=0, le=100, description="US$ per ACU-hour; 0.12 (FACTS: acu.price; it depends on the Region)"
    )
    provisioned_price_per_gib_hour: float = Field(
        0.01625,
        ge=0,
        le=100,
        description="US$ per GiB of instance memory per hour for the provisioned comparison: db.r6g.large "
        "(16 GiB) at US$0.26/h; assumed (FACTS: acu.provisioned_price; it depends on the Region)",
    )
    scaling: ServerlessScaling = Field(default_factory=ServerlessScaling)

    @model_validator(mode="after")
    def _range(self) -> Serverless:
        if self.min_acu > self.max_acu:
            raise ValueError(f"min_acu ({self.min_acu:g}) must be at most max_acu ({self.max_acu:g})")
        if self.seconds_until_auto_pause is None:
            if self.min_acu == 0:
                self.seconds_until_auto_pause = 300.0
        elif self.min_acu > 0:
            raise ValueError("seconds_until_auto_pause applies only with min_acu 0 (auto-pause)")
        return self


class Secondary(Strict):
    """Aurora Global Database: the secondary Region's cluster, read-only, fed by storage-level replication
    from the primary Region (topology aurora-global; FACTS: global.lag)."""

    region: Name = Field(
        "secondary",
        description="the secondary cluster's Region (a name, e.g. eu-west-1); default `secondary`",
    )
    readers: list[InstanceSpec] = Field(
        default_factory=lambda: [InstanceSpec()],
        min_length=1,
        max_length=15,
        description="1-15 readers of the secondary cluster (names default to secondary-1, secondary-2, ...); "
        "a switchover or failover promotes one, lowest tier first, then the largest (FACTS: failover.tiers)",
    )
    lag: LatencyDist = Field(
        default_factory=lambda: LatencyDist(p50=0.2, p99=0.8),
        description="cross-Region replication lag (commit in the primary until the change is in the secondary's "
        "volume), lognormal, drawn afresh every lag_step; assumed p50 200 ms, p99 800 ms so that it stays "
        "under 1 s as documented (FACTS: global.lag)",
    )
    lag_step: Duration = Field(
        1.0,
        gt=0,
        le=3600,
        description="the lag holds for this long, then a new one is drawn; assumed 1 s (the lag moves with the "
        "network and the write stream, not per write)",
    )
    promotion: Annotated[Phase, BeforeValidator(_phase_shorthand)] = Field(
        default_factory=lambda: Phase(min=20.0, max=50.0),
        description="global failover: from the failover's start until the promoted secondary reader accepts "
        "writes; uniform 20-50 s, under the documented minute (FACTS: global.promotion)",
    )
    switchover: Annotated[Phase, BeforeValidator(_phase_shorthand)] = Field(
        default_factory=lambda: Phase(min=20.0, max=50.0),
        description="global switchover: from the secondary having caught up until it accepts writes; AWS "
        "publishes no figure ('unavailable for a short time'), assumed as promotion (FACTS: global.switchover)",
    )

    @model_validator(mode="after")
    def _names(self) -> Secondary:
        for i, reader in enumerate(self.readers, start=1):
            if reader.name is None:
                reader.name = f"secondary-{i}"
        return self


TOPOLOGIES = ("single-az", "multi-az-instance", "multi-az-cluster", "aurora", "aurora-global")
AURORA_TOPOLOGIES = ("aurora", "aurora-global")
RDS_REPLICA_APPLY_RATE = 2000.0  # assumed: FACTS replication.rds_apply_rate


class Cluster(Strict):
    engine: Literal["aurora-postgresql", "aurora-mysql", "postgres", "mysql"] = Field(
        "aurora-postgresql",
        description="database engine: "
        + ", ".join(ENGINES)
        + "; default aurora-postgresql, the course's engine",
    )
    topology: Literal["single-az", "multi-az-instance", "multi-az-cluster", "aurora", "aurora-global"] = (
        Field(
            "aurora",
            description="single-az (one RDS instance on EBS, 0-15 async read replicas), multi-az-instance (plus a "
            "synchronous standby that takes no reads), multi-az-cluster (writer plus 2 readable semisynchronous "
            "standbys in 3 AZs), aurora (writer plus 0-15 readers on one quorum volume) or aurora-global (an aurora "
            "cluster in the primary Region plus a read-only secondary cluster in another Region, `secondary`). "
            "Default aurora, to match the default engine (FACTS: topology.limits, global.lag)",
        )
    )
    region: Name | None = Field(
        None,
        description="aurora-global: the primary cluster's Region (a name, e.g. us-east-1); default `primary`",
    )
    secondary: Secondary | None = Field(
        None,
        description="aurora-global (required there): the secondary Region's cluster, its replication lag and "
        "the switchover and failover phases",
    )
    writer: InstanceSpec = Field(default_factory=InstanceSpec)
    readers: list[InstanceSpec] = Field(
        default_factory=list,
        max_length=15,
        description="aurora: 0-15 readers; single-az and multi-az-instance: 0-15 read replicas; "
        "multi-az-cluster: exactly 2, the readable standbys (FACTS: replicas.max)",
    )
    standby_az: str | None = Field(
        None,
        pattern=r"^[a-z]$",
        description="multi-az-instance: the standby's AZ; default the first of a, b, c that is not the writer's",
    )
    parameters: Parameters = Field(default_factory=Parameters)
    connection: ConnectionCost = Field(default_factory=ConnectionCost)
    storage: Storage = Field(default_factory=Storage)
    replication: Replication = Field(default_factory=Replication)
    dns: Dns = Field(default_factory=Dns)
    failover: Failover = Field(default_factory=Failover)
    proxy: Proxy | None = Field(
        None,
        description="RDS Proxy; omit for none. Routes `proxy` (read/write) and `proxy:reader` (read-only)",
    )
    serverless: Serverless | None = Field(
        None,
        description="Aurora Serverless v2 capacity range; required when an instance has class db.serverless",
    )
    backup: Backup = Field(default_factory=Backup)
    restore: RestoreSettings = Field(default_factory=RestoreSettings)

    @model_validator(mode="after")
    def _names(self) -> Cluster:
        # a global database's primary cluster fails over (and restores) within its Region as an aurora
        # cluster does
        local = "aurora" if self.topology == "aurora-global" else self.topology
        self.failover.resolve(local)
        self.restore.resolve(local)
        if self.topology == "aurora-global" and self.region is None:
            self.region = "primary"
        if self.writer.name is None:
            self.writer.name = "writer"
        for i, reader in enumerate(self.readers, start=1):
            if reader.name is None:
                reader.name = f"reader-{i}"
        if self.topology == "multi-az-instance" and self.standby_az is None:
            self.standby_az = next(az for az in "abc" if az != self.writer.az)
        return self

    def replica_kind(self) -> str:
        """How this topology's readers get changes: aurora (shared volume), async (RDS), semisync (cluster)."""
        return {"aurora": "aurora", "aurora-global": "aurora", "multi-az-cluster": "semisync"}.get(
            self.topology, "async"
        )

    @property
    def is_aurora(self) -> bool:
        """An Aurora cluster volume: aurora, or aurora-global's primary cluster."""
        return self.topology in AURORA_TOPOLOGIES

    def regions(self) -> list[str]:
        """aurora-global: [primary, secondary] Regions; other topologies have no Region names."""
        if self.topology != "aurora-global" or self.secondary is None:
            return []
        return [self.region or "primary", self.secondary.region]


# -------------------------------------------------------------------------------------------- services


class Pool(Strict):
    """A client connection pool with HikariCP semantics (FACTS: hikari.defaults)."""

    max_size: int = Field(
        10, ge=1, le=MAX_POOL, description="maximumPoolSize; HikariCP default 10 (FACTS: hikari.defaults)"
    )
    min_idle: int | None = Field(
        None, ge=0, le=MAX_POOL, description="minimumIdle; HikariCP default = max_size (a fixed-size pool)"
    )
    connection_timeout: Duration = Field(
        30.0,
        ge=0.25,
        le=3600,
        description="connectionTimeout: longest wait for a connection; HikariCP default 30 s (FACTS: hikari.defaults)",
    )
    idle_timeout: Duration = Field(
        600.0,
        le=MAX_DURATION_S,
        description="idleTimeout: idle connections above min_idle close after this; HikariCP default 10 min "
        "(FACTS: hikari.defaults); 0 = never",
    )
    max_lifetime: Duration = Field(
        1800.0,
        le=MAX_DURATION_S,
        description="maxLifetime: a connection is retired after this; HikariCP default 30 min (FACTS: hikari.defaults); "
        "0 = never",
    )
    max_lifetime_jitter: float = Field(
        0.025,
        ge=0,
        le=1,
        description="each connection's lifetime is shortened by a uniform random fraction up to this; "
        "HikariCP uses 2.5% (FACTS: hikari.lifetime_variance)",
    )

    validation: bool = Field(
        True,
        description="check a connection idle for more than 500 ms before lending it (HikariCP isValid; FACTS: "
        "hikari.validation); false lends it unchecked",
    )
    validation_timeout: Duration = Field(
        5.0,
        ge=0.25,
        le=3600,
        description="validationTimeout: a check of a connection to an unreachable host gives up after this; "
        "HikariCP default 5 s (FACTS: hikari.validation)",
    )
    keepalive: Duration = Field(
        120.0,
        ge=0,
        le=MAX_DURATION_S,
        description="keepaliveTime: idle connections are checked this often, so dead ones to an unreachable host "
        "are found; HikariCP 5 default 2 min (FACTS: hikari.validation); 0 = never",
    )
    evict_on_error: Literal["connection", "all", "none"] = Field(
        "connection",
        description="which query errors close the connection: connection (broken connections, HikariCP's "
        "SQLState 08 rule), all (also read_only, as failover-aware drivers do) or none (kept until validation "
        "or max_lifetime). Default connection (FACTS: hikari.evict)",
    )
    connect_timeout: Duration = Field(
        10.0,
        ge=0.001,
        le=3600,
        description="driver connectTimeout: a connection attempt to an unreachable host fails after this; "
        "pgjdbc default 10 s (FACTS: jdbc.timeouts)",
    )
    socket_timeout: Duration = Field(
        0.0,
        ge=0,
        le=86400,
        description="driver socketTimeout: a query on a connection to an unreachable host fails after this; "
        "0 = none (pgjdbc default), so the OS gives up after TCP retransmissions, about 924.6 s on Linux "
        "(FACTS: jdbc.timeouts, tcp.linux)",
    )

    @model_validator(mode="after")
    def _min_idle(self) -> Pool:
        # HikariCP: minimumIdle unset or above maximumPoolSize means maximumPoolSize
        if self.min_idle is None or self.min_idle > self.max_size:
            self.min_idle = self.max_size
        return self


class RatePoint(Strict):
    at: Duration = Field(..., le=MAX_DURATION_S)
    rate: Rate = Field(..., le=MAX_RATE)


class Burst(Strict):
    at: Duration = Field(..., le=MAX_DURATION_S)
    rate: Rate = Field(..., le=MAX_RATE, description="extra arrival rate on top of the base rate")
    for_: Duration = Field(..., alias="for", gt=0, le=MAX_DURATION_S)


class Keys(Strict):
    count: int = Field(100_000, ge=1, le=50_000_000, description="distinct keys; assumed default 100000")
    distribution: Literal["uniform", "zipf"] = "uniform"
    s: float = Field(1.1, gt=0, le=10, description="zipf exponent; assumed default 1.1")


class Transaction(Strict):
    hold: Duration = Field(
        0.0, le=86400, description="time the connection stays held after the query (app work)"
    )
    external_call: Duration = Field(
        0.0, le=86400, description="external call made while the transaction holds the connection"
    )
    locks: int = Field(
        0,
        ge=0,
        le=MAX_LOCKS,
        description="writes: row locks the transaction takes when its statement starts, held to the commit: "
        "the request's key plus locks-1 more drawn from the same key distribution, taken in ascending key "
        "order (so no deadlocks). Default 0, no row locks (assumed: a scenario states its contention)",
    )


def _follow_shorthand(value: object) -> object:
    # `follows: place_order` is short for `follows: {query: place_order}`
    return {"query": value} if isinstance(value, str) else value


class Follow(Strict):
    """A read-after-write flow: after each successful `query`, the same session reads the same key."""

    query: Name = Field(..., description="the query class this one follows (same service)")
    fraction: float = Field(1.0, gt=0, le=1, description="share of completions followed; default 1")
    delay: Duration = Field(
        0.0, ge=0, le=86400, description="time between the completion and the read; default 0"
    )


# CPU per unit of a plan's work when the scenario gives none (FACTS: plan.cost_per_row): a sequential scan
# reads about 10 million cached rows per second per vCPU (assumed); one comparison of an index descent costs a
# quarter of a row, the ratio of PostgreSQL's planner constants cpu_operator_cost / cpu_tuple_cost
PLAN_COST_PER_ROW = {"scan": 1e-7, "index": 2.5e-8}
MAX_ROWS = 1e12


class QueryPlan(Strict):
    """How a query reaches its rows, so how its CPU time grows with its table (FACTS: plan.scan, plan.index).

    Mean CPU per execution at time t, with rows(t) = rows + growth·t: `index`: cpu + cost_per_row·log2(rows(t))
    (a B-tree descent); `scan`: cpu + cost_per_row·rows(t) (a sequential scan). The query's `cpu` is the fixed
    part; each execution's CPU time is drawn from `cpu_distribution` around that mean at its arrival."""

    access: Literal["index", "scan"] = Field(
        ...,
        description="index: a B-tree lookup, cost grows with log2(rows); scan: a sequential scan, cost grows "
        "with rows",
    )
    rows: float = Field(..., ge=1, le=MAX_ROWS, description="the table's rows at the start of the run")
    growth: Rate = Field(
        0.0,
        le=1e9,
        description="rows added per second over the run (50/s, 180000/h); default 0. A run of minutes can stand "
        "for months of growth",
    )
    cost_per_row: Duration | None = Field(
        None,
        gt=0,
        le=1,
        description="CPU per unit of work: scan, per row read, assumed 0.1 µs; index, per comparison of the "
        "descent (log2(rows) of them), assumed 0.025 µs (FACTS: plan.cost_per_row)",
    )

    @model_validator(mode="after")
    def _default_cost(self) -> QueryPlan:
        if self.cost_per_row is None:
            self.cost_per_row = PLAN_COST_PER_ROW[self.access]
        return self


class Query(Strict):
    """A query class: what is sent, how often, where, and what it costs the DB."""

    query: Name = Field(..., description="query class name")
    kind: Literal["read", "write"] = "read"
    route: str | None = Field(
        None, description="writer | reader | custom:<name>; default the service's connect_via"
    )
    rate: Rate | None = Field(
        None, le=MAX_RATE, description="arrival rate (Poisson unless `arrival: constant`)"
    )
    arrival: Literal["poisson", "constant"] = Field(
        "poisson",
        description="open-workload arrivals: poisson (default: many independent clients), or constant (evenly "
        "spaced, 1/rate apart)",
    )
    schedule: list[RatePoint] | None = Field(
        None, min_length=1, description="piecewise-constant Poisson rate: [{at, rate}, ...]"
    )
    bursts: list[Burst] = Field(default_factory=list, description="extra rate for a while: [{at, rate, for}]")
    users: int | None = Field(
        None, ge=1, le=1_000_000, description="closed loop: users each with one request out"
    )
    think: Duration = Field(
        1.0, gt=0, le=86400, description="closed loop: mean think time (exponential); assumed 1 s"
    )
    cpu: Duration = Field(
        0.001,
        gt=0,
        le=3600,
        description="mean DB CPU per query on one vCPU; assumed 1 ms. With a `plan`: the fixed part of each "
        "execution (parse, plan, send the result), to which the plan adds what its table costs",
    )
    cpu_distribution: Literal["exponential", "constant"] = Field(
        "exponential",
        description="distribution of the CPU time; default exponential (assumed; keeps M/M/c theory applicable)",
    )
    plan: QueryPlan | None = Field(
        None,
        description="the query's access path and table: its CPU time then grows as the table does "
        "(`{access: index|scan, rows, growth, cost_per_row}`); omit for a fixed mean `cpu`",
    )
    keys: Keys = Field(default_factory=Keys)
    transaction: Transaction | None = None
    follows: Annotated[Follow | None, BeforeValidator(_follow_shorthand)] = Field(
        None,
        description="issue this query after each completion of another query in the service, with the same "
        "session and key: `follows: place_order` or `{query, fraction, delay}`",
    )

    retries: int = Field(
        0,
        ge=0,
        le=100,
        description="times a failed request is sent again (after the service's reconnect backoff) when that is "
        "safe: it never reached the DB, was refused as read_only, or is idempotent. Default 0 (assumed: a pool does "
        "not retry; the application must ask for it)",
    )
    idempotent: bool | None = Field(
        None,
        description="safe to retry after connection_lost (it may have run); default true for reads, false for "
        "writes (FACTS: failover.inflight)",
    )
    pins: bool = Field(
        False,
        description="through RDS Proxy: the query sets session state (SET, temporary tables, ...), so its "
        "client connection stays pinned to its DB connection until it closes (FACTS: proxy.pinning)",
    )

    @model_validator(mode="after")
    def _one_load(self) -> Query:
        if self.idempotent is None:
            self.idempotent = self.kind == "read"
        given = [k for k in ("rate", "schedule", "users", "follows") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"query {self.query!r} needs exactly one of rate, schedule, users, follows "
                f"(got {', '.join(given) or 'none'})"
            )
        if self.users is not None and self.bursts:
            raise ValueError("bursts apply to open workloads (rate or schedule), not to users")
        return self


def _dns_cache(value: object) -> object:
    if value == "forever":
        return math.inf
    try:
        seconds = _finite(parse_duration, DURATION_HELP)(value)
    except ValueError as exc:
        raise ValueError(f"{exc}, or forever") from None
    if seconds > MAX_DURATION_S:
        raise ValueError(f"at most {MAX_DURATION_S:g} s, or forever")
    return seconds


def _dns_cache_out(value: float) -> object:
    return "forever" if math.isinf(value) else value


DnsCache = Annotated[
    float,
    BeforeValidator(_dns_cache),
    PlainSerializer(_dns_cache_out),
    WithJsonSchema({"type": ["string", "number"], "description": DURATION_HELP + ", or forever"}),
]


class Reconnect(Strict):
    """Backoff between failed connection attempts (and between retries of a query)."""

    initial_backoff: Duration = Field(
        0.010,
        gt=0,
        le=3600,
        description="first wait after a failure; 10 ms, HikariCP 5 (FACTS: hikari.fill)",
    )
    max_backoff: Duration = Field(
        5.0, gt=0, le=86400, description="the wait doubles up to this; 5 s, HikariCP 5 (FACTS: hikari.fill)"
    )
    jitter: Literal["none", "full", "equal"] = Field(
        "none",
        description="none (HikariCP: every client waits the same), full (uniform 0..wait) or equal (wait/2 plus "
        "uniform 0..wait/2) (FACTS: backoff.jitter)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Reconnect:
        if self.max_backoff < self.initial_backoff:
            raise ValueError(
                f"max_backoff ({self.max_backoff:g} s) must be at least initial_backoff ({self.initial_backoff:g} s)"
            )
        return self


class CircuitBreaker(Strict):
    """A client-side circuit breaker per task: after `failures` connection errors in a row it opens and
    requests fail `circuit_open` at once; after `open_for` one trial request goes through (half-open)."""

    failures: int = Field(5, ge=1, le=10_000, description="consecutive failures that open it; assumed 5")
    open_for: Duration = Field(
        10.0, gt=0, le=86400, description="time it stays open before a trial request; assumed 10 s"
    )


def _invocation_shorthand(value: object) -> object:
    """A lambda service's `invocations` + `handler` are short for a one-query `workload`."""
    if not isinstance(value, dict):
        return value
    if value.get("kind") == "lambda" and ("handler" in value or "invocations" in value):
        value = dict(value)
        handler, invocations = value.pop("handler", None), value.pop("invocations", None)
        if "workload" not in value and isinstance(handler, dict) and isinstance(invocations, dict):
            value["workload"] = [{**handler, **invocations}]
        else:
            # keep them, so validation reports what is missing or doubled
            value["handler"], value["invocations"] = handler, invocations
    return value


LAMBDA_ONLY = (
    "reserved_concurrency",
    "init",
    "connection",
    "reclaim_after",
    "invocation_type",
    "max_event_age",
    "work",
)
ECS_ONLY = ("tasks", "circuit_breaker")
# pool settings a Lambda environment's single connection uses
LAMBDA_POOL = ("connect_timeout", "socket_timeout")


class Service(Strict):
    """A client fleet. `ecs`: long-lived tasks, each with its own pool per endpoint it uses. `lambda`: a
    function whose execution environments each hold one connection (FACTS: lambda.scaling, lambda.account, lambda.frozen)."""

    name: Name
    kind: Literal["ecs", "lambda"] = Field(
        "ecs",
        description="ecs (long-lived tasks with pools) or lambda (execution environments, one connection each)",
    )
    tasks: int = Field(
        1, ge=0, le=MAX_TASKS, description="ecs: tasks at start; assumed 1 (a scenario states its fleet)"
    )
    pool: Pool = Field(default_factory=Pool)
    connect_via: str = Field(
        "writer",
        description="default route: writer | reader | custom:<name> | proxy | proxy:reader; default writer, "
        "the endpoint every app has",
    )
    region: Name | None = Field(
        None,
        description="aurora-global: the Region the service runs in, one of the cluster's two; default the "
        "primary's. A region_outage there stops its ecs tasks until the Region is back",
    )
    sessions: int = Field(
        1000, ge=1, le=100_000_000, description="user sessions requests are spread over; assumed 1000"
    )
    dns_cache: DnsCache = Field(
        30.0,
        description="how long each task caches a resolved endpoint: 0 (always ask the resolver), a duration, "
        "or forever. Default 30 s, the JVM's networkaddress.cache.ttl (FACTS: dns.jvm_cache)",
    )
    reconnect: Reconnect = Field(default_factory=Reconnect)
    circuit_breaker: CircuitBreaker | None = Field(
        None, description="ecs: a circuit breaker in each task; omit for none"
    )
    workload: list[Query] = Field(
        default_factory=list,
        description="query classes; a lambda service has exactly one (its handler), or gives `invocations` "
        "and `handler` instead",
    )

    # ------------------------------------------------------------------ lambda
    handler: dict[str, Any] | None = Field(
        None,
        description="lambda: the query each invocation runs (query, kind, route, cpu, transaction, ...)",
    )
    invocations: dict[str, Any] | None = Field(
        None, description="lambda: invocation load (rate, schedule, bursts, arrival), as for a query"
    )
    reserved_concurrency: int | None = Field(
        None,
        ge=0,
        le=100_000,
        description="lambda: reserved concurrency, the function's cap (FACTS: lambda.reserved); default none: "
        "it shares the account's unreserved concurrency",
    )
    init: LatencyDist = Field(
        default_factory=lambda: LatencyDist(p50=0.25, p99=1.0),
        description="lambda: cold-start init duration, lognormal; assumed p50 250 ms, p99 1 s "
        "(FACTS: lambda.cold_start)",
    )
    work: Duration = Field(
        0.0,
        ge=0,
        le=900,
        description="lambda: handler time before its query, holding no DB connection; 0 (assumed: a scenario states its work)",
    )
    connection: Literal["per_environment", "per_invocation"] = Field(
        "per_environment",
        description="lambda: a connection opened at init and kept while the environment is frozen "
        "(FACTS: lambda.frozen), or opened and closed by every invocation",
    )
    reclaim_after: Annotated[Phase, BeforeValidator(_phase_shorthand)] = Field(
        default_factory=lambda: Phase(min=300.0, max=900.0),
        description="lambda: an idle environment (and its connection) is reclaimed after a time uniform in "
        "min..max; assumed 5-15 min (FACTS: lambda.frozen)",
    )
    invocation_type: Literal["sync", "async"] = Field(
        "sync",
        description="lambda: sync (a throttled invocation fails `throttled`) or async (Lambda retries it with "
        "backoff up to max_event_age; FACTS: lambda.async_retry)",
    )
    max_event_age: Duration = Field(
        21600.0,
        ge=60,
        le=21600,
        description="lambda async: how long throttled events are retried; default 6 h (FACTS: lambda.async_retry)",
    )

    def routes(self) -> list[str]:
        """The endpoints this service's queries use, in first-use order: each task has one pool per route."""
        return list(dict.fromkeys(q.route or self.connect_via for q in self.workload))

    @model_validator(mode="wrap")
    @classmethod
    def _shorthand(cls, value: object, handler: Any) -> Any:
        value = _invocation_shorthand(value)
        service = handler(value)
        if isinstance(value, dict):
            # judged on the keys the file gave: validators fill in fields (the pool's min_idle) themselves
            _fields_of_kind(service.kind, value)
        return service

    @model_validator(mode="after")
    def _kind_rules(self) -> Service:
        if self.kind == "lambda":
            if self.handler is not None or self.invocations is not None:
                raise ValueError(
                    "a lambda service takes `invocations` and `handler` together (or one `workload` query "
                    "instead of both)"
                )
            if len(self.workload) != 1:
                raise ValueError(
                    f"a lambda service runs one handler query per invocation; workload has {len(self.workload)}"
                )
            if self.workload[0].users is not None or self.workload[0].follows is not None:
                raise ValueError(
                    "a lambda handler's load is `rate` or `schedule` invocations, not users or follows"
                )
        else:
            if self.handler is not None or self.invocations is not None:
                raise ValueError(
                    "handler and invocations apply to kind: lambda; an ecs service has a workload"
                )
            if not self.workload:
                raise ValueError("an ecs service needs a workload of at least one query")
        seen: set[str] = set()
        for q in self.workload:
            if q.query in seen:
                raise ValueError(f"query name {q.query!r} is used twice")
            seen.add(q.query)
        return self


def _fields_of_kind(kind: str, raw: dict[str, Any]) -> None:
    """Fields that belong to the other kind of service are errors, not silently ignored."""
    if kind == "lambda":
        pool = raw.get("pool")
        wrong = [f for f in ECS_ONLY if f in raw]
        wrong += [f"pool.{k}" for k in (pool if isinstance(pool, dict) else ()) if k not in LAMBDA_POOL]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to a lambda service "
                f"(each environment holds one connection; pool takes only {', '.join(LAMBDA_POOL)})"
            )
    else:
        wrong = [f for f in LAMBDA_ONLY if f in raw]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} apply only to kind: lambda")


class Account(Strict):
    """Account-wide limits shared by the scenario's services."""

    lambda_concurrency: int = Field(
        1000,
        ge=100,
        le=1_000_000,
        description="concurrent Lambda executions for the account (Region); default 1000 (FACTS: lambda.account)",
    )


# ---------------------------------------------------------------------------------------------- events


class _Event(Strict):
    at: Duration = Field(..., le=MAX_DURATION_S, description="simulated time the event starts")


class Deploy(_Event):
    """A rolling deployment: each wave starts new tasks, the tasks they replace stop `overlap` later."""

    action: Literal["deploy"]
    service: Name
    waves: int = Field(
        1,
        ge=1,
        le=1000,
        description="deploy waves; default 1 (the whole fleet at once, ECS maximumPercent 200, FACTS: ecs.deploy)",
    )
    overlap: Duration = Field(
        60.0,
        le=86400,
        description="how long replaced tasks keep running beside their replacements; assumed 60 s",
    )
    wave_interval: Duration | None = Field(
        None,
        le=86400,
        description="time between wave starts; default = overlap (a wave starts when the last drained)",
    )


class ScaleService(_Event):
    """Scale a service to `tasks`; new tasks open their pools at once, removed tasks drain."""

    action: Literal["scale_service"]
    service: Name
    tasks: int = Field(..., ge=0, le=MAX_TASKS)


class WriteSpike(_Event):
    """Multiply a service's write rates by `factor` for a while."""

    action: Literal["write_spike"]
    service: Name
    factor: float = Field(..., gt=0, le=10_000)
    for_: Duration = Field(..., alias="for", gt=0, le=MAX_DURATION_S)


class AzOutage(_Event):
    """An availability zone is lost: its instances are down and its storage copies unreachable."""

    action: Literal["az_outage"]
    az: str = Field(..., pattern=r"^[a-z]$", description="the AZ letter")
    for_: Duration = Field(..., alias="for", gt=0, le=MAX_DURATION_S)
    mode: Literal["reset", "blackhole"] = Field(
        "reset",
        description="reset: the instances' hosts refuse and reset connections; blackhole: they are unreachable "
        "and clients wait for their timeouts. Default reset (assumed: what AZ outages did before modes existed)",
    )


class FailoverEvent(_Event):
    """A planned failover: the writer restarts and a standby or reader takes over, no detection delay."""

    action: Literal["failover"]
    to: Name | None = Field(
        None, description="aurora and multi-az-cluster: the reader to promote; default by promotion tier"
    )


class InstanceFailure(_Event):
    """An instance fails. The writer's failure starts a failover (or an in-place recovery on single-az)."""

    action: Literal["instance_failure"]
    target: Name = Field("writer", description="the instance's name; default writer")
    mode: Literal["reset", "blackhole"] = Field(
        "reset",
        description="reset: the host answers, connections are refused and reset at once; blackhole: the host "
        "is unreachable, so clients wait for their timeouts. Default reset (assumed: a crashed database on a "
        "live host, the common case)",
    )


class Reboot(_Event):
    """An instance restarts (cluster.failover.reboot); its connections are reset. No failover."""

    action: Literal["reboot"]
    target: Name = Field("writer", description="the instance's name; default writer")


class StorageNodeFailure(_Event):
    """Storage nodes holding `count` of the 6 copies of a protection group fail (FACTS: storage.repair)."""

    action: Literal["storage_node_failure"]
    count: int = Field(1, ge=1, le=6, description="copies lost; default 1")
    az: str | None = Field(
        None, pattern=r"^[a-z]$", description="take the copies from this AZ first; default any AZ, at random"
    )
    for_: Duration | None = Field(
        None,
        alias="for",
        gt=0,
        le=MAX_DURATION_S,
        description="how long the nodes stay down; a copy is back sooner when repair finishes first "
        "(storage.segment_repair). Default: until repaired",
    )


class IdleInTransaction(_Event):
    """`sessions` of a service's connections begin a transaction and then sit idle in it (a leaked
    transaction: the app forgot to commit), until `for` has passed or the server ends them."""

    action: Literal["idle_in_transaction"]
    service: Name
    sessions: int = Field(1, ge=1, le=10_000, description="sessions left idle in a transaction; default 1")
    for_: Duration | None = Field(
        None,
        alias="for",
        gt=0,
        le=MAX_DURATION_S,
        description="how long each stays idle before the app commits; default: to the end of the run",
    )


class LongTransaction(_Event):
    """One session of a service runs a transaction for `duration` (a batch job, a long report): busy, so the
    idle-in-transaction timeout does not end it."""

    action: Literal["long_transaction"]
    service: Name
    duration: Duration = Field(
        ..., gt=0, le=MAX_DURATION_S, description="how long the transaction stays open"
    )
    sessions: int = Field(1, ge=1, le=10_000, description="sessions running one each; default 1")
    keys: int = Field(
        0,
        ge=0,
        le=MAX_BATCH_KEYS,
        description="row locks each session holds for the whole transaction: session i locks keys "
        "first_key + i*keys .. first_key + (i+1)*keys - 1, taken in ascending order. Keys are numbered by "
        "popularity in a zipf distribution (0 is the hottest). Default 0, none",
    )
    first_key: int = Field(0, ge=0, le=50_000_000, description="the first key locked; default 0, the hottest")


class BatchUpdate(_Event):
    """A batch job updates `keys` rows in one transaction: it locks them (the hottest first: keys
    first_key .. first_key+keys-1), holds them for `duration`, then commits. Requests that need those rows
    wait behind it (or fail lock_timeout)."""

    action: Literal["batch_update"]
    service: Name | None = Field(
        None,
        description="the ecs service whose pool lends the batch its connection; default the first ecs service",
    )
    keys: int = Field(..., ge=1, le=MAX_BATCH_KEYS, description="rows the batch locks")
    first_key: int = Field(
        0,
        ge=0,
        le=50_000_000,
        description="the first key locked; default 0. Keys are numbered by popularity in a zipf distribution "
        "(0 is the hottest), so the default locks the hottest rows",
    )
    duration: Duration = Field(
        ..., gt=0, le=MAX_DURATION_S, description="how long the batch holds its locks once it has them all"
    )


class SnapshotEvent(_Event):
    """A manual snapshot: a named restore point (kept until deleted, not bound to the retention period)."""

    action: Literal["snapshot"]
    name: Name | None = Field(
        None, description="what a restore calls it; default snapshot-1, snapshot-2, ..."
    )


class Cutover(Strict):
    """How the application moves to the restored cluster: its database name is switched to the new endpoint."""

    enabled: bool = Field(
        True,
        description="false: an isolated restore drill (course 004 Hours 12-14); the application stays where it is",
    )
    update: Duration = Field(
        120.0,
        ge=0,
        le=86400,
        description="restored cluster available until the application's endpoint record (or secret) names it: "
        "the runbook's manual step; assumed 2 min (FACTS: restore.cutover)",
    )
    dns_ttl: Duration = Field(
        60.0,
        ge=0,
        le=86400,
        description="TTL of the record the application resolves: resolvers may answer with the old cluster for up "
        "to this long after the switch; assumed 60 s (FACTS: restore.cutover)",
    )
    refresh_pools: bool = Field(
        False,
        description="one TTL after the switch the runbook soft-evicts every pool (HikariCP "
        "softEvictConnections: idle connections close now, busy ones when returned; FACTS: hikari.soft_evict). "
        "Otherwise connections to a surviving old cluster live until max_lifetime",
    )


RESTORE_FAULTS = (
    "subnet_group_mismatch",
    "kms_key_inaccessible",
    "security_group_mismatch",
    "app_config_old_endpoint",
)


class RestoreEvent(_Event):
    """Restore the cluster from a backup into a NEW cluster and (by default) move the application to it."""

    action: Literal["restore"]
    from_: Literal["pitr", "snapshot"] = Field(
        "pitr",
        alias="from",
        description="pitr: point-in-time restore from the automated backups; snapshot: from a snapshot. "
        "Default pitr",
    )
    restore_time: Duration | None = Field(
        None,
        le=MAX_DURATION_S,
        description="pitr: the simulated time to restore to; default the latest restorable time when the restore "
        "starts (FACTS: backup.latest_restorable)",
    )
    snapshot: Name | None = Field(
        None,
        description="snapshot: a snapshot event's name, or `automated` (the latest automated snapshot); default "
        "the latest manual snapshot before the restore, else the latest automated one",
    )
    old_cluster: Literal["lost", "available"] = Field(
        "lost",
        description="lost: the incident took the cluster out at `at` (its instances go down for good); "
        "available: it keeps serving (a drill beside production, or a restore to before a bad change). "
        "Default lost",
    )
    faults: list[Literal[RESTORE_FAULTS]] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="what breaks the drill (course 004 §14.5, FACTS: restore.failures): subnet_group_mismatch "
        "and kms_key_inaccessible stop the restore; security_group_mismatch leaves the restored instance "
        "unreachable from the application; app_config_old_endpoint leaves the application on the old endpoint",
    )
    cutover: Cutover = Field(default_factory=Cutover)


class GlobalSwitchover(_Event):
    """aurora-global, planned (SwitchoverGlobalCluster): writes stop, the secondary catches up, then it is
    promoted and the global writer endpoint follows it. No data is lost (FACTS: global.switchover)."""

    action: Literal["global_switchover"]
    to: Name | None = Field(
        None, description="the secondary Region's instance to promote; default by promotion tier, then size"
    )


class GlobalFailover(_Event):
    """aurora-global, unplanned (detach and promote; FailoverGlobalCluster with AllowDataLoss): replication
    stops, the secondary is promoted at once; writes not yet replicated are lost (FACTS: global.failover)."""

    action: Literal["global_failover"]
    to: Name | None = Field(
        None, description="the secondary Region's instance to promote; default by promotion tier, then size"
    )


class RegionOutage(_Event):
    """aurora-global: a whole Region is lost: its instances, its replication, its ecs services."""

    action: Literal["region_outage"]
    region: Name = Field(..., description="one of the cluster's two Regions")
    for_: Duration | None = Field(
        None,
        alias="for",
        gt=0,
        le=MAX_DURATION_S,
        description="how long the Region is out; default: to the end of the run",
    )
    mode: Literal["reset", "blackhole"] = Field(
        "reset",
        description="reset: the instances' hosts refuse and reset connections; blackhole: they are unreachable "
        "and clients wait for their timeouts. Default reset, as for az_outage",
    )


Event = Annotated[
    Union[  # noqa: UP007
        Deploy,
        ScaleService,
        WriteSpike,
        AzOutage,
        StorageNodeFailure,
        FailoverEvent,
        InstanceFailure,
        Reboot,
        IdleInTransaction,
        LongTransaction,
        SnapshotEvent,
        RestoreEvent,
        GlobalSwitchover,
        GlobalFailover,
        RegionOutage,
        BatchUpdate,
    ],
    Field(discriminator="action"),
]
EVENT_ACTIONS = (
    "deploy",
    "scale_service",
    "write_spike",
    "az_outage",
    "storage_node_failure",
    "failover",
    "instance_failure",
    "reboot",
    "idle_in_transaction",
    "long_transaction",
    "snapshot",
    "restore",
    "global_switchover",
    "global_failover",
    "region_outage",
    "batch_update",
)

_EXPECT = re.compile(r"[ \t]*([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)[ \t]*(==|!=|<=|>=|<|>)[ \t]*(\S+)[ \t]*")


def _expect_syntax(check: str) -> str:
    match = _EXPECT.fullmatch(check.strip())
    if not match:
        raise ValueError(f"{check!r} is not `<summary.path> <op> <number>` with op one of == != < <= > >=")
    try:
        number = float(match.group(3))
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{check!r}: right-hand side {match.group(3)!r} is not a finite number")
    return check


ExpectCheck = Annotated[str, AfterValidator(_expect_syntax)]


class CaseRef(Strict):
    """The course failure case a scenario reproduces, and which side of it (`simdb list` groups by it)."""

    id: Literal[tuple(CASES)] = Field(description="the failure case, one of simdb.cases.CASES")  # type: ignore[valid-type]
    role: Literal["broken", "fixed"] = Field(
        description="broken: shows the Detect signal; fixed: the same setup with the course's Fix"
    )
    fixes: Name | None = Field(None, description="role fixed: the broken scenario this one repairs")


class Scenario(Strict):
    """A complete experiment: cluster, client fleets, timed events and the expected verdict."""

    # where the scenario came from, for errors found after loading (expect: paths)
    _source: str = PrivateAttr("<scenario>")
    _expect_lines: list[int | None] = PrivateAttr(default_factory=list)

    name: Name
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1, description="run seed; every random stream derives from it")
    duration: Duration = Field(
        600.0, gt=0, le=MAX_DURATION_S, description="simulated time; assumed default 10 min"
    )
    warmup: Warmup = Field(
        0.0,
        description="excluded from summary statistics; default 0 s. `auto`: the cut that MSER-5 finds in the "
        "run's latency series",
    )
    timeseries_interval: Duration = Field(
        1.0,
        ge=0.001,
        le=86400,
        description="timeseries.csv row interval; default 1 s (CloudWatch's finest resolution)",
    )
    cluster: Cluster = Field(default_factory=Cluster)
    services: list[Service] = Field(default_factory=list)
    account: Account = Field(default_factory=Account)
    events: list[Event] = Field(default_factory=list)
    expect: list[ExpectCheck] = Field(
        default_factory=list,
        description='checks on summary.json, e.g. "requests.errors.acquire_timeout == 0"',
    )
    case: CaseRef | None = Field(None, description="the course failure case this scenario reproduces")

    def takes_row_locks(self) -> bool:
        """Whether any transaction (a query's, a long_transaction's, a batch_update's) locks rows."""
        queries = (q for s in self.services for q in s.workload)
        return any(q.transaction is not None and q.transaction.locks for q in queries) or any(
            getattr(ev, "keys", 0) for ev in self.events
        )


def expect_error(scenario: Scenario, index: int, message: str) -> ScenarioError:
    """A ScenarioError pointing at the scenario's ``expect[index]`` line."""
    lines = scenario._expect_lines
    return ScenarioError(
        message,
        source=scenario._source,
        line=lines[index] if index < len(lines) else None,
        field=f"expect[{index}]",
    )


def parse_expect(check: str) -> tuple[str, str, float]:
    match = _EXPECT.fullmatch(check.strip())
    assert match is not None  # validated on load
    return match.group(1), match.group(2), float(match.group(3))


# --------------------------------------------------------------------------------------------- loading


_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class _Loader(yaml.SafeLoader):
    """SafeLoader whose scalar conversions fail as YAML errors with a position.

    PyYAML's own constructors let ValueError escape for scalars its resolver accepted (``2020-99-99``,
    ``._``, ``0b_``, integers longer than Python's digit limit); those become a ConstructorError here.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError, ArithmeticError):
            shown = node.value if isinstance(node, yaml.ScalarNode) else node.id
            if isinstance(shown, str) and len(shown) > 40:
                shown = shown[:37] + "..."
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown!r} is not a valid {kind}", node.start_mark
            ) from None


def _compose(text: str, source: str) -> tuple[Any, dict[tuple, int | None]]:
    """YAML → (data, {field path: line}) with duplicate keys rejected."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError("the file is empty; a scenario needs at least `name:`", source=source, line=1)
        lines: dict[tuple, int | None] = {(): node.start_mark.line + 1}
        walked: set[int] = set()

        def walk(n: yaml.Node, path: tuple) -> None:
            # an alias is the same node object as its anchor: walk it once, so that neither
            # self-referencing anchors nor "billion laughs" documents make this recursive or exponential
            if id(n) in walked:
                return
            walked.add(id(n))
            if isinstance(n, yaml.MappingNode):
                seen: set[str] = set()
                for key_node, value_node in n.value:
                    if key_node.tag == _MERGE_TAG:
                        continue
                    line = key_node.start_mark.line + 1
                    if not isinstance(key_node, yaml.ScalarNode):
                        raise ScenarioError(
                            "a key must be a field name, not a list or mapping",
                            source=source,
                            line=line,
                            field=_format_path(path),
                        )
                    key = key_node.value
                    if key_node.tag != _STR_TAG:
                        raise ScenarioError(
                            f"key {key!r} is not a field name (write field names as text, e.g. `max_size:`)",
                            source=source,
                            line=line,
                            field=_format_path(path),
                        )
                    if key in seen:
                        raise ScenarioError(
                            f"key {key!r} appears twice",
                            source=source,
                            line=line,
                            field=_format_path((*path, key)),
                        )
                    seen.add(key)
                    lines[(*path, key)] = line
                    walk(value_node, (*path, key))
            elif isinstance(n, yaml.SequenceNode):
                for i, item in enumerate(n.value):
                    lines[(*path, i)] = item.start_mark.line + 1
                    walk(item, (*path, i))

        walk(node, ())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = f"not valid YAML: {exc.problem or exc.context or 'syntax error'}"
        if exc.problem and exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            # e.g. an unclosed bracket: say where the construct that never ended began
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise ScenarioError(message, source=source, line=line) from None
    except yaml.reader.ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise ScenarioError(
            f"not valid YAML: control character #x{code:04x} is not allowed",
            source=source,
            line=text.count("\n", 0, max(exc.position, 0)) + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", source=source) from None
    except RecursionError:
        raise ScenarioError("not valid YAML: nested too deeply", source=source) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def _format_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + one_line(str(part))
    return out


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation can hold (through Optional, list, Annotated, Union)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (list, Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _model_at(loc: tuple, raw: Any) -> type[BaseModel] | None:
    """The pydantic model that owns the last element of ``loc``, following the raw data for unions.

    ``loc`` is pydantic's, so a tagged union item carries its tag: ``('events', 0, 'deploy', 'wave')``.
    """
    candidates: list[Any] = [Scenario]
    data = raw
    for part in loc[:-1]:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and -len(data) <= part < len(data) else None
            continue
        if len(candidates) > 1:
            tagged = [c for c in candidates if _literal(c, "action") == part]
            if tagged:  # the union tag pydantic inserted, not a field of the file
                candidates = tagged
                continue
            candidates = _pick_union(candidates, data)
        if len(candidates) != 1:
            return None
        field = _field(candidates[0], part)
        if field is None:
            return None
        candidates = _unwrap(field.annotation)
        data = data.get(part) if isinstance(data, dict) else None
    if len(candidates) > 1:
        candidates = _pick_union(candidates, data)
    return candidates[0] if len(candidates) == 1 else None


def _pick_union(candidates: list[Any], data: Any) -> list[Any]:
    action = data.get("action") if isinstance(data, dict) else None
    return [c for c in candidates if _literal(c, "action") == action]


def _field(model: type[BaseModel], name: str) -> Any:
    for field_name, field in model.model_fields.items():
        if name in (field_name, field.alias):
            return field
    return None


def _literal(model: type[BaseModel], name: str) -> Any:
    field = model.model_fields.get(name)
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None


def _allowed_fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _pydantic_message(err: dict, raw: Any) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        model = _model_at(loc, raw)
        allowed = _allowed_fields(model) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {loc[-1]!r}{hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return "this field is required"
    if kind == "union_tag_invalid":
        return f"unknown action {err.get('ctx', {}).get('tag')!r}; allowed: {', '.join(EVENT_ACTIONS)}"
    if kind == "union_tag_not_found":
        return f"each event needs `action:` (one of {', '.join(EVENT_ACTIONS)})"
    message = str(err["msg"])
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind not in ("value_error", "model_type", "dict_type") and "input" in err:
        message += f" (got {_short_repr(err['input'])})"
    return message


_REPR = reprlib.Repr()  # keyword arguments need Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxset = 2, 4, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 40


def _short_repr(value: Any) -> str:
    """At most 40 characters of repr(value), without building the repr of a huge or recursive input."""
    try:
        shown = _REPR.repr(value)
    except (ValueError, RecursionError):  # e.g. an int beyond Python's str-conversion digit limit
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _line_for(loc: tuple, lines: dict[tuple, int | None]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _normalise_loc(loc: tuple) -> tuple:
    # pydantic inserts the union tag after an event's index: ('events', 0, 'deploy', 'waves'). It is not
    # part of the file's path; a key that merely looks like a tag elsewhere (readers[0].deploy) is.
    if len(loc) >= 3 and loc[0] == "events" and isinstance(loc[1], int) and loc[2] in EVENT_ACTIONS:
        return (*loc[:2], *loc[3:])
    return tuple(loc)


INVOCATION_KEYS = ("rate", "schedule", "bursts", "arrival", "users", "follows", "think")


def _shorthand_loc(loc: tuple, raw: Any) -> tuple:
    """An error in the query built from a lambda's `handler` and `invocations` points at what was written."""
    if len(loc) < 4 or loc[0] != "services" or loc[2:4] != ("workload", 0) or not isinstance(loc[1], int):
        return loc
    services = raw.get("services")
    if not isinstance(services, list) or not loc[1] < len(services):
        return loc
    svc = services[loc[1]]
    if not isinstance(svc, dict) or "handler" not in svc or "workload" in svc:
        return loc
    part = "invocations" if len(loc) == 4 or loc[4] in INVOCATION_KEYS else "handler"
    return (*loc[:2], part, *loc[4:])


def validate(
    raw: Any, *, source: str = "<scenario>", lines: dict[tuple, int | None] | None = None
) -> Scenario:
    """Validate raw scenario data (as from YAML) into a fully resolved :class:`Scenario`."""
    lines = lines or {}
    if not isinstance(raw, dict):
        raise ScenarioError(
            f"a scenario is a mapping of fields (name, cluster, services, ...), not {type(raw).__name__}",
            source=source,
            line=lines.get(()),
        )
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        # a misspelt key shows up twice: as an unknown field and as a missing one; name the misspelling
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        err = errors[0]
        loc = _shorthand_loc(_normalise_loc(tuple(err["loc"])), raw)
        more = (
            f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
            if len(errors) > 1
            else ""
        )
        raise ScenarioError(
            _pydantic_message(err, raw) + more,
            source=source,
            line=_line_for(loc, lines),
            field=_format_path(loc),
        ) from None
    except RecursionError:
        raise ScenarioError("the scenario is nested too deeply", source=source) from None
    _check_references(scenario, source, lines)
    scenario._source = source
    scenario._expect_lines = [_line_for(("expect", i), lines) for i in range(len(scenario.expect))]
    return scenario


def _fail(message: str, loc: tuple, source: str, lines: dict[tuple, int | None]) -> typing.NoReturn:
    raise ScenarioError(message, source=source, line=_line_for(loc, lines), field=_format_path(loc))


def _check_topology(cluster: Cluster, source: str, lines: dict[tuple, int | None]) -> None:
    """Shapes each topology can have (FACTS: topology.limits)."""
    topology = cluster.topology
    aurora_engine = cluster.engine.startswith("aurora")
    if cluster.is_aurora != aurora_engine:
        allowed = "aurora-postgresql, aurora-mysql" if cluster.is_aurora else "postgres, mysql"
        _fail(
            f"topology {topology} runs on engine {allowed}, not {cluster.engine}",
            ("cluster", "engine"),
            source,
            lines,
        )
    if topology == "multi-az-cluster":
        if len(cluster.readers) != 2:
            _fail(
                f"multi-az-cluster has exactly 2 readers (its readable standbys), not {len(cluster.readers)}",
                ("cluster", "readers"),
                source,
                lines,
            )
        azs = [cluster.writer.az, cluster.readers[0].az, cluster.readers[1].az]
        if len(set(azs)) != 3:
            _fail(
                f"multi-az-cluster puts the writer and its 2 standbys in 3 different AZs, got {', '.join(azs)}",
                ("cluster", "readers"),
                source,
                lines,
            )
    if cluster.standby_az is not None:
        if topology != "multi-az-instance":
            _fail(
                "standby_az applies to topology multi-az-instance only",
                ("cluster", "standby_az"),
                source,
                lines,
            )
        elif cluster.standby_az == cluster.writer.az:
            _fail(
                f"the standby must be in another AZ than the writer ({cluster.writer.az})",
                ("cluster", "standby_az"),
                source,
                lines,
            )
    _check_global(cluster, source, lines)
    for i, reader in enumerate(cluster.readers):
        if reader.apply_rate is not None and cluster.is_aurora:
            _fail(
                "Aurora readers share the cluster volume and apply no change stream; apply_rate is for RDS "
                "read replicas and Multi-AZ cluster standbys (see cluster.replication.aurora for Aurora lag)",
                ("cluster", "readers", i, "apply_rate"),
                source,
                lines,
            )
        if reader.apply_rate is None and topology in ("single-az", "multi-az-instance"):
            reader.apply_rate = RDS_REPLICA_APPLY_RATE
        elif reader.apply_rate is None and topology == "multi-az-cluster":
            reader.apply_rate = cluster.replication.cluster_apply_rate
    if cluster.writer.apply_rate is not None:
        _fail(
            "the writer applies no changes; apply_rate is for readers",
            ("cluster", "writer", "apply_rate"),
            source,
            lines,
        )


def _check_global(cluster: Cluster, source: str, lines: dict[tuple, int | None]) -> None:
    """aurora-global's secondary cluster, and the fields only it takes (FACTS: global.lag)."""
    if cluster.topology != "aurora-global":
        for key in ("secondary", "region"):
            if getattr(cluster, key) is not None:
                _fail(
                    f"{key} applies to topology aurora-global (an Aurora Global Database) only",
                    ("cluster", key),
                    source,
                    lines,
                )
        return
    secondary = cluster.secondary
    if secondary is None:
        _fail(
            "topology aurora-global needs `secondary`: the secondary Region's cluster, e.g. "
            "{region: eu-west-1, readers: [{class: db.r6g.large, az: a}]}",
            ("cluster", "topology"),
            source,
            lines,
        )
    if secondary.region == cluster.region:
        _fail(
            f"the secondary cluster must be in another Region than the primary ({cluster.region})",
            ("cluster", "secondary", "region"),
            source,
            lines,
        )
    for i, reader in enumerate(secondary.readers):
        loc = ("cluster", "secondary", "readers", i)
        if reader.apply_rate is not None:
            _fail(
                "Aurora readers apply no change stream; the secondary's lag is cluster.secondary.lag",
                (*loc, "apply_rate"),
                source,
                lines,
            )
        if reader.class_ == SERVERLESS_CLASS:
            _fail(
                f"{SERVERLESS_CLASS} (Serverless v2) in an aurora-global cluster is not modelled yet; use a "
                "provisioned class",
                (*loc, "class"),
                source,
                lines,
            )
        if reader.endpoint is not None:
            _fail(
                "custom endpoints are modelled for the primary cluster's readers only",
                (*loc, "endpoint"),
                source,
                lines,
            )
    for key, what in (
        ("serverless", "Aurora Serverless v2"),
        ("proxy", "RDS Proxy"),
    ):
        if getattr(cluster, key) is not None:
            _fail(
                f"{what} in an aurora-global cluster is not modelled yet; remove cluster.{key} or use "
                "topology aurora",
                ("cluster", key),
                source,
                lines,
            )


def _global_events(s: Scenario, source: str, lines: dict[tuple, int | None]) -> None:
    """Region outages and global switchovers/failovers, in time order: which Region is primary when, and
    whether the Region to promote is up (FACTS: global.switchover, global.failover)."""
    cluster = s.cluster
    regions = cluster.regions()
    kinds = (GlobalSwitchover, GlobalFailover, RegionOutage)
    if not regions:
        for i, ev in enumerate(s.events):
            if isinstance(ev, kinds):
                _fail(
                    f"{ev.action} applies to topology aurora-global (an Aurora Global Database) only",
                    ("events", i, "action"),
                    source,
                    lines,
                )
        return
    assert cluster.secondary is not None  # validated with the topology
    members = {
        regions[0]: [cluster.writer.name, *(r.name for r in cluster.readers)],
        regions[1]: [r.name for r in cluster.secondary.readers],
    }
    outages: dict[str, list[tuple[float, float]]] = {r: [] for r in regions}
    for i, ev in enumerate(s.events):
        if not isinstance(ev, RegionOutage):
            continue
        if ev.region not in regions:
            _fail(
                f"no Region named {ev.region!r}; the cluster's Regions: {', '.join(regions)}",
                ("events", i, "region"),
                source,
                lines,
            )
        window = (ev.at, ev.at + (ev.for_ if ev.for_ is not None else math.inf))
        if any(a < window[1] and window[0] < b for a, b in outages[ev.region]):
            _fail(
                f"this outage of {ev.region} overlaps another one of the same Region",
                ("events", i, "at"),
                source,
                lines,
            )
        outages[ev.region].append(window)

    def down(region: str, t: float) -> bool:
        return any(a <= t < b for a, b in outages[region])

    primary = regions[0]
    ops = sorted(
        (ev.at, i, ev) for i, ev in enumerate(s.events) if isinstance(ev, GlobalSwitchover | GlobalFailover)
    )
    for at, i, ev in ops:
        target = regions[1] if primary == regions[0] else regions[0]
        if down(target, at):
            _fail(
                f"at {at:g} s the Region to promote ({target}) is out (region_outage): nothing to promote",
                ("events", i, "at"),
                source,
                lines,
            )
        if isinstance(ev, GlobalSwitchover) and down(primary, at):
            _fail(
                f"a switchover needs both Regions up, and {primary} is out at {at:g} s; use global_failover "
                "(detach and promote)",
                ("events", i, "action"),
                source,
                lines,
            )
        if ev.to is not None and ev.to not in members[target]:
            _fail(
                f"no instance named {ev.to!r} in {target}, the Region this event promotes; its instances: "
                f"{', '.join(n for n in members[target] if n)}",
                ("events", i, "to"),
                source,
                lines,
            )
        primary = target


def _check_serverless(cluster: Cluster, source: str, lines: dict[tuple, int | None]) -> None:
    """db.serverless instances, the capacity range and the PostgreSQL-only timeout."""
    specs = [(("cluster", "writer"), cluster.writer)] + [
        (("cluster", "readers", i), r) for i, r in enumerate(cluster.readers)
    ]
    serverless = [(loc, spec) for loc, spec in specs if spec.class_ == SERVERLESS_CLASS]
    for loc, spec in serverless:
        if not cluster.engine.startswith("aurora"):
            _fail(
                f"{SERVERLESS_CLASS} is Aurora Serverless v2: it needs engine aurora-postgresql or aurora-mysql "
                f"(topology aurora), not {cluster.engine}",
                (*loc, "class"),
                source,
                lines,
            )
        for override in ("vcpu", "memory_gib"):
            if getattr(spec, override) is not None:
                _fail(
                    f"a {SERVERLESS_CLASS} instance's CPU and memory follow its capacity in ACU; set "
                    "cluster.serverless instead",
                    (*loc, override),
                    source,
                    lines,
                )
        if cluster.serverless is None:
            _fail(
                f"{SERVERLESS_CLASS} needs the cluster's capacity range: cluster.serverless {{min_acu, max_acu}} "
                "(FACTS: acu.range)",
                (*loc, "class"),
                source,
                lines,
            )
    if cluster.serverless is not None and not serverless:
        _fail(
            f"cluster.serverless applies to {SERVERLESS_CLASS} instances, and this cluster has none; set the "
            f"writer's or a reader's class to {SERVERLESS_CLASS}",
            ("cluster", "serverless"),
            source,
            lines,
        )
    if cluster.serverless is not None and cluster.serverless.min_acu == 0 and cluster.proxy is not None:
        _fail(
            "auto-pause (min_acu 0) does not work behind RDS Proxy, which keeps connections open; use "
            "min_acu 0.5 or more, or remove cluster.proxy",
            ("cluster", "serverless", "min_acu"),
            source,
            lines,
        )
    timeout = cluster.parameters.idle_in_transaction_session_timeout
    if timeout > 0 and not cluster.engine.endswith("postgresql") and cluster.engine != "postgres":
        _fail(
            f"idle_in_transaction_session_timeout is a PostgreSQL parameter; {cluster.engine} has none",
            ("cluster", "parameters", "idle_in_transaction_session_timeout"),
            source,
            lines,
        )


def _check_lock_parameters(cluster: Cluster, source: str, lines: dict[tuple, int | None]) -> None:
    params = cluster.parameters
    mysql = "mysql" in cluster.engine
    if mysql and params.lock_timeout > 0:
        _fail(
            f"lock_timeout is a PostgreSQL parameter; {cluster.engine} bounds row-lock waits with "
            "innodb_lock_wait_timeout (seconds)",
            ("cluster", "parameters", "lock_timeout"),
            source,
            lines,
        )
    if not mysql and params.innodb_lock_wait_timeout is not None:
        _fail(
            f"innodb_lock_wait_timeout is a MySQL parameter; {cluster.engine} bounds row-lock waits with "
            "lock_timeout (ms)",
            ("cluster", "parameters", "innodb_lock_wait_timeout"),
            source,
            lines,
        )


def _check_references(s: Scenario, source: str, lines: dict[tuple, int | None]) -> None:
    """Cross-field rules pydantic cannot see field by field."""
    if s.warmup != "auto" and s.warmup >= s.duration:
        _fail(
            f"warmup ({s.warmup:g} s) must be shorter than duration ({s.duration:g} s)",
            ("warmup",),
            source,
            lines,
        )
    if s.duration / s.timeseries_interval > 1_000_000:
        _fail(
            "more than 1,000,000 timeseries rows; use a longer interval",
            ("timeseries_interval",),
            source,
            lines,
        )
    rows = s.duration / s.timeseries_interval
    if abs(rows - round(rows)) > 1e-6 * max(1.0, rows):
        _fail(
            f"duration ({s.duration:g} s) must be a whole number of intervals ({s.timeseries_interval:g} s), "
            "so that every timeseries row covers a full interval",
            ("timeseries_interval",),
            source,
            lines,
        )
    cluster = s.cluster
    _check_topology(cluster, source, lines)
    _check_serverless(cluster, source, lines)
    _check_lock_parameters(cluster, source, lines)
    secondary_readers = cluster.secondary.readers if cluster.secondary is not None else []
    if cluster.engine.startswith("aurora"):
        for loc, spec in (
            [(("cluster", "writer"), cluster.writer)]
            + [(("cluster", "readers", i), r) for i, r in enumerate(cluster.readers)]
            + [(("cluster", "secondary", "readers", i), r) for i, r in enumerate(secondary_readers)]
        ):
            if spec.class_ not in AURORA_CLASSES and spec.class_ != SERVERLESS_CLASS:
                families = "db.r5, db.r6g, db.r7g (large-16xlarge), db.t4g.medium, db.t4g.large"
                _fail(
                    f"{spec.class_} is not offered for Aurora; Aurora classes: {families}",
                    (*loc, "class"),
                    source,
                    lines,
                )
    names = [cluster.writer.name] + [r.name for r in cluster.readers] + [r.name for r in secondary_readers]
    for i, name in enumerate(names):
        if names.index(name) != i:
            loc = (
                ("cluster", "readers", i - 1, "name")
                if i <= len(cluster.readers)
                else ("cluster", "secondary", "readers", i - 1 - len(cluster.readers), "name")
            )
            _fail(f"instance name {name!r} is used twice", loc, source, lines)
    custom = {r.endpoint for r in cluster.readers if r.endpoint}
    routes = {"writer"} | {f"custom:{c}" for c in custom}
    # Aurora's reader endpoint falls back to the writer; RDS topologies have readers only with replicas
    if cluster.is_aurora or cluster.readers:
        routes.add("reader")
    regions = cluster.regions()
    if regions:
        routes.add(f"reader:{regions[1]}")  # the secondary cluster's reader endpoint
    if cluster.proxy is not None:
        routes.add("proxy")
        if cluster.readers:
            routes.add("proxy:reader")
        if "proxy" in names:
            i = names.index("proxy")
            loc = ("cluster", "writer", "name") if i == 0 else ("cluster", "readers", i - 1, "name")
            _fail(
                "`proxy` names the RDS Proxy's metrics; call the instance something else", loc, source, lines
            )
    allowed_routes = ", ".join(sorted(routes))
    no_reader = "no readers, so no reader route; add readers (read replicas) or route to the writer"
    no_proxy = "there is no proxy; add cluster.proxy to route through RDS Proxy"
    service_names: list[str] = []
    for i, svc in enumerate(s.services):
        if svc.name in service_names:
            _fail(f"service name {svc.name!r} is used twice", ("services", i, "name"), source, lines)
        service_names.append(svc.name)
        if svc.region is not None and svc.region not in regions:
            _fail(
                f"no Region named {svc.region!r}; the cluster's Regions: {', '.join(regions)}"
                if regions
                else "region applies to services of an aurora-global cluster",
                ("services", i, "region"),
                source,
                lines,
            )
        if svc.connect_via not in routes:
            hint = f"{cluster.topology} has {no_reader}" if svc.connect_via == "reader" else ""
            hint = no_proxy if svc.connect_via.startswith("proxy") and cluster.proxy is None else hint
            _fail(
                hint or f"unknown endpoint {svc.connect_via!r}; allowed: {allowed_routes}",
                ("services", i, "connect_via"),
                source,
                lines,
            )
        names_in_service = [q.query for q in svc.workload]
        for j, q in enumerate(svc.workload):
            route = q.route or svc.connect_via
            if route not in routes:
                hint = f"{cluster.topology} has {no_reader}" if route == "reader" else ""
                hint = no_proxy if route.startswith("proxy") and cluster.proxy is None else hint
                _fail(
                    hint or f"unknown route {route!r}; allowed: {allowed_routes}",
                    ("services", i, "workload", j, "route"),
                    source,
                    lines,
                )
            if q.kind == "write" and route not in ("writer", "proxy"):
                _fail(
                    "writes must route to the writer or the proxy's read/write endpoint (readers are read-only)",
                    ("services", i, "workload", j, "route"),
                    source,
                    lines,
                )
            q.route = route
            locks = q.transaction.locks if q.transaction is not None else 0
            if locks and q.kind != "write":
                _fail(
                    "row locks are taken by writes; make the query kind: write, or set locks: 0",
                    ("services", i, "workload", j, "transaction", "locks"),
                    source,
                    lines,
                )
            if locks > q.keys.count:
                _fail(
                    f"locks ({locks}) is more than the query's distinct keys (keys.count {q.keys.count})",
                    ("services", i, "workload", j, "transaction", "locks"),
                    source,
                    lines,
                )
            if q.follows is not None:
                loc = ("services", i, "workload", j, "follows")
                leader = q.follows.query
                if leader == q.query or leader not in names_in_service:
                    others = [n for n in names_in_service if n != q.query]
                    close = difflib.get_close_matches(leader, others, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    _fail(
                        f"follows {leader!r}, which is not another query of service {svc.name!r}; "
                        f"{hint}queries: {', '.join(others) or 'none'}",
                        loc,
                        source,
                        lines,
                    )
                if svc.workload[names_in_service.index(leader)].follows is not None:
                    _fail(
                        f"{leader!r} itself follows another query; follow the query that starts the flow",
                        loc,
                        source,
                        lines,
                    )
    lambdas = [(i, svc) for i, svc in enumerate(s.services) if svc.kind == "lambda"]
    reserved = sum(svc.reserved_concurrency or 0 for _, svc in lambdas)
    if reserved > s.account.lambda_concurrency - 100:
        i = next(i for i, svc in lambdas if svc.reserved_concurrency)
        _fail(
            f"reserved concurrency adds up to {reserved}, but at least 100 of the account's "
            f"{s.account.lambda_concurrency} must stay unreserved (FACTS: lambda.account)",
            ("services", i, "reserved_concurrency"),
            source,
            lines,
        )
    cluster_azs = {cluster.writer.az, *(r.az for r in cluster.readers)}
    if cluster.standby_az:
        cluster_azs.add(cluster.standby_az)
    if cluster.is_aurora:
        cluster_azs.update(cluster.storage.azs)
    _global_events(s, source, lines)
    for i, ev in enumerate(s.events):
        if ev.at >= s.duration:
            _fail(
                f"at {ev.at:g} s is not before the end of the run ({s.duration:g} s)",
                ("events", i, "at"),
                source,
                lines,
            )
        if isinstance(ev, AzOutage) and ev.az not in cluster_azs:
            _fail(
                f"AZ {ev.az!r} holds nothing of this cluster; its AZs: {', '.join(sorted(cluster_azs))}",
                ("events", i, "az"),
                source,
                lines,
            )
        if isinstance(ev, StorageNodeFailure):
            if not cluster.is_aurora:
                _fail(
                    "storage_node_failure applies to Aurora's 6-copy volume; "
                    f"{cluster.topology} storage is EBS, lost only with its AZ (use az_outage)",
                    ("events", i, "action"),
                    source,
                    lines,
                )
            if ev.az is not None and ev.az not in cluster.storage.azs:
                _fail(
                    f"the volume has no copies in AZ {ev.az!r}; its AZs: {', '.join(cluster.storage.azs)}",
                    ("events", i, "az"),
                    source,
                    lines,
                )
        instance_names = [cluster.writer.name, *(r.name for r in cluster.readers)]
        instance_names += [r.name for r in secondary_readers]
        if isinstance(ev, InstanceFailure | Reboot) and ev.target not in instance_names:
            close = difflib.get_close_matches(ev.target, [n for n in instance_names if n], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            _fail(
                f"no instance named {ev.target!r}; {hint}instances: {', '.join(n for n in instance_names if n)}",
                ("events", i, "target"),
                source,
                lines,
            )
        if isinstance(ev, FailoverEvent):
            if cluster.topology == "single-az":
                _fail(
                    "single-az has no standby to fail over to; use reboot or instance_failure (recovered in "
                    "place), or topology multi-az-instance, multi-az-cluster or aurora",
                    ("events", i, "action"),
                    source,
                    lines,
                )
            if cluster.is_aurora and not cluster.readers:
                _fail(
                    "an Aurora cluster without readers has nothing to fail over to; add a reader, or use "
                    "instance_failure (the writer is recreated)",
                    ("events", i, "action"),
                    source,
                    lines,
                )
            if ev.to is not None:
                readers = [r.name for r in cluster.readers]
                if cluster.topology == "multi-az-instance":
                    _fail(
                        "multi-az-instance fails over to its standby; `to` names a reader of aurora or "
                        "multi-az-cluster",
                        ("events", i, "to"),
                        source,
                        lines,
                    )
                if ev.to not in readers:
                    _fail(
                        f"no reader named {ev.to!r}; readers: {', '.join(n for n in readers if n)}",
                        ("events", i, "to"),
                        source,
                        lines,
                    )
        if isinstance(ev, BatchUpdate) and ev.service is None:
            ecs = [svc.name for svc in s.services if svc.kind == "ecs"]
            if not ecs:
                _fail(
                    "batch_update takes its connection from an ecs service's pool; this scenario has none",
                    ("events", i, "action"),
                    source,
                    lines,
                )
            ev.service = ecs[0]
        target = getattr(ev, "service", None)
        if target is not None and target not in service_names:
            close = difflib.get_close_matches(target, service_names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            _fail(
                f"no service named {target!r}; {hint}services: {', '.join(service_names) or 'none'}",
                ("events", i, "service"),
                source,
                lines,
            )
        if (
            target is not None
            and isinstance(ev, Deploy | ScaleService)
            and s.services[service_names.index(target)].kind == "lambda"
        ):
            _fail(
                f"{target!r} is a lambda service: Lambda scales its environments itself; {ev.action} "
                "applies to ecs services",
                ("events", i, "service"),
                source,
                lines,
            )
        if (
            target is not None
            and isinstance(ev, IdleInTransaction | LongTransaction | BatchUpdate)
            and s.services[service_names.index(target)].kind == "lambda"
        ):
            _fail(
                f"{target!r} is a lambda service; {ev.action} takes connections from an ecs service's pools",
                ("events", i, "service"),
                source,
                lines,
            )
        if isinstance(ev, Deploy) and ev.wave_interval is None:
            ev.wave_interval = ev.overlap
    _check_backup(s, source, lines)


def _check_backup(s: Scenario, source: str, lines: dict[tuple, int | None]) -> None:
    """Snapshot names, and a restore's source, target and what the model supports (FACTS: backup.retention, backup.latest_restorable)."""
    cluster = s.cluster
    backup = cluster.backup
    if cluster.topology == "aurora" and backup.retention_days == 0:
        _fail(
            "Aurora keeps automated backups for 1-35 days; 0 (no automated backups) exists only on RDS "
            "(FACTS: backup.retention)",
            ("cluster", "backup", "retention_days"),
            source,
            lines,
        )
    snapshots: dict[str, float] = {}
    for i, ev in enumerate(s.events):
        if isinstance(ev, SnapshotEvent):
            if ev.name is None:
                ev.name = f"snapshot-{len(snapshots) + 1}"
            if ev.name == "automated" or ev.name in snapshots:
                why = "names the automated snapshots" if ev.name == "automated" else "is used twice"
                _fail(f"snapshot name {ev.name!r} {why}", ("events", i, "name"), source, lines)
            snapshots[ev.name] = ev.at
    restores = [(i, ev) for i, ev in enumerate(s.events) if isinstance(ev, RestoreEvent)]
    for count, (i, ev) in enumerate(restores):
        loc = ("events", i)
        if count:
            _fail(
                f"one restore per run (the first is events[{restores[0][0]}]); run another scenario for the next",
                (*loc, "action"),
                source,
                lines,
            )
        if cluster.proxy is not None:
            _fail(
                "restore with RDS Proxy is not modelled yet: the proxy's target would have to be re-registered to "
                "the restored cluster; remove cluster.proxy",
                (*loc, "action"),
                source,
                lines,
            )
        if cluster.topology == "aurora-global":
            _fail(
                "restore of an aurora-global database is not modelled yet (a restore creates a single-Region "
                "cluster); use topology aurora",
                (*loc, "action"),
                source,
                lines,
            )
        if cluster.writer.class_ == SERVERLESS_CLASS:
            _fail(
                f"restore of a {SERVERLESS_CLASS} writer is not modelled yet; use a provisioned class",
                (*loc, "action"),
                source,
                lines,
            )
        restored = f"{cluster.writer.name}-restored"
        if any(r.name == restored for r in cluster.readers):
            _fail(
                f"{restored!r} names the restored instance; call the reader something else",
                (*loc, "action"),
                source,
                lines,
            )
        if len(set(ev.faults)) != len(ev.faults):
            _fail("a fault is listed twice", (*loc, "faults"), source, lines)
        if ev.from_ == "pitr":
            _check_pitr(ev, backup, loc, source, lines)
        else:
            _check_snapshot_source(ev, backup, snapshots, loc, source, lines)


def _check_pitr(ev: RestoreEvent, backup: Backup, loc: tuple, source: str, lines: dict) -> None:
    if ev.snapshot is not None:
        _fail(
            "snapshot applies to `from: snapshot`; pitr restores to restore_time",
            (*loc, "snapshot"),
            source,
            lines,
        )
    if backup.retention_days == 0:
        _fail(
            "point-in-time restore needs automated backups, and cluster.backup.retention_days is 0; set 1-35 or "
            "restore `from: snapshot`",
            (*loc, "from"),
            source,
            lines,
        )
    if ev.restore_time is None:
        return
    latest = backup.latest_restorable(ev.at)
    if ev.restore_time > latest:
        _fail(
            f"restore_time {ev.restore_time:g} s is after the latest restorable time when the restore starts "
            f"({latest:g} s: logs reach S3 every {backup.log_upload_interval:g} s, FACTS: backup.latest_restorable)",
            (*loc, "restore_time"),
            source,
            lines,
        )
    if ev.at - ev.restore_time > backup.retention_days * 86400.0:
        _fail(
            f"restore_time {ev.restore_time:g} s is older than the {backup.retention_days}-day retention period",
            (*loc, "restore_time"),
            source,
            lines,
        )


def _check_snapshot_source(
    ev: RestoreEvent, backup: Backup, snapshots: dict[str, float], loc: tuple, source: str, lines: dict
) -> None:
    if ev.restore_time is not None:
        _fail(
            "restore_time applies to `from: pitr`; a snapshot restores to the time it was taken",
            (*loc, "restore_time"),
            source,
            lines,
        )
    before = {name: at for name, at in snapshots.items() if at < ev.at}
    if ev.snapshot is not None and ev.snapshot != "automated" and ev.snapshot not in before:
        close = difflib.get_close_matches(ev.snapshot, list(before), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        listed = ", ".join([*before, "automated"] if backup.retention_days else list(before)) or "none"
        later = " (it is taken after the restore starts)" if ev.snapshot in snapshots else ""
        _fail(
            f"no snapshot {ev.snapshot!r} before the restore{later}; {hint}snapshots: {listed}",
            (*loc, "snapshot"),
            source,
            lines,
        )
    wants_automated = ev.snapshot == "automated" or (ev.snapshot is None and not before)
    if wants_automated and backup.retention_days == 0:
        _fail(
            "no automated snapshots (cluster.backup.retention_days is 0) and no snapshot event before the "
            "restore; add `{at, action: snapshot}` or set retention_days",
            (*loc, "snapshot"),
            source,
            lines,
        )
    if ev.snapshot is None:  # the latest manual snapshot, else the latest automated one
        ev.snapshot = max(before, key=lambda name: before[name]) if before else "automated"


# ------------------------------------------------------------------------------------------- overrides


def apply_override(raw: dict, assignment: str, *, source: str = "<scenario>") -> tuple:
    """Apply ``a.b.c=value`` (value parsed as YAML) to raw scenario data; list items by index or by name.

    Returns the path that was set, with list items as indexes (``('services', 0, 'tasks')``).
    """
    if "=" not in assignment:
        raise ScenarioError(
            f"--set {assignment!r}: expected path=value, e.g. services.api.pool.max_size=10", source=source
        )
    path, _, text = assignment.partition("=")
    parts = [p for p in path.strip().split(".") if p]
    if not parts:
        raise ScenarioError(f"--set {assignment!r}: empty path before '='", source=source)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
        value = text  # not YAML (or a scalar PyYAML cannot build): take it as the text it is
    node: Any = raw
    loc: list[Any] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(node, part)
            if index is None:
                where = ".".join(parts[:depth]) or "scenario"
                names = [
                    str(item.get("name") or item.get("query")) for item in node if isinstance(item, dict)
                ]
                choices = (
                    f"use an index 0-{len(node) - 1} or a name: {', '.join(names) or '(none)'}"
                    if node
                    else "the list is empty"
                )
                raise ScenarioError(f"--set {path}: no item {part!r} in {where} ({choices})", source=source)
            loc.append(index)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            loc.append(part)
            if last:
                node[part] = value
            else:
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
        else:
            where = ".".join(parts[:depth])
            raise ScenarioError(
                f"--set {path}: {where} is {_short_repr(node)}, not a mapping or list, so it has no {part!r}",
                source=source,
            )
    return tuple(loc)


def _list_index(items: list, part: str) -> int | None:
    if re.fullmatch(r"-?[0-9]+", part):
        index = int(part)
        return index % len(items) if -len(items) <= index < len(items) else None
    for i, item in enumerate(items):
        if isinstance(item, dict) and part in (item.get("name"), item.get("query")):
            return i
    # readers without a name are called reader-1, reader-2, ... (secondary-1, ... in a global database's
    # secondary cluster), as in the results
    for i, item in enumerate(items):
        if (
            isinstance(item, dict)
            and "name" not in item
            and "query" not in item
            and part in (f"reader-{i + 1}", f"secondary-{i + 1}")
        ):
            return i
    return None


def read_raw(path: str | Path) -> tuple[Any, dict[tuple, int | None], str]:
    """Read a scenario file into raw data and its line map."""
    source = one_line(str(path))
    try:
        return _read_raw(Path(path), source)
    except ScenarioError as exc:
        raise _one_line(exc) from None


def _read_raw(path: Path, source: str) -> tuple[Any, dict[tuple, int | None], str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError("no such file", source=source) from None
    except IsADirectoryError:
        raise ScenarioError("is a directory, not a scenario file", source=source) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror or exc}", source=source) from None
    except ValueError as exc:  # e.g. an embedded NUL in the path
        raise ScenarioError(f"not a usable path: {exc}", source=source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
            source=source,
            line=data.count(b"\n", 0, exc.start) + 1,
        ) from None
    parsed, lines = _compose(text, source)
    return parsed, lines, source


def load(
    path: str | Path,
    *,
    overrides: list[str] | dict[str, Any] | None = None,
    seed: int | None = None,
    duration: float | str | None = None,
) -> Scenario:
    """Load, override and validate a scenario file. Raises only :class:`ScenarioError`."""
    raw, lines, source = read_raw(path)
    return from_raw(raw, source=source, lines=lines, overrides=overrides, seed=seed, duration=duration)


def from_raw(
    raw: Any,
    *,
    source: str = "<scenario>",
    lines: dict[tuple, int | None] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    seed: int | None = None,
    duration: float | str | None = None,
) -> Scenario:
    """Override and validate raw scenario data. Raises only :class:`ScenarioError`."""
    try:
        lines = dict(lines or {})
        if isinstance(raw, dict):
            # a value from the command line has no line in the file: errors about it name only the field
            set_locs = [
                apply_override(raw, assignment, source=source) for assignment in _assignments(overrides)
            ]
            if seed is not None:
                raw["seed"] = seed
                set_locs.append(("seed",))
            if duration is not None:
                raw["duration"] = duration
                set_locs.append(("duration",))
                _drop_events_after(raw, duration)
            for loc in set_locs:
                lines = {k: v for k, v in lines.items() if k[: len(loc)] != loc}
                lines[loc] = None
        return validate(raw, source=source, lines=lines)
    except ScenarioError as exc:
        raise _one_line(exc) from None


def _drop_events_after(raw: dict, duration: float | str) -> None:
    """A shorter --duration runs the scenario's beginning: events at or after the new end are left out."""
    try:
        end = parse_duration(duration)
    except (ValueError, OverflowError):
        return  # validation reports the bad duration
    events = raw.get("events")
    if not isinstance(events, list):
        return

    def before_end(event: Any) -> bool:
        try:
            return parse_duration(event.get("at")) < end
        except (ValueError, OverflowError, AttributeError):
            return True  # keep it: validation reports what is wrong with it

    raw["events"] = [e for e in events if not isinstance(e, dict) or before_end(e)]


def _one_line(exc: ScenarioError) -> ScenarioError:
    """The error itself, or a copy with line breaks and control characters escaped."""
    if str(exc).isprintable():
        return exc
    return ScenarioError(
        one_line(exc.detail), source=one_line(exc.source), line=exc.line, field=one_line(exc.field)
    )


def _assignments(overrides: list[str] | dict[str, Any] | None) -> list[str]:
    if not overrides:
        return []
    if isinstance(overrides, dict):
        return [
            f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in overrides.items()
        ]
    return list(overrides)


def resolved(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in (durations in seconds): enough to replay the run."""
    out = scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    # each service keeps only the fields of its kind, so the file loads again
    for svc in out.get("services", []):
        if svc["kind"] == "lambda":
            for key in ECS_ONLY:
                svc.pop(key, None)
            svc["pool"] = {k: v for k, v in svc["pool"].items() if k in LAMBDA_POOL}
        else:
            for key in LAMBDA_ONLY:
                svc.pop(key, None)
    return out


def json_schema() -> dict[str, Any]:
    return Scenario.model_json_schema(by_alias=True)
