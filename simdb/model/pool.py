"""A client connection pool with HikariCP semantics (FACTS: hikari.defaults, hikari.fill,
hikari.lifetime_variance).

- Borrow: the most recently returned idle connection; otherwise wait (FIFO) up to connection_timeout.
  A timed-out borrower fails ``acquire_timeout``, or ``too_many_connections`` when the pool's last
  attempt to open a connection was refused by the server (HikariCP attaches that failure as the cause).
- Fill: one creator per pool opens connections one at a time while fewer than min_idle are idle or
  borrowers wait, never beyond max_size; after a failed attempt it backs off as the service's
  ``reconnect`` says (HikariCP: 10 ms doubling to 5 s, no jitter; FACTS: hikari.fill, backoff.jitter).
- Opening resolves the endpoint through the task's DNS cache (:class:`~.endpoints.Resolver`). An address
  whose instance is down refuses at once; an unreachable one (blackhole) fails after ``connect_timeout``.
- Validation (FACTS: hikari.validation): a connection idle for more than 500 ms is checked before it is
  lent. A broken one is closed (a check of one to an unreachable host first waits ``validation_timeout``).
  ``keepalive`` checks idle connections to a host that became unreachable the same way, so a pool notices a
  blackholed instance without traffic. Connections reset by a failure are found when next borrowed.
- Errors: ``evict_on_error`` decides which query errors close the connection (HikariCP closes broken
  connections, SQLState 08, but keeps one that answered read_only; FACTS: hikari.evict).
- max_lifetime: each connection lives max_lifetime shortened by up to ``max_lifetime_jitter`` (2.5%)
  at random, so a pool's connections do not all retire at once. An idle connection is closed at its
  deadline and replaced; a busy one is closed when returned.
- idle_timeout: only when min_idle < max_size, idle connections beyond min_idle close after it
  (checked by a housekeeper every 30 s).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..record import CODE, CONN_REFUSED, CONN_TIMED_OUT
from .endpoints import Resolver
from .instance import NORMAL

if TYPE_CHECKING:
    from ..engine import Sim
    from .endpoints import Endpoint
    from .services import ServiceRuntime

HOUSEKEEPING_S = 30.0  # FACTS: hikari.fill (housekeeper period)
LIFETIME_JITTER_MIN_S = 10.0  # FACTS: hikari.lifetime_variance (no variation for lifetimes ≤ 10 s)
# recently used connections are lent unchecked (aliveBypassWindowMs)
ALIVE_BYPASS_S = 0.5  # FACTS: hikari.validation

ACQUIRE_TIMEOUT = CODE["acquire_timeout"]
TOO_MANY_CONNECTIONS = CODE["too_many_connections"]
CONNECTION_REFUSED = CODE["connection_refused"]
CONNECT_TIMEOUT = CODE["connect_timeout"]
CONNECTION_LOST = CODE["connection_lost"]
READ_ONLY = CODE["read_only"]


class Backoff:
    """Capped exponential backoff with optional jitter (FACTS: backoff.jitter)."""

    __slots__ = ("initial", "jitter", "maximum", "u")

    def __init__(self, spec: Any, u: Any) -> None:
        self.initial = spec.initial_backoff
        self.maximum = spec.max_backoff
        self.jitter = spec.jitter
        self.u = u

    def wait(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1, 2, ...)."""
        base = min(self.maximum, self.initial * 2.0 ** min(failures - 1, 60))
        if self.jitter == "full":
            return base * next(self.u)
        if self.jitter == "equal":
            return base * (0.5 + 0.5 * next(self.u))
        return base


class Connection:
    """An open DB connection; scheduled on the event queue only for its lifetime deadline."""

    __slots__ = (
        "address",
        "broken",
        "callbacks",
        "closed",
        "evicted",
        "id",
        "idle",
        "instance",
        "last_used",
        "lent",
        "pinned",
        "pool",
        "service",
    )
    _ok = True

    def __init__(self, conn_id: int, instance: Any, address: Any, pool: Any, now: float) -> None:
        self.callbacks: Any = None
        self.id = conn_id
        self.instance = instance
        self.address = address  # the host it was opened to (a Multi-AZ instance may move away from it)
        self.pool = pool
        self.service = pool.service.index
        self.lent = False
        self.broken = False  # the server side is gone (instance failure); the pool discards it on sight
        self.last_used = now
        self.evicted = False
        self.closed = False
        self.idle = False
        # through RDS Proxy: the DB connection this client connection is pinned to; None when not pinned,
        # False when it will never pin, True when its first transaction will pin it (FACTS: proxy.pinning)
        self.pinned: Any = None


