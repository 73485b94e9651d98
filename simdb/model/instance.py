"""A DB instance: vCPUs as a FIFO multi-server queue, a connection table capped at max_connections.

Jobs are plain objects that the instance schedules directly on the SimPy event queue (``callbacks``,
``cpu``, ``t_start`` and ``after_cpu`` slots): one heap entry per CPU burst, no process or event object
per query. Time integrals (busy vCPUs, active sessions, connections) are kept as they change, so
CPUUtilization, DBLoad and DatabaseConnections per interval are exact, not sampled.

DB load is split by wait class, as Performance Insights splits it (FACTS: pi.wait_classes): `CPU` (on a
vCPU or queued for one), `IO` (waiting for the commit to be durable), `Lock` (waiting for a row lock) and
`Client` (idle inside an open transaction while the app works). The CPU integral advances with the vCPU
queue; the others are kept as ``acc - Σ entry times + Σ exit times`` and a count, so a state change costs
two additions and no clock advance: the integral up to t is ``acc + count * t``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

from ..record import CONN_CLOSED, CONN_OPENED, CONN_REJECTED
from .locks import LockTable

if TYPE_CHECKING:
    from ..engine import Sim

NORMAL = 1  # SimPy's NORMAL event priority


class Address:
    """An IP address an endpoint's DNS record can name.

    A Multi-AZ instance moves to its standby's host on failover and gets a new address; clients that still
    hold the old one reach a host that no longer serves the database.
    """

    __slots__ = ("az", "instance", "unreachable")

    def __init__(self, instance: Instance, az: str) -> None:
        self.instance = instance
        self.az = az
        self.unreachable = False  # packets to it are dropped (blackhole): clients wait for their timeouts

    def target(self) -> Instance | None:
        """The instance answering at this address, if it is still this instance's address."""
        inst = self.instance
        return inst if inst.address is self else None


class HeldTx:
    """A transaction that stays open while its session is idle (a query's ``transaction`` hold, or an
    ``idle_in_transaction`` / ``long_transaction`` event): what the idle-in-transaction timeout ends and
    what keeps a Serverless v2 instance's capacity up."""

    __slots__ = ("acu", "callbacks", "conn", "counted", "done", "ended", "idle", "label", "req", "start")
    _ok = True

    def __init__(self, conn: Any, start: float, acu: float, idle: bool) -> None:
        self.callbacks: Any = None
        self.conn = conn
        self.start = start
        self.acu = acu  # the instance's capacity when the transaction began (Serverless v2)
        self.idle = idle
        self.counted = idle  # in the instance's Client load until it ends
        self.done = False
        self.ended = math.nan  # when the server ended the session (the timeout)
        self.label: str | None = None  # a session from an event: its termination goes to events.csv
        self.req: Any = None  # the request whose row locks the transaction holds, if any


# a hold that began on an instance already down: nothing to track, not counted as load
_NOT_HELD = HeldTx(None, 0.0, 0.0, False)
_NOT_HELD.done = True


