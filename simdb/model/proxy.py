"""RDS Proxy: client connections, a borrow queue per endpoint, multiplexing and pinning (FACTS: proxy.max_conn_pct, proxy.borrow_timeout, proxy.pinning).

Clients (pools, Lambda environments) open cheap *client connections* to a proxy endpoint: ``proxy``
(read/write, to the writer) or ``proxy:reader`` (read-only, spread over the readers). For each
transaction the proxy *borrows* a DB connection from its own pool for the target instance:

- an idle DB connection if there is one; otherwise the borrower waits in the endpoint's FIFO queue and
  the proxy opens a new DB connection (setup time and DB CPU, like any connection), as long as it holds
  fewer than ``max_connections_percent`` of the instance's max_connections. A borrower still waiting
  after ``connection_borrow_timeout`` fails ``borrow_timeout``.
- after the transaction the DB connection goes to the next borrower in line, or back to the idle list.
  Every ``idle_trim`` the proxy closes idle DB connections above ``max_idle_connections_percent``.
- pinning: a client connection that sets session state (a ``pins`` query, or the ``pinning_fraction`` of
  client connections) keeps its DB connection until it closes; no one else can borrow it.

During a failover the proxy routes the read/write endpoint to the new writer as soon as it is available,
without waiting for DNS, and client connections stay open (FACTS: failover.proxy). Transactions in flight
on the failed instance fail ``connection_lost`` after a round trip: the proxy watches its targets' health,
so a blackholed target looks to its clients like a reset (assumed).
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from ..record import CODE
from ..rng import uniforms
from .instance import NORMAL, Address
from .pool import Connection, _SetupJob

if TYPE_CHECKING:
    from ..engine import Sim
    from ..scenario import Proxy as ProxySpec
    from .instance import Instance

BORROW_TIMEOUT = CODE["borrow_timeout"]
READ_ONLY = CODE["read_only"]
# assumed: after a failed attempt to open a DB connection (max_connections reached, target down) the proxy
# tries again this much later while borrowers wait
OPEN_RETRY_S = 0.1
IDLE_AFTER_S = 300.0  # a pooled DB connection counts as idle after 5 min without use (FACTS: proxy.idle_trim)


class _Path:
    """The proxy's own network path to an instance: never blackholed from the client's view (see above)."""

    __slots__ = ()
    unreachable = False


PROXY_PATH = _Path()


class _ProxyService:
    """Stands in for a client service in the connection log: proxy-owned DB connections have service -1."""

    __slots__ = ()
    index = -1


class _Borrow:
    """A borrower waiting in an endpoint's queue; its event fires at the borrow timeout."""

    __slots__ = ("callbacks", "req", "t0")
    _ok = True

    def __init__(self, callbacks: tuple, req: Any, t0: float) -> None:
        self.callbacks = callbacks
        self.req = req
        self.t0 = t0


class _Retry:
    __slots__ = ("callbacks",)
    _ok = True

    def __init__(self, callbacks: tuple) -> None:
        self.callbacks = callbacks