class _SetupJob:
    """The DB-side CPU work of accepting a connection."""

    __slots__ = ("after_cpu", "callbacks", "cpu", "t_start")
    _ok = True
    lock_keys = None

    def __init__(self, cpu: float, after_cpu: Any) -> None:
        self.callbacks: Any = None
        self.cpu = cpu
        self.after_cpu = after_cpu
        self.t_start = 0.0


class _Check:
    """A validation or keepalive check of a connection: ``req`` waits for it (None for keepalive)."""

    __slots__ = ("callbacks", "conn", "req")
    _ok = True

    def __init__(self, callbacks: tuple, conn: Connection, req: Any) -> None:
        self.callbacks = callbacks
        self.conn = conn
        self.req = req


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
        self.validation = cfg.validation
        self.validation_timeout = cfg.validation_timeout
        self.keepalive = cfg.keepalive
        self.evict_read_only = cfg.evict_on_error == "all"
        self.evict_broken = cfg.evict_on_error != "none"
        self.connect_timeout = cfg.connect_timeout
        self.socket_timeout = cfg.socket_timeout
        self.setup_s = sim.scenario.cluster.connection.setup
        self.setup_cpu_s = sim.scenario.cluster.connection.setup_cpu
        self.resolver = Resolver(endpoint, service.spec.dns_cache, service.dns_age)
        # a pool of client connections to RDS Proxy asks nothing of the DB's max_connections
        self.demand = not endpoint.is_proxy
        self.idle: list[Connection] = []
        self.total = 0
        self.in_use = 0
        self.waiters: deque[_Deadline] = deque()
        self.n_waiting = 0
        self.creating = False
        self.open = False
        self.last_error = 0
        self._timeout_callbacks = (self._timed_out,)
        self._expire_callbacks = (self._expired,)
        self._validated_callbacks = (self._validated,)
        self._keepalive_callbacks = (self._keepalive,)
        self._schedule = sim.env.schedule

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.open = True
        if self.demand:
            self.sim.rec.demand(self.env.now, self.endpoint.index, self.max_size)
        self._fill()
        if self.min_idle < self.max_size and self.idle_timeout > 0:
            self.env.process(self._housekeeper())

    def shutdown(self) -> None:
        """Stop the pool: idle connections close now, busy ones when returned, waiting borrowers are served."""
        if not self.open:
            return
        self.open = False
        if self.demand:
            self.sim.rec.demand(self.env.now, self.endpoint.index, -self.max_size)
        if not self.n_waiting:
            self._close_idle()

    # ---------------------------------------------------------------- borrow

    def acquire(self, req: Any) -> None:
        idle = self.idle
        now = self.env._now
        while idle:
            # idle connections are never evicted: an idle one is closed when its lifetime ends
            conn = idle.pop()
            conn.idle = False
            if conn.broken and self.validation and now - conn.last_used > ALIVE_BYPASS_S:
                if conn.address.unreachable:
                    # the check hangs until validation_timeout; the borrower waits for it
                    self._schedule(
                        _Check(self._validated_callbacks, conn, req), NORMAL, self.validation_timeout
                    )
                    return
                self._close(conn)
                self._fill()
                continue
            self._lend(req, conn)
            return
        remaining = req.t_try + self.connection_timeout - now
        if remaining <= 0.0:
            req.query.fail(req, self.last_error or ACQUIRE_TIMEOUT)
            return
        req.waiting = True
        # the queue holds each wait's deadline, not the request: a request that timed out here and was
        # retried in another pool must not be served from a stale entry in this one
        req.deadline = deadline = _Deadline(self._timeout_callbacks, req)
        self.waiters.append(deadline)
        self.n_waiting += 1
        self._schedule(deadline, NORMAL, remaining)
        self._fill()

    def _validated(self, check: _Check) -> None:
        """A check of a connection to an unreachable host timed out: close it; its borrower tries again."""
        self._close(check.conn)
        self._fill()
        if check.req is not None:
            self.acquire(check.req)

    def _lend(self, req: Any, conn: Connection) -> None:
        self.in_use += 1
        conn.lent = True
        req.conn = conn
        req.t_acq = self.env._now
        if conn.broken:
            req.query.lost(req)
        elif conn.instance.read_only and req.query.is_write:
            req.query.read_only(req)
        else:
            conn.instance.submit(req)

    def release(self, conn: Connection, code: int = 0) -> None:
        self.in_use -= 1
        conn.lent = False
        conn.last_used = self.env._now
        if (
            conn.evicted
            or (code == CONNECTION_LOST and self.evict_broken)
            or (code == READ_ONLY and self.evict_read_only)
        ):
            self._close(conn)
            self._fill()
        else:
            self._put(conn)

    def _put(self, conn: Connection) -> None:
        waiters = self.waiters
        while self.n_waiting:
            deadline = waiters.popleft()
            req = deadline.req
            if req is not None:
                deadline.req = None
                req.waiting = False
                self.n_waiting -= 1
                self._lend(req, conn)
                return
        if not self.open:
            self._close(conn)
            return
        conn.idle = True
        self.idle.append(conn)

    def _timed_out(self, deadline: _Deadline) -> None:
        req = deadline.req
        if req is not None:
            deadline.req = None
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
        failures = 0
        backoff = self.service.reconnect
        while self._needs_connection():
            opened = yield from self._open_one()
            if opened:
                failures = 0
            else:
                failures += 1
                yield self.env.timeout(backoff.wait(failures))
        self.creating = False

    def _open_one(self):  # type: ignore[no-untyped-def]
        conn = yield from open_connection(self, self.resolver)
        if conn is None:
            return False
        if self.max_lifetime > 0:
            lifetime = self.max_lifetime * (1.0 - self.lifetime_jitter * next(self.service.lifetime_u))
            conn.callbacks = self._expire_callbacks
            self._schedule(conn, NORMAL, lifetime)
        self._put(conn)
        return True

    # ------------------------------------------------------------- keepalive

    def watch(self, conn: Connection) -> None:
        """``conn`` broke on the server side: the next keepalive check of it, if idle then, finds out."""
        if self.keepalive > 0 and self.open:
            wait = self.keepalive * next(self.service.keepalive_u)
            self._schedule(_Check(self._keepalive_callbacks, conn, None), NORMAL, wait)

    def _keepalive(self, check: _Check) -> None:
        conn = check.conn
        if conn.closed:
            return
        if not conn.idle:  # lent or being checked: try again at the next keepalive
            check.callbacks = self._keepalive_callbacks  # SimPy clears a processed event's callbacks
            self._schedule(check, NORMAL, self.keepalive)
            return
        self.idle.remove(conn)
        conn.idle = False
        if conn.address.unreachable:
            self._schedule(_Check(self._validated_callbacks, conn, None), NORMAL, self.validation_timeout)
        else:
            self._close(conn)
            self._fill()

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

    def soft_evict(self, conn: Connection) -> None:
        """HikariCP softEvictConnections for one connection: closed now if idle, when returned if busy."""
        self._expired(conn)

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


