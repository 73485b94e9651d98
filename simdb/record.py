"""Columnar recorder: every finished request appends one value to each column, nothing else is kept.

Columns are ``array.array`` buffers (compact C storage, fast appends); :meth:`Recorder.requests` turns them
into numpy arrays without copying row objects. A request costs 49 bytes of storage.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np

# Outcome codes. The index is what the recorder stores; names are the summary's `requests.errors` keys.
CODES: tuple[str, ...] = (
    "ok",
    "too_many_connections",
    "acquire_timeout",
    "borrow_timeout",
    "connection_refused",
    "connect_timeout",
    "connection_lost",
    "read_only",
    "throttled",
    "quorum_unavailable",
    "lock_timeout",
    "service_unavailable",  # no task of the service is serving (scaled to zero)
    "circuit_open",  # the client's circuit breaker is open: failed without trying
)
CODE = {name: i for i, name in enumerate(CODES)}
OK = 0
ERROR_CODES = CODES[1:]

# Connection-log kinds.
CONN_OPENED = 0
CONN_REJECTED = 1
CONN_CLOSED = 2
CONN_REFUSED = 3  # the address answered but no database listens (instance down): refused at once
CONN_TIMED_OUT = 4  # the address is unreachable: the attempt waited for the client's connect timeout
CONN_KINDS = ("opened", "rejected", "closed", "refused", "timed_out")

REQUEST_COLUMNS: dict[str, str] = {
    # name: array typecode (d = float64, i = int32, h = int16, b = int8)
    "t_arrive": "d",
    "t_acquired": "d",
    "t_start": "d",
    "t_end": "d",
    "key": "i",
    "session": "i",
    "task": "i",
    "query": "h",
    "instance": "h",
    "code": "b",
}
BYTES_PER_REQUEST = sum(array(t).itemsize for t in REQUEST_COLUMNS.values())


@dataclass
class Recorder:
    """Append-only columns for requests, connection lifecycle, pool demand and timed events."""

    # requests
    t_arrive: array = field(default_factory=lambda: array("d"))
    t_acquired: array = field(default_factory=lambda: array("d"))
    t_start: array = field(default_factory=lambda: array("d"))
    t_end: array = field(default_factory=lambda: array("d"))
    key: array = field(default_factory=lambda: array("i"))
    session: array = field(default_factory=lambda: array("i"))
    task: array = field(default_factory=lambda: array("i"))
    query: array = field(default_factory=lambda: array("h"))
    instance: array = field(default_factory=lambda: array("h"))
    code: array = field(default_factory=lambda: array("b"))
    # connection log: one row per open attempt outcome and per close
    conn_t: array = field(default_factory=lambda: array("d"))
    conn_instance: array = field(default_factory=lambda: array("h"))
    conn_service: array = field(default_factory=lambda: array("h"))
    conn_kind: array = field(default_factory=lambda: array("b"))
    conn_id: array = field(default_factory=lambda: array("i"))  # -1 for a rejected attempt
    # pool demand log: connections the live pools may hold (sum of max_size), per endpoint, as it changes
    demand_t: array = field(default_factory=lambda: array("d"))
    demand_endpoint: array = field(default_factory=lambda: array("h"))
    demand_delta: array = field(default_factory=lambda: array("i"))
    # timed events (few): kept as tuples
    events: list[tuple[float, str, str, str]] = field(default_factory=list)

    def request(
        self,
        t_arrive: float,
        t_acquired: float,
        t_start: float,
        t_end: float,
        key: int,
        session: int,
        task: int,
        query: int,
        instance: int,
        code: int,
    ) -> None:
        self.t_arrive.append(t_arrive)
        self.t_acquired.append(t_acquired)
        self.t_start.append(t_start)
        self.t_end.append(t_end)
        self.key.append(key)
        self.session.append(session)
        self.task.append(task)
        self.query.append(query)
        self.instance.append(instance)
        self.code.append(code)

    def connection(self, t: float, instance: int, service: int, kind: int, conn_id: int = -1) -> None:
        self.conn_id.append(conn_id)
        self.conn_t.append(t)
        self.conn_instance.append(instance)
        self.conn_service.append(service)
        self.conn_kind.append(kind)

    def demand(self, t: float, endpoint: int, delta: int) -> None:
        self.demand_t.append(t)
        self.demand_endpoint.append(endpoint)
        self.demand_delta.append(delta)

    def event(self, t: float, kind: str, target: str, detail: str = "") -> None:
        self.events.append((float(t), kind, target, detail))

    def __len__(self) -> int:
        return len(self.code)

    def requests(self) -> dict[str, np.ndarray]:
        """The request columns as numpy arrays (zero-copy views of the buffers)."""
        return {
            name: np.frombuffer(getattr(self, name), dtype=_dtype(t)) for name, t in REQUEST_COLUMNS.items()
        }

    def connections(self) -> dict[str, np.ndarray]:
        return {
            "t": np.frombuffer(self.conn_t, dtype=np.float64),
            "instance": np.frombuffer(self.conn_instance, dtype=np.int16),
            "service": np.frombuffer(self.conn_service, dtype=np.int16),
            "kind": np.frombuffer(self.conn_kind, dtype=np.int8),
            "id": np.frombuffer(self.conn_id, dtype=np.int32),
        }

    def demands(self) -> dict[str, np.ndarray]:
        return {
            "t": np.frombuffer(self.demand_t, dtype=np.float64),
            "endpoint": np.frombuffer(self.demand_endpoint, dtype=np.int16),
            "delta": np.frombuffer(self.demand_delta, dtype=np.int32),
        }


def _dtype(typecode: str) -> type:
    return {"d": np.float64, "i": np.int32, "h": np.int16, "b": np.int8}[typecode]
