"""The scenario file: pydantic models of the contract in the README, loading, overrides and errors.

Every field has a default with its source (docs/facts.md key, or "assumed" with the reason) in its
description, which ``simdb schema`` publishes. Loading never raises anything but :class:`ScenarioError`.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .catalog import AURORA_CLASSES, ENGINES, INSTANCE_CLASSES
from .errors import ScenarioError
from .units import DURATION_HELP, RATE_HELP, parse_duration, parse_rate

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": ["string", "number"], "description": DURATION_HELP}),
]
Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    WithJsonSchema({"type": ["string", "number"], "description": RATE_HELP}),
]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]

MAX_DURATION_S = 30 * 86400.0
MAX_RATE = 10_000_000.0
MAX_TASKS = 100_000
MAX_POOL = 10_000


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
    vcpu: int | None = Field(None, ge=1, le=1024, description="override the class's vCPU count (what-if)")
    memory_gib: float | None = Field(None, gt=0, le=32768, description="override the class's memory (GiB)")

    @field_validator("class_")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in INSTANCE_CLASSES:
            close = difflib.get_close_matches(value, INSTANCE_CLASSES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            families = sorted({c.rsplit(".", 1)[0] for c in INSTANCE_CLASSES})
            raise ValueError(f"unknown instance class {value!r}; {hint}known families: {', '.join(families)}")
        return value


class Parameters(Strict):
    """DB parameter group overrides; unset parameters follow the engine's formulas."""

    max_connections: int | None = Field(
        None,
        ge=1,
        le=262_143,
        description="default from the engine's formula on the instance's memory "
        "(FACTS: max_connections.postgres, max_connections.mysql)",
    )


class ConnectionCost(Strict):
    """What opening one DB connection costs (TCP, TLS, authentication, backend start)."""

    setup: Duration = Field(0.005, le=60, description="client-side latency; assumed 5 ms (FACTS: conn.setup)")
    setup_cpu: Duration = Field(
        0.002, le=10, description="DB CPU per new connection; assumed 2 ms (FACTS: conn.setup)"
    )


class Cluster(Strict):
    engine: Literal["aurora-postgresql", "aurora-mysql", "postgres", "mysql"] = Field(
        "aurora-postgresql", description="database engine: " + ", ".join(ENGINES)
    )
    topology: Literal["single-az", "aurora"] = Field(
        "aurora",
        description="single-az (one RDS instance) or aurora (writer plus 0-15 readers). Other topologies "
        "are not modelled yet",
    )
    writer: InstanceSpec = Field(default_factory=InstanceSpec)
    readers: list[InstanceSpec] = Field(
        default_factory=list, max_length=15, description="aurora: 0-15 readers"
    )
    parameters: Parameters = Field(default_factory=Parameters)
    connection: ConnectionCost = Field(default_factory=ConnectionCost)

    @model_validator(mode="after")
    def _names(self) -> Cluster:
        if self.writer.name is None:
            self.writer.name = "writer"
        for i, reader in enumerate(self.readers, start=1):
            if reader.name is None:
                reader.name = f"reader-{i}"
        return self


# -------------------------------------------------------------------------------------------- services


class Pool(Strict):
    """A client connection pool with HikariCP semantics (FACTS: hikari.defaults)."""

    max_size: int = Field(10, ge=1, le=MAX_POOL, description="maximumPoolSize; HikariCP default 10")
    min_idle: int | None = Field(
        None, ge=0, le=MAX_POOL, description="minimumIdle; HikariCP default = max_size (a fixed-size pool)"
    )
    connection_timeout: Duration = Field(
        30.0, ge=0.25, le=3600, description="connectionTimeout: longest wait for a connection; default 30 s"
    )
    idle_timeout: Duration = Field(
        600.0,
        le=MAX_DURATION_S,
        description="idleTimeout: idle connections above min_idle close after this; default 10 min; 0 = never",
    )
    max_lifetime: Duration = Field(
        1800.0,
        le=MAX_DURATION_S,
        description="maxLifetime: a connection is retired after this; default 30 min; 0 = never",
    )
    max_lifetime_jitter: float = Field(
        0.025,
        ge=0,
        le=1,
        description="each connection's lifetime is shortened by a uniform random fraction up to this; "
        "HikariCP uses 2.5% (FACTS: hikari.lifetime_variance)",
    )

    @model_validator(mode="after")
    def _min_idle(self) -> Pool:
        if self.min_idle is None:
            self.min_idle = self.max_size
        if self.min_idle > self.max_size:
            raise ValueError(f"min_idle ({self.min_idle}) must not exceed max_size ({self.max_size})")
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