class Target:
    """The proxy's pool of DB connections to one instance."""

    service = _ProxyService()
    socket_timeout = 0.0

    def __init__(self, proxy: Proxy, instance: Instance) -> None:
        self.proxy = proxy
        self.instance = instance
        spec = proxy.spec
        self.cap = math.floor(spec.max_connections_percent * instance.max_connections / 100.0 + 1e-9)
        self.idle_cap = math.floor(
            spec.max_idle_connections_percent * instance.max_connections / 100.0 + 1e-9
        )
        self.idle: list[Connection] = []
        self.total = 0  # open and opening
        self.opening = 0
        self.route: Route | None = None

    # the workload calls these on req.pool when a transaction on one of our DB connections ends
    def release(self, conn: Connection, code: int = 0) -> None:
        now = self.proxy.env._now
        conn.lent = False
        conn.last_used = now
        client = conn.pinned
        conn.pinned = None
        if client.pinned is conn:
            conn.pinned = client  # stays with its client connection
            if conn.broken:
                self.proxy.unpin(client)
        elif conn.broken:
            self.discard(conn)
        else:
            self.put(conn)
        client.pool.release(client, code)

    def watch(self, conn: Connection) -> None:
        """An instance failure blackholed this connection: the proxy finds it broken when next used."""

    def put(self, conn: Connection) -> None:
        route = self.route
        if route is not None and route.n_waiting:
            route.serve(self, conn)
            return
        if route is None and not self.instance.up:
            self.discard(conn)
            return
        conn.idle = True
        self.idle.append(conn)

    def take_idle(self) -> Connection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            conn.idle = False
            if conn.broken:
                self.discard(conn)
                continue
            return conn
        return None

    def discard(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.total -= 1
        if not conn.broken:
            self.instance.disconnect(-1, conn.id)

    def drop_broken(self) -> None:
        for conn in [c for c in self.idle if c.broken]:
            self.idle.remove(conn)
            conn.idle = False
            self.discard(conn)

    def trim(self, now: float) -> None:
        """Close idle DB connections above the idle cap that have been idle for IDLE_AFTER_S, oldest first."""
        self.drop_broken()
        excess = len(self.idle) - self.idle_cap
        if excess <= 0:
            return
        # the idle list is in return order: the oldest first
        stale = [c for c in self.idle[:excess] if now - c.last_used >= IDLE_AFTER_S]
        for conn in stale:
            conn.idle = False
            self.discard(conn)
        self.idle = self.idle[len(stale) :]

    def open(self):  # type: ignore[no-untyped-def]
        """Open one DB connection for the waiting borrowers (a SimPy process)."""
        proxy = self.proxy
        env = proxy.env
        inst = self.instance
        proxy.requests_t.append(env.now)
        yield env.timeout(proxy.setup_s)
        conn_id = inst.accept(-1) if inst.up else -1
        if conn_id < 0:
            self._opened(None)
            return
        conn = Connection(conn_id, inst, PROXY_PATH, self, env.now)
        inst.register(conn)
        ready = env.event()
        inst.submit(_SetupJob(proxy.setup_cpu_s, lambda job: ready.succeed()))
        yield ready
        self._opened(None if conn.broken else conn)

    def _opened(self, conn: Connection | None) -> None:
        self.opening -= 1
        if conn is None:
            self.total -= 1
            if self.route is not None and self.route.n_waiting:
                self.route.retry_later()
            return
        conn.last_used = self.proxy.env._now
        self.put(conn)


class Route:
    """A proxy endpoint. To a client it is both the DNS name and the server it connects to."""

    is_proxy = True
    read_only = False
    up = True
    paused = False
    broken_before = -math.inf

    def __init__(self, proxy: Proxy, index: int, name: str, az: str) -> None:
        self.proxy = proxy
        self.sim = proxy.sim
        self.env = proxy.env
        self.index = index
        self.name = name
        self.address = Address(self, az)  # type: ignore[arg-type]
        self.targets: list[Target] = []
        self.waiters: deque[_Borrow] = deque()
        self.n_waiting = 0
        self.clients: dict[int, Connection] = {}
        self._rr = 0
        self._timeout_callbacks = (self._timed_out,)
        self._borrow_callbacks = (self.borrow,)
        self._retry_pending = False
        self._retry_callbacks = (self._retry,)

    # ------------------------------------------------------------ as a DNS name

    def lookup(self, now: float, age: Any) -> tuple[Address, ...]:
        return (self.address,)

    # --------------------------------------------------- as a server to clients

    def accept(self, service: int) -> int:
        proxy = self.proxy
        proxy.client_ids += 1
        proxy.client_t.append(self.env._now)
        proxy.client_delta.append(1)
        return proxy.client_ids

    def register(self, conn: Connection) -> None:
        self.clients[conn.id] = conn
        conn.pinned = self.proxy.draw_pinning()

    def disconnect(self, service: int, conn_id: int) -> None:
        proxy = self.proxy
        proxy.client_t.append(self.env._now)
        proxy.client_delta.append(-1)
        client = self.clients.pop(conn_id)
        if isinstance(client.pinned, Connection):
            proxy.unpin(client)

    def submit(self, req: Any) -> None:
        """A transaction arrives on a client connection (``req.conn``); it borrows after the proxy's overhead."""
        overhead = self.proxy.overhead
        if overhead > 0.0:
            req.callbacks = self._borrow_callbacks
            self.proxy.schedule(req, NORMAL, overhead)
        else:
            self.borrow(req)

    # ------------------------------------------------------------------ borrow

    def borrow(self, req: Any) -> None:
        client = req.conn
        now = self.env._now
        pinned = client.pinned
        if isinstance(pinned, Connection):
            self._lend(req, pinned.pool, pinned, now)
            return
        for _ in range(len(self.targets)):
            target = self._next_target()
            if target.instance.up:
                conn = target.take_idle()
                if conn is not None:
                    self._lend(req, target, conn, now)
                    return
        token = _Borrow(self._timeout_callbacks, req, now)
        req.deadline = token
        req.waiting = True
        self.waiters.append(token)
        self.n_waiting += 1
        self.proxy.schedule(token, NORMAL, self.proxy.borrow_timeout)
        self.kick()

    def _next_target(self) -> Target:
        targets = self.targets
        self._rr = (self._rr + 1) % len(targets)
        return targets[self._rr]

    def _lend(self, req: Any, target: Target, conn: Connection, t0: float) -> None:
        proxy = self.proxy
        now = self.env._now
        client = req.conn
        conn.lent = True
        conn.pinned = client
        if client.pinned is True or (req.query.spec.pins and client.pinned is not conn):
            client.pinned = conn
            proxy.pinned += 1
            proxy.pin_t.append(now)
            proxy.pin_delta.append(1)
        proxy.borrow_t.append(now)
        proxy.borrow_wait.append(now - t0)
        req.conn = conn
        req.pool = target
        req.t_acq = now
        if conn.broken:
            req.query.lost(req)
        elif conn.instance.read_only and req.query.is_write:
            req.query.read_only(req)
        else:
            conn.instance.submit(req)

    def serve(self, target: Target, conn: Connection) -> None:
        """A DB connection of ``target`` is free and borrowers wait: the first in line gets it."""
        while self.n_waiting:
            token = self.waiters.popleft()
            req = token.req
            if req is not None:
                token.req = None
                req.waiting = False
                self.n_waiting -= 1
                self._lend(req, target, conn, token.t0)
                return
        conn.idle = True
        target.idle.append(conn)

    def _timed_out(self, token: _Borrow) -> None:
        req = token.req
        if req is None:
            return
        token.req = None
        req.waiting = False
        self.n_waiting -= 1
        proxy = self.proxy
        proxy.timeout_t.append(self.env._now)
        client = req.conn
        client.pool.release(client, BORROW_TIMEOUT)
        req.query.fail(req, BORROW_TIMEOUT)

    # ------------------------------------------------------------------ opening

    def kick(self) -> None:
        """Open DB connections for borrowers that no idle or opening connection will serve."""
        need = self.n_waiting - sum(t.opening for t in self.targets)
        while need > 0:
            room = [t for t in self.targets if t.instance.up and t.total < t.cap]
            if not room:
                return
            target = min(room, key=lambda t: t.total)
            target.total += 1
            target.opening += 1
            self.env.process(target.open())
            need -= 1

    def retry_later(self) -> None:
        """An attempt to open a DB connection failed while borrowers wait: kick again OPEN_RETRY_S later."""
        if not self._retry_pending:
            self._retry_pending = True
            self.proxy.schedule(_Retry(self._retry_callbacks), NORMAL, OPEN_RETRY_S)

    def _retry(self, _: Any) -> None:
        self._retry_pending = False
        self.kick()


class Proxy:
    """One RDS Proxy in front of the cluster, with its read/write and (with readers) read-only endpoints."""

    def __init__(self, sim: Sim, spec: ProxySpec, first_index: int) -> None:
        self.sim = sim
        self.env = sim.env
        self.spec = spec
        self.schedule = sim.env.schedule
        self.borrow_timeout = spec.connection_borrow_timeout
        self.overhead = spec.overhead
        self.setup_s = sim.scenario.cluster.connection.setup
        self.setup_cpu_s = sim.scenario.cluster.connection.setup_cpu
        self._pin_u = uniforms(sim.stream("cluster.proxy.pinning")) if spec.pinning_fraction > 0 else None
        self.targets = {inst.index: Target(self, inst) for inst in sim.instances}
        az = sim.instances[0].az
        self.routes = {"proxy": Route(self, first_index, "proxy", az)}
        if len(sim.instances) > 1:
            self.routes["proxy:reader"] = Route(self, first_index + 1, "proxy:reader", az)
        self.client_ids = 0
        self.pinned = 0
        # logs for the analysis (columns, appended as things happen)
        self.client_t = array("d")
        self.client_delta = array("i")
        self.borrow_t = array("d")
        self.borrow_wait = array("d")
        self.timeout_t = array("d")
        self.requests_t = array("d")  # DB connection requests (attempts to open one)
        self.pin_t = array("d")
        self.pin_delta = array("i")
        self.retarget()
        self.env.process(self._trimmer())

    def draw_pinning(self) -> bool:
        u = self._pin_u
        return u is not None and next(u) < self.spec.pinning_fraction

    def unpin(self, client: Connection) -> None:
        conn = client.pinned
        client.pinned = False
        self.pinned -= 1
        self.pin_t.append(self.env._now)
        self.pin_delta.append(-1)
        conn.pinned = None
        target = conn.pool
        if conn.broken:
            target.discard(conn)
        elif not conn.lent:
            target.put(conn)

    def retarget(self) -> None:
        """Point the endpoints at the cluster as it is now: the writer, and the readers in service."""
        failovers = self.sim.failovers
        writer, in_service = failovers.writer, failovers.in_service
        for target in self.targets.values():
            target.route = None
            target.drop_broken()
        rw = self.routes["proxy"]
        rw.targets = [self.targets[writer.index]]
        rw.targets[0].route = rw
        ro = self.routes.get("proxy:reader")
        if ro is not None:
            readers = [self.targets[i.index] for i in in_service if i.role == "reader" and i is not writer]
            ro.targets = readers or []
            for target in readers:
                target.route = ro
        for route in self.routes.values():
            if route.n_waiting:
                for target in route.targets:
                    self._serve_idle(route, target)
                route.kick()

    def _serve_idle(self, route: Route, target: Target) -> None:
        while route.n_waiting and target.instance.up:
            conn = target.take_idle()
            if conn is None:
                return
            route.serve(target, conn)

    def max_allowed(self) -> int:
        """MaxDatabaseConnectionsAllowed of the read/write endpoint's target."""
        targets = self.routes["proxy"].targets
        return targets[0].cap if targets else 0

    def log(self) -> dict[str, Any]:
        return {
            "client_t": np.frombuffer(self.client_t, dtype=np.float64),
            "client_delta": np.frombuffer(self.client_delta, dtype=np.int32).astype(np.int64),
            "borrow_t": np.frombuffer(self.borrow_t, dtype=np.float64),
            "borrow_wait": np.frombuffer(self.borrow_wait, dtype=np.float64),
            "timeout_t": np.frombuffer(self.timeout_t, dtype=np.float64),
            "requests_t": np.frombuffer(self.requests_t, dtype=np.float64),
            "pin_t": np.frombuffer(self.pin_t, dtype=np.float64),
            "pin_delta": np.frombuffer(self.pin_delta, dtype=np.int32).astype(np.int64),
            "caps": {t.instance.name: t.cap for t in self.targets.values()},
        }

    def _trimmer(self):  # type: ignore[no-untyped-def]
        while True:
            yield self.env.timeout(self.spec.idle_trim)
            now = self.env.now
            for target in self.targets.values():
                target.trim(now)