def open_connection(owner: Any, resolver: Resolver):  # type: ignore[no-untyped-def]
    """Open one connection for ``owner`` (a pool, or a Lambda environment): a generator that returns the
    open :class:`Connection`, or None with ``owner.last_error`` set.

    The endpoint is resolved through ``resolver``. A DB instance costs setup time and CPU and may refuse at
    max_connections; RDS Proxy (``is_proxy``) takes a client connection at setup cost only.
    """
    env = owner.env
    service = owner.service
    rec = owner.sim.rec
    started = env._now
    address = resolver.resolve(env._now, service.pick)
    if address.unreachable:
        yield env.timeout(owner.connect_timeout)
    elif owner.setup_s:
        yield env.timeout(owner.setup_s)
    instance = address.target()
    if instance is None or not instance.up or address.unreachable:
        # a dead host, or one whose database is down (or moved away), or packets dropped on the way (a
        # security group that does not admit the client): refused, or no answer at all
        inst_index = address.instance.index
        if address.unreachable:
            rec.connection(env._now, inst_index, service.index, CONN_TIMED_OUT)
            owner.last_error = CONNECT_TIMEOUT
        else:
            rec.connection(env._now, inst_index, service.index, CONN_REFUSED)
            owner.last_error = CONNECTION_REFUSED
        return None
    if instance.paused:
        # Serverless v2 auto-pause: the attempt starts the resume and waits for it, up to the connect timeout
        running = yield from instance.wait_resumed(owner.connect_timeout - (env._now - started))
        if not running or not instance.up:
            rec.connection(env._now, instance.index, service.index, CONN_TIMED_OUT)
            owner.last_error = CONNECT_TIMEOUT
            return None
    conn_id = instance.accept(service.index)
    if conn_id < 0:
        owner.last_error = TOO_MANY_CONNECTIONS
        return None
    conn = Connection(conn_id, instance, address, owner, env.now)
    instance.register(conn)
    if not instance.is_proxy:
        ready = env.event()
        instance.submit(_SetupJob(owner.setup_cpu_s, lambda job: ready.succeed()))
        yield ready
        if conn.broken:
            owner.last_error = CONNECTION_REFUSED  # the instance failed during the handshake
            return None
    conn.last_used = env.now
    owner.total += 1
    owner.last_error = 0
    return conn