class Query(Strict):
    """A query class: what is sent, how often, where, and what it costs the DB."""

    query: Name = Field(..., description="query class name")
    kind: Literal["read", "write"] = "read"
    route: str | None = Field(
        None, description="writer | reader | custom:<name>; default the service's connect_via"
    )
    rate: Rate | None = Field(None, le=MAX_RATE, description="arrival rate (Poisson unless `arrival: constant`)")
    arrival: Literal["poisson", "constant"] = Field(
        "poisson", description="open-workload arrivals: poisson, or constant (evenly spaced, 1/rate apart)"
    )
    schedule: list[RatePoint] | None = Field(
        None, min_length=1, description="piecewise-constant Poisson rate: [{at, rate}, ...]"
    )
    bursts: list[Burst] = Field(default_factory=list, description="extra rate for a while: [{at, rate, for}]")
    users: int | None = Field(
        None, ge=1, le=1_000_000, description="closed loop: users each with one request out"
    )
    think: Duration = Field(
        1.0, le=86400, description="closed loop: mean think time (exponential); assumed 1 s"
    )
    cpu: Duration = Field(0.001, gt=0, le=3600, description="mean DB CPU per query on one vCPU; assumed 1 ms")
    cpu_distribution: Literal["exponential", "constant"] = Field(
        "exponential", description="distribution of the CPU time (exponential keeps M/M/c theory applicable)"
    )
    keys: Keys = Field(default_factory=Keys)
    transaction: Transaction | None = None

    @model_validator(mode="after")
    def _one_load(self) -> Query:
        given = [k for k in ("rate", "schedule", "users") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"query {self.query!r} needs exactly one of rate, schedule, users (got {', '.join(given) or 'none'})"
            )
        if self.users is not None and self.bursts:
            raise ValueError("bursts apply to open workloads (rate or schedule), not to users")
        return self


class Service(Strict):
    """A client fleet. `ecs`: long-lived tasks, each with its own pool per endpoint it uses."""

    name: Name
    kind: Literal["ecs"] = Field(
        "ecs", description="ecs (tasks with pools); lambda arrives with RDS Proxy support"
    )
    tasks: int = Field(1, ge=0, le=MAX_TASKS)
    pool: Pool = Field(default_factory=Pool)
    connect_via: str = Field("writer", description="default route: writer | reader | custom:<name>")
    sessions: int = Field(1000, ge=1, le=100_000_000, description="user sessions requests are spread over")
    workload: list[Query] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _unique_queries(self) -> Service:
        seen: set[str] = set()
        for q in self.workload:
            if q.query in seen:
                raise ValueError(f"query name {q.query!r} is used twice")
            seen.add(q.query)
        return self


# ---------------------------------------------------------------------------------------------- events


class _Event(Strict):
    at: Duration = Field(..., le=MAX_DURATION_S, description="simulated time the event starts")


class Deploy(_Event):
    """A rolling deployment: each wave starts new tasks, the tasks they replace stop `overlap` later."""

    action: Literal["deploy"]
    service: Name
    waves: int = Field(1, ge=1, le=1000)
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


Event = Annotated[Union[Deploy, ScaleService, WriteSpike], Field(discriminator="action")]  # noqa: UP007
EVENT_ACTIONS = ("deploy", "scale_service", "write_spike")

_EXPECT = re.compile(r"^\s*([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\s*(==|!=|<=|>=|<|>)\s*(\S+)\s*$")


class Scenario(Strict):
    """A complete experiment: cluster, client fleets, timed events and the expected verdict."""

    name: Name
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1, description="run seed; every random stream derives from it")
    duration: Duration = Field(600.0, gt=0, le=MAX_DURATION_S, description="simulated time; default 10 min")
    warmup: Duration = Field(0.0, le=MAX_DURATION_S, description="excluded from summary statistics")
    timeseries_interval: Duration = Field(1.0, ge=0.001, le=86400, description="timeseries.csv row interval")
    cluster: Cluster = Field(default_factory=Cluster)
    services: list[Service] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    expect: list[str] = Field(
        default_factory=list,
        description='checks on summary.json, e.g. "requests.errors.acquire_timeout == 0"',
    )

    @field_validator("expect")
    @classmethod
    def _expect_syntax(cls, checks: list[str]) -> list[str]:
        for check in checks:
            match = _EXPECT.match(check)
            if not match:
                raise ValueError(
                    f"{check!r} is not `<summary.path> <op> <number>` with op one of == != < <= > >="
                )
            try:
                float(match.group(3))
            except ValueError:
                raise ValueError(f"{check!r}: right-hand side {match.group(3)!r} is not a number") from None
        return checks