class Instance:
    """One DB instance (writer or reader)."""

    is_proxy = False
    serverless = False
    paused = False  # Serverless v2 auto-pause: connection attempts wait for the resume
    restored = False  # the instance of a cluster restored from backup (model.restore)
    region = ""  # aurora-global: the instance's Region
    demoted = False  # aurora-global: a former writer of a Region that is no longer primary

    def __init__(
        self,
        sim: Sim,
        index: int,
        name: str,
        role: str,
        az: str,
        vcpu: int,
        memory_gib: float,
        max_connections: int,
        instance_class: str,
    ) -> None:
        self.sim = sim
        self.env = sim.env
        self.index = index
        self.name = name
        self.role = role
        self.initial_role = role  # the role results are keyed by; failovers change `role`
        self.read_only = role != "writer"  # a write on it fails read_only
        self.tier = 1  # promotion tier (readers)
        self.custom_endpoint: str | None = None
        self.az = az
        self.address = Address(self, az)
        self.vcpu = vcpu
        self.memory_gib = memory_gib
        self.max_connections = max_connections
        self.instance_class = instance_class
        self.up = True
        # work that started on the instance at or before this time was lost when it went down
        self.broken_before = -math.inf
        self.down_log: list[tuple[float, float]] = []  # (down, up) windows; up is inf while down
        self.open_connections: dict[int, Any] = {}  # id -> client Connection, to break them on failure
        self.busy = 0
        self.active = 0
        self.connections = 0
        self.queue: deque[Any] = deque()
        self._t = 0.0
        self._t_conn = 0.0
        self.busy_area = 0.0
        self.active_area = 0.0
        self.conn_area = 0.0
        self._done_callbacks = (self._cpu_done,)
        self._schedule = sim.env.schedule
        # PostgreSQL's idle_in_transaction_session_timeout (0 = off); FACTS: pg.idle_in_txn
        self.idle_tx_timeout = sim.scenario.cluster.parameters.idle_in_transaction_session_timeout
        self._terminate_callbacks = (self._terminate,)
        self.open_tx: set[HeldTx] = set()  # tracked only where something needs them (timeout, serverless)
        self.terminated_t: list[float] = []  # sessions ended by the idle-in-transaction timeout
        params = sim.scenario.cluster.parameters
        self.locks = LockTable(self, params.row_lock_timeout(sim.scenario.cluster.engine))
        if sim.scenario.takes_row_locks():
            self.enable_locks()
        # DB load by wait class besides CPU: count now and acc (see the module docstring)
        self.io_n = 0
        self.io_acc = 0.0
        self.lock_n = 0
        self.lock_acc = 0.0
        self.client_n = 0
        self.client_acc = 0.0

    def _advance(self, now: float) -> None:
        dt = now - self._t
        if dt > 0.0:
            self.busy_area += self.busy * dt
            self.active_area += self.active * dt
            self._t = now

    def _advance_connections(self, now: float) -> None:
        # connections change rarely; their integral advances on its own clock
        self.conn_area += self.connections * (now - self._t_conn)
        self._t_conn = now

    def integrals(self) -> tuple[float, float, float]:
        """(busy vCPU-seconds, active-session-seconds, connection-seconds) up to now."""
        now = self.env.now
        self._advance(now)
        self._advance_connections(now)
        return self.busy_area, self.active_area, self.conn_area

    def wait_integrals(self) -> tuple[float, float, float]:
        """Session-seconds waiting for (IO: commit, Lock: a row lock, Client: the app in a transaction) up to now."""
        now = self.env.now
        return (
            self.io_acc + self.io_n * now,
            self.lock_acc + self.lock_n * now,
            self.client_acc + self.client_n * now,
        )

    # ------------------------------------------------------------------ CPU

    def enable_locks(self) -> None:
        """Some transaction in the scenario takes row locks: from now on a job with ``lock_keys`` takes
        them before it queues for a vCPU (one that has to wait is submitted again once it holds them all).
        Scenarios without row locks keep the plain :meth:`submit`, with no check per query."""
        plain = self.submit
        acquire = self.locks.acquire

        def submit(job: Any) -> None:
            if job.lock_keys is None or acquire(job):
                plain(job)

        self.submit = submit  # type: ignore[method-assign]

    def submit(self, job: Any) -> None:
        """Queue ``job`` for a vCPU; ``job.after_cpu(job)`` runs when its ``job.cpu`` seconds are done."""
        now = self.env._now
        self._advance(now)
        self.active += 1
        if self.busy < self.vcpu:
            self.busy += 1
            job.t_start = now
            job.callbacks = self._done_callbacks
            self._schedule(job, NORMAL, job.cpu)
        else:
            self.queue.append(job)

    def _cpu_done(self, job: Any) -> None:
        now = self.env._now
        self._advance(now)
        self.active -= 1
        if self.queue:
            nxt = self.queue.popleft()
            nxt.t_start = now
            nxt.callbacks = self._done_callbacks
            self._schedule(nxt, NORMAL, nxt.cpu)
        else:
            self.busy -= 1
        job.after_cpu(job)

    # ---------------------------------------------------------- connections

    def accept(self, service: int) -> int:
        """A connection attempt reaches the server: a new connection id, or -1 when at max_connections."""
        now = self.env._now
        if self.connections >= self.max_connections:
            self.sim.rec.connection(now, self.index, service, CONN_REJECTED)
            return -1
        self._advance_connections(now)
        self.connections += 1
        conn_id = self.sim.next_connection_id()
        self.sim.rec.connection(now, self.index, service, CONN_OPENED, conn_id)
        return conn_id

    def register(self, conn: Any) -> None:
        self.open_connections[conn.id] = conn

    def disconnect(self, service: int, conn_id: int) -> None:
        now = self.env._now
        self._advance_connections(now)
        self.connections -= 1
        self.open_connections.pop(conn_id, None)
        self.sim.rec.connection(now, self.index, service, CONN_CLOSED, conn_id)

    # ---------------------------------------------------------- transactions

    def hold_begins(
        self, conn: Any, duration: float, idle: bool = True, label: str | None = None, req: Any = None
    ) -> HeldTx | None:
        """A transaction on ``conn`` stays open for ``duration`` seconds (``idle``: the session sends
        nothing meanwhile: Client load). ``req``: the request whose row locks it holds, released if the
        server ends the session. Returns its handle for :meth:`hold_ends`, or None when nothing tracks it
        (an idle hold, counted as Client load until :meth:`hold_ends`)."""
        if not self.up:
            return _NOT_HELD
        timeout = self.idle_tx_timeout
        ends = idle and 0.0 < timeout < duration
        if idle:
            self.client_n += 1
            self.client_acc -= self.env._now
        if not (ends or self.serverless or label or req is not None):
            return None
        tx = HeldTx(conn, self.env._now, self.tracked_capacity(), idle)
        tx.label = label
        tx.req = req
        self.open_tx.add(tx)
        if ends:
            tx.callbacks = self._terminate_callbacks
            self._schedule(tx, NORMAL, timeout)
        return tx

    def hold_ends(self, tx: HeldTx | None) -> None:
        if tx is None:
            self.client_n -= 1
            self.client_acc += self.env._now
            return
        if tx.counted:
            self._uncount(tx)
        if not tx.done:
            tx.done = True
            self.open_tx.discard(tx)

    def _uncount(self, tx: HeldTx) -> None:
        tx.counted = False
        self.client_n -= 1
        self.client_acc += self.env._now

    def tracked_capacity(self) -> float:
        return 0.0

    def _terminate(self, tx: HeldTx) -> None:
        """idle_in_transaction_session_timeout: the server ends the session; its client learns of it on
        the next statement (the connection is gone: connection_lost, and the pool discards it)."""
        if tx.done:
            return
        tx.done = True
        self.open_tx.discard(tx)
        if tx.counted:
            self._uncount(tx)
        if tx.req is not None:
            self.locks.release(tx.req)  # the backend exits: its transaction aborts
        conn = tx.conn
        if conn.broken or conn.closed:
            return
        conn.broken = True
        now = self.env._now
        tx.ended = now
        self.terminated_t.append(now)
        self.disconnect(conn.service, conn.id)
        if tx.label is not None:
            self.sim.rec.event(
                now,
                "session_terminated",
                self.name,
                f"{tx.label}: idle in transaction for {now - tx.start:g} s (idle_in_transaction_session_timeout)",
            )

    # ------------------------------------------------------------- failures

    def set_role(self, role: str) -> None:
        self.role = role
        self.read_only = role != "writer"

    def move(self, az: str) -> Address:
        """The instance now runs on another host (a Multi-AZ standby): a new address; the old one is left."""
        old = self.address
        self.az = az
        self.address = Address(self, az)
        return old

    def in_use(self) -> int:
        """Connections lent to a request right now: the requests in flight on this instance."""
        return sum(1 for conn in self.open_connections.values() if conn.lent)

    def go_down(self, cause: str, blackhole: bool = False) -> int:
        """The instance is lost: its connections break and the work on it fails. Returns the requests in flight.

        Queued work ends now; work on a vCPU ends, failed, when its burst would have finished (a few
        ms at most), because its completion is already on the event queue. With ``blackhole`` the host
        stops answering: clients learn of the failure only through their own timeouts.
        """
        if not self.up:
            return 0
        now = self.env._now
        in_flight = self.in_use()
        self.up = False
        self.address.unreachable = blackhole
        self.broken_before = now
        self.down_log.append((now, math.inf))
        self._advance(now)
        self._advance_connections(now)
        rec = self.sim.rec
        for conn in self.open_connections.values():
            conn.broken = True
            rec.connection(now, self.index, conn.service, CONN_CLOSED, conn.id)
            if blackhole:
                conn.pool.watch(conn)
        self.open_connections.clear()
        self.connections = 0
        for tx in self.open_tx:
            tx.done = True
            if tx.counted:
                self._uncount(tx)
        self.open_tx.clear()
        rec.event(now, "instance_down", self.name, cause + (" (host unreachable)" if blackhole else ""))
        # every transaction on it is gone, and its row locks with it (before the queued work below ends
        # and releases locks that would otherwise pass to waiters)
        self.locks.clear()
        queued = list(self.queue)
        self.queue.clear()
        self.active -= len(queued)
        for job in queued:
            job.t_start = now
            job.after_cpu(job)
        return in_flight

    def go_up(self, cause: str) -> None:
        if self.up:
            return
        self.demoted = False
        self.up = True
        self.address.unreachable = False
        self.down_log[-1] = (self.down_log[-1][0], self.env._now)
        self.sim.rec.event(self.env._now, "instance_up", self.name, cause)
        if self.sim.proxy is not None:
            self.sim.proxy.retarget()
