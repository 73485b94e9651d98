"""A client connection pool with HikariCP semantics (FACTS: hikari.defaults, hikari.fill,
hikari.lifetime_variance).

- Borrow: the most recently returned idle connection; otherwise wait (FIFO) up to connection_timeout.
  A timed-out borrower fails ``acquire_timeout``, or ``too_many_connections`` when the pool's last
  attempt to open a connection was refused by the server (HikariCP attaches that failure as the cause).
- Fill: one creator per pool opens connections one at a time while fewer than min_idle are idle or
  borrowers wait, never beyond max_size; after a failed attempt it backs off (10 ms doubling to 5 s).
- max_lifetime: each connection lives max_lifetime shortened by up to ``max_lifetime_jitter`` (2.5%)
  at random, so a pool's connections do not all retire at once. An idle connection is closed at its
  deadline and replaced; a busy one is closed when returned.
- idle_timeout: only when min_idle < max_size, idle connections beyond min_idle close after it
  (checked by a housekeeper every 30 s).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..record import CODE
from .instance import NORMAL

if TYPE_CHECKING:
    from ..engine import Sim
    from .endpoints import Endpoint
    from .services import ServiceRuntime

HOUSEKEEPING_S = 30.0  # FACTS: hikari.fill (housekeeper period)
CREATE_BACKOFF_S = 0.010  # FACTS: hikari.fill (first retry delay after a failed create)
CREATE_BACKOFF_MAX_S = 5.0  # FACTS: hikari.fill (retry delay cap)
LIFETIME_JITTER_MIN_S = 10.0  # FACTS: hikari.lifetime_variance (no variation for lifetimes ≤ 10 s)

ACQUIRE_TIMEOUT = CODE["acquire_timeout"]
TOO_MANY_CONNECTIONS = CODE["too_many_connections"]
CONNECTION_REFUSED = CODE["connection_refused"]


class Connection:
    """An open DB connection; scheduled on the event queue only for its lifetime deadline."""

    __slots__ = ("broken", "callbacks", "closed", "evicted", "id", "idle", "instance", "last_used", "service")
    _ok = True

    def __init__(self, conn_id: int, instance: Any, service: int, now: float) -> None:
        self.callbacks: Any = None
        self.id = conn_id
        self.instance = instance
        self.service = service
        self.broken = False  # the server side is gone (instance failure); the pool discards it on sight
        self.last_used = now
        self.evicted = False
        self.closed = False
        self.idle = False


class _SetupJob:
    """The DB-side CPU work of accepting a connection."""

    __slots__ = ("after_cpu", "callbacks", "cpu", "t_start")
    _ok = True

    def __init__(self, cpu: float, after_cpu: Any) -> None:
        self.callbacks: Any = None
        self.cpu = cpu
        self.after_cpu = after_cpu
        self.t_start = 0.0


class _Deadline:
    """A borrower's connection_timeout. Cleared when the borrower is served, so the event queue does not
    keep a finished request alive until the deadline passes."""

    __slots__ = ("callbacks", "req")
    _ok = True

    def __init__(self, callbacks: tuple, req: Any) -> None:
        self.callbacks = callbacks
        self.req = req


class Pool:
    """One task's pool for one endpoint."""

    def __init__(self, sim: Sim, service: ServiceRuntime, task_id: int, endpoint: Endpoint) -> None:
        cfg = service.spec.pool
        self.sim = sim
        self.env = sim.env
        self.service = service
        self.task_id = task_id
        self.endpoint = endpoint
        self.max_size = cfg.max_size
        self.min_idle = cfg.min_idle if cfg.min_idle is not None else cfg.max_size
        self.connection_timeout = cfg.connection_timeout
        self.idle_timeout = cfg.idle_timeout
        self.max_lifetime = cfg.max_lifetime
        self.lifetime_jitter = cfg.max_lifetime_jitter if cfg.max_lifetime > LIFETIME_JITTER_MIN_S else 0.0
        self.setup_s = sim.scenario.cluster.connection.setup
        self.setup_cpu_s = sim.scenario.cluster.connection.setup_cpu
        self.idle: list[Connection] = []
        self.total = 0
        self.in_use = 0
        self.waiters: deque[Any] = deque()
        self.n_waiting = 0
        self.creating = False
        self.open = False
        self.last_error = 0
        self._timeout_callbacks = (self._timed_out,)
        self._expire_callbacks = (self._expired,)
        self._schedule = sim.env.schedule

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.open = True
        self.sim.rec.demand(self.env.now, self.endpoint.index, self.max_size)
        self._fill()
        if self.min_idle < self.max_size and self.idle_timeout > 0:
            self.env.process(self._housekeeper())

    def shutdown(self) -> None:
        """Stop the pool: idle connections close now, busy ones when returned, waiting borrowers are served."""
        if not self.open:
            return
        self.open = False
        self.sim.rec.demand(self.env.now, self.endpoint.index, -self.max_size)
        if not self.n_waiting:
            self._close_idle()

    # ---------------------------------------------------------------- borrow

    def acquire(self, req: Any) -> None:
        idle = self.idle
        while idle:
            # idle connections are never evicted: an idle one is closed when its lifetime ends
            conn = idle.pop()
            conn.idle = False
            if conn.broken:
                # HikariCP validates a connection idle for more than 500 ms before lending it
                self._close(conn)
                self._fill()
                continue
            self.in_use += 1
            req.conn = conn
            req.t_acq = self.env._now
            conn.instance.submit(req)
            return
        req.waiting = True
        self.waiters.append(req)
        self.n_waiting += 1
        req.deadline = deadline = _Deadline(self._timeout_callbacks, req)
        self._schedule(deadline, NORMAL, self.connection_timeout)
        self._fill()

    def release(self, conn: Connection) -> None:
        self.in_use -= 1
        conn.last_used = self.env._now
        if conn.evicted or conn.broken:
            self._close(conn)
            self._fill()
        else:
            self._put(conn)

    def _put(self, conn: Connection) -> None:
        waiters = self.waiters
        while self.n_waiting:
            req = waiters.popleft()
            if req.waiting:
                req.waiting = False
                req.deadline.req = None
                self.n_waiting -= 1
                self.in_use += 1
                req.conn = conn
                req.t_acq = self.env._now
                conn.instance.submit(req)
                return
        if not self.open:
            self._close(conn)
            return
        conn.idle = True
        self.idle.append(conn)

    def _timed_out(self, deadline: _Deadline) -> None:
        req = deadline.req
        if req is not None and req.waiting:
            req.waiting = False
            self.n_waiting -= 1
            req.query.fail(req, self.last_error or ACQUIRE_TIMEOUT)
            if not self.open and not self.n_waiting:
                self._close_idle()

    # ------------------------------------------------------------------ fill

    def _needs_connection(self) -> bool:
        return (
            self.open
            and self.total < self.max_size
            and (len(self.idle) < self.min_idle or self.n_waiting > len(self.idle))
        )

    def _fill(self) -> None:
        if not self.creating and self._needs_connection():
            self.creating = True
            self.env.process(self._creator())

    def _creator(self):  # type: ignore[no-untyped-def]
        backoff = CREATE_BACKOFF_S
        while self._needs_connection():
            opened = yield from self._open_one()
            if opened:
                backoff = CREATE_BACKOFF_S
            else:
                yield self.env.timeout(backoff)
                backoff = min(CREATE_BACKOFF_MAX_S, backoff * 2)
        self.creating = False

    def _open_one(self):  # type: ignore[no-untyped-def]
        env = self.env
        service = self.service
        if self.setup_s:
            yield env.timeout(self.setup_s)
        instance = self.endpoint.resolve(service.pick)
        if not instance.up:
            self.last_error = CONNECTION_REFUSED
            return False
        conn_id = instance.accept(service.index)
        if conn_id < 0:
            self.last_error = TOO_MANY_CONNECTIONS
            return False
        conn = Connection(conn_id, instance, service.index, env.now)
        instance.register(conn)
        ready = env.event()
        instance.submit(_SetupJob(self.setup_cpu_s, lambda job: ready.succeed()))
        yield ready
        if conn.broken:
            self.last_error = CONNECTION_REFUSED  # the instance failed during the handshake
            return False
        now = env.now
        conn.last_used = now
        self.total += 1
        self.last_error = 0
        if self.max_lifetime > 0:
            lifetime = self.max_lifetime * (1.0 - self.lifetime_jitter * next(service.lifetime_u))
            conn.callbacks = self._expire_callbacks
            self._schedule(conn, NORMAL, lifetime)
        self._put(conn)
        return True

    # -------------------------------------------------------------- retiring

    def _close_idle(self) -> None:
        for conn in self.idle:
            conn.idle = False
            self._close(conn)
        self.idle.clear()

    def _close(self, conn: Connection) -> None:
        conn.closed = True
        self.total -= 1
        if not conn.broken:  # a broken connection was already closed on the server side
            conn.instance.disconnect(self.service.index, conn.id)

    def _expired(self, conn: Connection) -> None:
        if conn.closed:
            return
        if conn.idle:
            self.idle.remove(conn)
            conn.idle = False
            self._close(conn)
            self._fill()
        else:
            conn.evicted = True

    def _housekeeper(self):  # type: ignore[no-untyped-def]
        while self.open:
            yield self.env.timeout(HOUSEKEEPING_S)
            now = self.env.now
            # HikariCP retires idle connections only while more than minimumIdle are idle
            surplus = len(self.idle) - self.min_idle
            for conn in list(self.idle):
                if surplus <= 0:
                    break
                if now - conn.last_used > self.idle_timeout:
                    self.idle.remove(conn)
                    conn.idle = False
                    self._close(conn)
                    surplus -= 1
            self._fill()