def parse_expect(check: str) -> tuple[str, str, float]:
    match = _EXPECT.match(check)
    assert match is not None  # validated on load
    return match.group(1), match.group(2), float(match.group(3))


# --------------------------------------------------------------------------------------------- loading


def _compose(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """YAML → (data, {field path: line}) with duplicate keys rejected."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError("the file is empty; a scenario needs at least `name:`", source=source, line=1)
        lines: dict[tuple, int] = {(): node.start_mark.line + 1}

        def walk(n: yaml.Node, path: tuple) -> None:
            if isinstance(n, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, value_node in n.value:
                    key = key_node.value
                    if key in seen:
                        raise ScenarioError(
                            f"key {key!r} appears twice",
                            source=source,
                            line=key_node.start_mark.line + 1,
                            field=_format_path((*path, key)),
                        )
                    seen.add(key)
                    lines[(*path, key)] = key_node.start_mark.line + 1
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
        raise ScenarioError(
            f"not valid YAML: {exc.problem or exc.context}", source=source, line=line
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", source=source) from None
    finally:
        loader.dispose()
    return data, lines


def _format_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
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
    """The pydantic model that owns the last element of ``loc``, following the raw data for unions."""
    model: type[BaseModel] | None = Scenario
    data = raw
    for part in loc[:-1]:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and part < len(data) else None
            continue
        if model is None:
            return None
        field = _field(model, part)
        if field is None:
            return None
        candidates = _unwrap(field.annotation)
        data = data.get(part) if isinstance(data, dict) else None
        model = candidates[0] if len(candidates) == 1 else None
        if len(candidates) > 1:
            probe = data[0] if isinstance(data, list) and data else data
            action = probe.get("action") if isinstance(probe, dict) else None
            model = next((c for c in candidates if _literal(c, "action") == action), None)
    # loc may end inside a list item ([..., 0, 'field']): the model for items was resolved above
    return model


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
        shown = repr(err["input"])
        if len(shown) > 40:
            shown = shown[:37] + "..."
        message += f" (got {shown})"
    return message


def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _normalise_loc(loc: tuple) -> tuple:
    # pydantic inserts the union tag ('deploy') after a list index; it is not part of the file's path
    out: list[Any] = []
    for part in loc:
        if out and isinstance(out[-1], int) and part in EVENT_ACTIONS:
            continue
        out.append(part)
    return tuple(out)


def validate(raw: Any, *, source: str = "<scenario>", lines: dict[tuple, int] | None = None) -> Scenario:
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
        errors = exc.errors()
        err = errors[0]
        loc = _normalise_loc(tuple(err["loc"]))
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
    return scenario


def _fail(message: str, loc: tuple, source: str, lines: dict[tuple, int]) -> typing.NoReturn:
    raise ScenarioError(message, source=source, line=_line_for(loc, lines), field=_format_path(loc))


def _check_references(s: Scenario, source: str, lines: dict[tuple, int]) -> None:
    """Cross-field rules pydantic cannot see field by field."""
    if s.warmup >= s.duration:
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
    cluster = s.cluster
    if cluster.topology == "single-az" and cluster.readers:
        _fail(
            "single-az has no readers in this version (RDS read replicas are not modelled yet); "
            "use topology: aurora for readers",
            ("cluster", "readers"),
            source,
            lines,
        )
    if cluster.engine.startswith("aurora"):
        for loc, spec in [(("cluster", "writer"), cluster.writer)] + [
            (("cluster", "readers", i), r) for i, r in enumerate(cluster.readers)
        ]:
            if spec.class_ not in AURORA_CLASSES:
                families = "db.r5, db.r6g, db.r7g (large-16xlarge), db.t4g.medium, db.t4g.large"
                _fail(
                    f"{spec.class_} is not offered for Aurora; Aurora classes: {families}",
                    (*loc, "class"),
                    source,
                    lines,
                )
    names = [cluster.writer.name] + [r.name for r in cluster.readers]
    for i, name in enumerate(names):
        if names.index(name) != i:
            _fail(
                f"instance name {name!r} is used twice", ("cluster", "readers", i - 1, "name"), source, lines
            )
    custom = {r.endpoint for r in cluster.readers if r.endpoint}
    routes = {"writer", "reader"} | {f"custom:{c}" for c in custom}
    allowed_routes = ", ".join(sorted(routes))
    service_names: list[str] = []
    for i, svc in enumerate(s.services):
        if svc.name in service_names:
            _fail(f"service name {svc.name!r} is used twice", ("services", i, "name"), source, lines)
        service_names.append(svc.name)
        if svc.connect_via not in routes:
            _fail(
                f"unknown endpoint {svc.connect_via!r}; allowed: {allowed_routes}",
                ("services", i, "connect_via"),
                source,
                lines,
            )
        if cluster.topology == "single-az" and svc.connect_via == "reader":
            _fail("single-az has no reader endpoint", ("services", i, "connect_via"), source, lines)
        for j, q in enumerate(svc.workload):
            route = q.route or svc.connect_via
            if route not in routes or (cluster.topology == "single-az" and route != "writer"):
                allowed = "writer" if cluster.topology == "single-az" else allowed_routes
                _fail(
                    f"unknown route {route!r}; allowed: {allowed}",
                    ("services", i, "workload", j, "route"),
                    source,
                    lines,
                )
            if q.kind == "write" and route != "writer":
                _fail(
                    "writes must route to the writer (readers are read-only)",
                    ("services", i, "workload", j, "route"),
                    source,
                    lines,
                )
            q.route = route
    for i, ev in enumerate(s.events):
        if ev.at >= s.duration:
            _fail(
                f"at {ev.at:g} s is not before the end of the run ({s.duration:g} s)",
                ("events", i, "at"),
                source,
                lines,
            )
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
        if isinstance(ev, Deploy) and ev.wave_interval is None:
            ev.wave_interval = ev.overlap


# ------------------------------------------------------------------------------------------- overrides


def apply_override(raw: dict, assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to raw scenario data; list items by index or by name."""
    if "=" not in assignment:
        raise ScenarioError(f"--set {assignment!r}: expected path=value, e.g. services.api.pool.max_size=10")
    path, _, text = assignment.partition("=")
    parts = [p for p in path.strip().split(".") if p]
    if not parts:
        raise ScenarioError(f"--set {assignment!r}: empty path")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    node: Any = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            index = _list_index(node, part)
            if index is None:
                names = [
                    str(item.get("name") or item.get("query")) for item in node if isinstance(item, dict)
                ]
                raise ScenarioError(
                    f"--set {path}: no item {part!r} in {'.'.join(parts[:depth]) or 'scenario'} "
                    f"(use an index 0-{len(node) - 1} or a name: {', '.join(names)})"
                )
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ScenarioError(f"--set {path}: {where} is not a mapping or list")


def _list_index(items: list, part: str) -> int | None:
    if part.lstrip("-").isdigit():
        index = int(part)
        return index if -len(items) <= index < len(items) else None
    for i, item in enumerate(items):
        if isinstance(item, dict) and part in (item.get("name"), item.get("query")):
            return i
    return None


def read_raw(path: str | Path) -> tuple[Any, dict[tuple, int], str]:
    """Read a scenario file into raw data and its line map."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("no such file", source=source) from None
    except IsADirectoryError:
        raise ScenarioError("is a directory, not a scenario file", source=source) from None
    except UnicodeDecodeError:
        raise ScenarioError("not UTF-8 text", source=source) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror}", source=source) from None
    data, lines = _compose(text, source)
    return data, lines, source


def load(
    path: str | Path,
    *,
    overrides: list[str] | dict[str, Any] | None = None,
    seed: int | None = None,
    duration: float | str | None = None,
) -> Scenario:
    """Load, override and validate a scenario file."""
    raw, lines, source = read_raw(path)
    return from_raw(raw, source=source, lines=lines, overrides=overrides, seed=seed, duration=duration)


def from_raw(
    raw: Any,
    *,
    source: str = "<scenario>",
    lines: dict[tuple, int] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    seed: int | None = None,
    duration: float | str | None = None,
) -> Scenario:
    if isinstance(raw, dict):
        for assignment in _assignments(overrides):
            apply_override(raw, assignment)
        if seed is not None:
            raw["seed"] = seed
        if duration is not None:
            raw["duration"] = duration
    return validate(raw, source=source, lines=lines)


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
    return scenario.model_dump(mode="json", by_alias=True, exclude_none=True)


def json_schema() -> dict[str, Any]:
    return Scenario.model_json_schema(by_alias=True)
