"""Load: open workloads (Poisson with piecewise rates and bursts) and closed-loop users, per query class.

An open workload's rate is a step function known before the run (schedule points, bursts, write
spikes), so arrivals are generated exactly: draw an exponential at the current rate; if it crosses the
next step, restart from the step at the new rate (memorylessness makes this exact).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

from ..record import CODE, OK
from ..rng import bounded_zipf, exponentials, integers, uniforms
from .instance import NORMAL
from .pool import Backoff

if TYPE_CHECKING:
    from ..engine import Sim
    from ..scenario import Query, Scenario, Service
    from .services import ServiceRuntime

NAN = math.nan
CONNECTION_LOST = CODE["connection_lost"]
QUORUM_UNAVAILABLE = CODE["quorum_unavailable"]
LOCK_TIMEOUT = CODE["lock_timeout"]
READ_ONLY = CODE["read_only"]
CIRCUIT_OPEN = CODE["circuit_open"]
# failures after which sending the request again is safe: it never ran (connection_lost, which may
# follow a statement that ran, needs the query to be idempotent; FACTS: failover.inflight)
RETRY_SAFE = frozenset(
    CODE[c]
    for c in (
        "too_many_connections",
        "acquire_timeout",
        "borrow_timeout",
        "connection_refused",
        "connect_timeout",
        "read_only",
    )
)
# with no socket timeout, a request on a connection to an unreachable host waits until the OS gives up
# retransmitting: Linux tcp_retries2 = 15 gives about 924.6 s (FACTS: tcp.linux)
TCP_GIVE_UP_S = 924.6


class Request:
    """One request in flight. Schedules itself on the event queue; dropped once recorded.

    ``user`` is whoever waits for its end (``done()``): a closed-loop user, a Lambda execution environment,
    or None. ``pool`` owns ``conn`` (a client pool, the proxy's pool for a DB instance, an environment).
    """

    __slots__ = (
        "after_cpu",
        "attempt",
        "callbacks",
        "conn",
        "cpu",
        "deadline",
        "key",
        "pool",
        "query",
        "session",
        "t_acq",
        "t_arrive",
        "t_start",
        "t_try",
        "task",
        "tx",
        "user",
        "waiting",
    )
    _ok = True
    lock_keys: Any = None  # row locks: only a LockingRequest has them


class LockingRequest(Request):
    """A request whose transaction takes row locks: ``lock_keys`` ascending (a tuple or a range), of which
    the first ``n_locked`` are held."""

    __slots__ = ("lock_keys", "n_locked")


def rate_steps(scenario: Scenario, service: Service, query: Query) -> tuple[list[float], list[float]]:
    """The open-workload arrival rate as steps: (start times, rates); the last step ends at duration."""
    duration = scenario.duration
    cuts = {0.0}
    if query.schedule:
        cuts.update(p.at for p in query.schedule)
    for b in query.bursts:
        cuts.update((b.at, b.at + b.for_))
    spikes = [e for e in scenario.events if e.action == "write_spike" and e.service == service.name]
    if query.kind == "write":
        for e in spikes:
            cuts.update((e.at, e.at + e.for_))
    starts = sorted(t for t in cuts if t < duration)
    rates = []
    for t in starts:
        if query.schedule:
            base = 0.0
            for point in sorted(query.schedule, key=lambda p: p.at):
                if point.at <= t:
                    base = point.rate
        else:
            base = query.rate or 0.0
        rate = base + sum(b.rate for b in query.bursts if b.at <= t < b.at + b.for_)
        if query.kind == "write":
            for e in spikes:
                if e.at <= t < e.at + e.for_:
                    rate *= e.factor
        rates.append(rate)
    return starts, rates


class QueryClass:
    """Runtime of one query class: draws, request creation, completion and recording."""

    def __init__(self, sim: Sim, service: ServiceRuntime, index: int, spec: Query, route_slot: int) -> None:
        path = f"services.{service.spec.name}.workload.{spec.query}"
        self.sim = sim
        self.env = sim.env
        self.service = service
        self.index = index
        self.spec = spec
        self.route_slot = route_slot
        self.cpu_mean = spec.cpu
        self._cpu_draws = (
            exponentials(sim.stream(path + ".cpu")) if spec.cpu_distribution == "exponential" else None
        )
        plan = spec.plan
        if plan is not None:
            # the mean CPU follows the table (FACTS: plan.scan, plan.index): a scan's is linear in time,
            # cpu + cost·(rows + growth·t) = a0 + a1·t; an index's is cpu + cost·log2(rows + growth·t)
            assert plan.cost_per_row is not None  # filled in by validation
            self._plan_rows = plan.rows
            self._plan_growth = plan.growth
            self._plan_cost = plan.cost_per_row
            self._plan_a0 = spec.cpu + plan.cost_per_row * plan.rows
            self._plan_a1 = plan.cost_per_row * plan.growth
            self._issue = self._issue_index if plan.access == "index" else self._issue_scan  # type: ignore[method-assign]
        keys = sim.stream(path + ".keys")
        self._keys = (
            bounded_zipf(keys, spec.keys.count, spec.keys.s)
            if spec.keys.distribution == "zipf"
            else integers(keys, spec.keys.count)
        )
        self._sessions = integers(sim.stream(path + ".sessions"), service.spec.sessions)
        # row locks (model.locks): the request's key and locks-1 more from the key distribution (assumed: a
        # transaction's other rows are as popular as its first), drawn from their own stream so the recorded
        # keys are the same with or without locks
        self.n_locks = spec.transaction.locks if spec.transaction is not None else 0
        self.locking = self.n_locks > 0
        if self.locking and spec.plan is None:  # a plan's issue path takes the locks too
            self._issue = self._issue_locking  # type: ignore[method-assign]
        if self.n_locks > 1:
            more = sim.stream(path + ".locks")
            self._lock_keys = (
                bounded_zipf(more, spec.keys.count, spec.keys.s)
                if spec.keys.distribution == "zipf"
                else integers(more, spec.keys.count)
            )
        self.retries = spec.retries
        self.idempotent = bool(spec.idempotent)
        self.retried = 0  # requests sent again
        self._retry_wait = (
            Backoff(service.spec.reconnect, uniforms(sim.stream(path + ".retries"))) if spec.retries else None
        )
        self._redispatch_callbacks = (self._redispatch,)
        self._lost_callbacks = (self._lost_now,)
        self._read_only_callbacks = (self._read_only_now,)
        # an error from the server (read_only, a reset connection) reaches the client one round trip after
        # the request was sent (assumed: the cross-AZ round trip, FACTS: network.cross_az_rtt)
        self.round_trip = sim.scenario.cluster.storage.cross_az_rtt
        tx = spec.transaction
        self.hold = (tx.hold + tx.external_call) if tx else 0.0
        self.storage = sim.storage
        self.is_write = spec.kind == "write"
        # bound once: a read without a hold goes straight from its CPU burst to _finish; a write commits
        # (FACTS: storage.quorum) after its hold, then finishes
        if self.is_write:
            self._after_cpu = self._hold_then_commit if self.hold else self._commit
        else:
            self._after_cpu = self._hold_then_finish if self.hold else self._finish
        self._after_hold = self._commit if self.is_write else self._finish
        self._hold_callbacks = (self._hold_done,)
        # a write's commit ends in _committed (IO load ends, row locks go), then _finish
        self._finish_callbacks = (self._committed_locked if self.locking else self._committed,)
        self.followers: list[QueryClass] = []
        self._follow_u = uniforms(sim.stream(path + ".follows")) if spec.follows is not None else None
        self._pending_callbacks = (self._issue_pending,)
        self._user_callbacks = (self._user_arrives,)
        self._record = sim.rec.request
        self._schedule = sim.env.schedule
        self.breaker = service.breaker_outcome
        if spec.follows is not None:
            pass  # requests come from the query it follows
        elif spec.users is not None:
            self._think = exponentials(sim.stream(path + ".users"))
            for user in range(spec.users):
                _User(self, user).think()
        else:
            starts, rates = rate_steps(sim.scenario, service.spec, spec)
            gaps = (
                exponentials(sim.stream(path + ".arrivals"))
                if spec.arrival == "poisson"
                else itertools.repeat(1.0)
            )
            _OpenArrivals(self, starts, rates, sim.scenario.duration, gaps)

    def new_request(self, now: float, user: _User | None) -> None:
        session = next(self._sessions) if user is None else user.session
        self._issue(now, next(self._keys), session, user)

    def _issue(self, now: float, key: int, session: int, user: _User | None) -> None:
        req = Request()
        req.query = self
        req.t_arrive = now
        req.key = key
        req.session = session
        req.user = user
        req.cpu = self.cpu_mean * next(self._cpu_draws) if self._cpu_draws is not None else self.cpu_mean
        req.after_cpu = self._after_cpu
        req.waiting = False
        req.t_acq = NAN
        req.t_start = NAN
        req.attempt = 0
        self.sim.arrived += 1
        self.service.dispatch(req)

    # A query with a plan or row locks issues through one of these (bound in __init__) instead of _issue: a
    # copy of its body with the mean CPU taken at the arrival and the locks drawn, so queries without either
    # pay nothing for the features.

    def _issue_scan(self, now: float, key: int, session: int, user: _User | None) -> None:
        self._issue_mean(now, key, session, user, self._plan_a0 + self._plan_a1 * now)

    def _issue_index(self, now: float, key: int, session: int, user: _User | None) -> None:
        rows = self._plan_rows + self._plan_growth * now
        self._issue_mean(now, key, session, user, self.cpu_mean + self._plan_cost * math.log2(rows))

    def _issue_locking(self, now: float, key: int, session: int, user: _User | None) -> None:
        self._issue_mean(now, key, session, user, self.cpu_mean)

    def _issue_mean(self, now: float, key: int, session: int, user: _User | None, mean: float) -> None:
        if self.locking:
            req = LockingRequest()
            req.lock_keys = self._keys_to_lock(key)
            req.n_locked = 0
        else:
            req = Request()
        req.query = self
        req.t_arrive = now
        req.key = key
        req.session = session
        req.user = user
        req.cpu = mean * next(self._cpu_draws) if self._cpu_draws is not None else mean
        req.after_cpu = self._after_cpu
        req.waiting = False
        req.t_acq = NAN
        req.t_start = NAN
        req.attempt = 0
        self.sim.arrived += 1
        self.service.dispatch(req)

    def _keys_to_lock(self, key: int) -> tuple[int, ...]:
        if self.n_locks == 1:
            return (key,)
        draws = self._lock_keys
        return tuple(sorted({key, *(next(draws) for _ in range(self.n_locks - 1))}))

    def _hold_then_finish(self, req: Request) -> None:
        # the session sits idle in its transaction (app work, an external call) before it commits
        req.tx = req.conn.instance.hold_begins(req.conn, self.hold, req=req if self.locking else None)
        req.callbacks = self._hold_callbacks
        self._schedule(req, NORMAL, self.hold)

    _hold_then_commit = _hold_then_finish

    def _hold_done(self, req: Request) -> None:
        conn = req.conn
        conn.instance.hold_ends(req.tx)
        if conn.broken and req.t_start > conn.instance.broken_before:
            # the server ended the session while it was idle (idle_in_transaction_session_timeout)
            self.lost(req)
            return
        self._after_hold(req)

    def _commit(self, req: Request) -> None:
        inst = req.conn.instance
        if req.t_start <= inst.broken_before:
            self.lost(req)
            return
        # IO load until the commit is durable (or given up)
        inst.io_n += 1
        inst.io_acc -= self.env._now
        latency = self.storage.commit_latency()
        if latency < 0.0:
            self.storage.no_quorum(req, self)
            return
        req.callbacks = self._finish_callbacks
        self._schedule(req, NORMAL, latency)

    def _committed(self, req: Request) -> None:
        """The commit is durable: the session leaves IO load."""
        inst = req.conn.instance
        inst.io_n -= 1
        inst.io_acc += self.env._now
        self._finish(req)

    def _committed_locked(self, req: Request) -> None:
        """The commit is durable: IO load ends and the row locks go to their next waiters."""
        inst = req.conn.instance
        inst.io_n -= 1
        inst.io_acc += self.env._now
        inst.locks.release(req)
        self._finish(req)

    def _finish(self, req: Request) -> None:
        conn = req.conn
        if req.t_start <= conn.instance.broken_before:
            self.lost(req)
            return
        if not self.storage.read_ok and not self.is_write and conn.instance.region == self.storage.region:
            self.end(req, QUORUM_UNAVAILABLE)
            return
        req.pool.release(conn)
        if self.breaker is not None:
            self.breaker(req, OK)
        now = self.env._now
        self._record(
            req.t_arrive,
            req.t_acq,
            req.t_start,
            now,
            req.key,
            req.session,
            req.task,
            self.index,
            conn.instance.index,
            OK,
        )
        if self.followers:
            for follower in self.followers:
                follower.follow(req.key, req.session)
        if req.user is not None:
            req.user.done()

    def lost(self, req: Request) -> None:
        """The request's connection died under it: connection_lost after a round trip (a reset), or, when
        the host is unreachable, once the client's socket timeout (or the OS's TCP give-up) has passed
        since it was sent."""
        conn = req.conn
        if conn.address.unreachable:
            timeout = req.pool.socket_timeout or TCP_GIVE_UP_S
            wait = max(req.t_acq + timeout - self.env._now, 0.0)
        else:
            wait = self.round_trip
        req.callbacks = self._lost_callbacks
        self._schedule(req, NORMAL, wait)

    def _lost_now(self, req: Request) -> None:
        self.end(req, CONNECTION_LOST)

    def read_only(self, req: Request) -> None:
        """A write reached a read-only instance: the server rejects it, the error comes back."""
        req.callbacks = self._read_only_callbacks
        self._schedule(req, NORMAL, self.round_trip)

    def _read_only_now(self, req: Request) -> None:
        self.end(req, READ_ONLY)

    def commit_failed(self, req: Request) -> None:
        """No write quorum, and the commit gave up waiting for one."""
        self._leave_io(req)
        self.end(req, QUORUM_UNAVAILABLE)

    def commit_resumed(self, req: Request) -> None:
        """The write quorum is back: the commit is tried again."""
        self._leave_io(req)
        self._commit(req)

    def _leave_io(self, req: Request) -> None:
        inst = req.conn.instance
        inst.io_n -= 1
        inst.io_acc += self.env._now

    def lock_timeout(self, req: Request) -> None:
        """A row-lock wait outlasted lock_timeout: the statement fails and the app rolls back."""
        self.end(req, LOCK_TIMEOUT)

    def end(self, req: Request, code: int) -> None:
        """The request fails while holding a connection (on an instance, or waiting for storage)."""
        conn = req.conn
        if self.locking:
            conn.instance.locks.release(req)  # the transaction aborts
        req.pool.release(conn, code)
        if self.breaker is not None:
            self.breaker(req, code)
        if self._retry(req, code):
            return
        self._record(
            req.t_arrive,
            req.t_acq,
            req.t_start,
            self.env._now,
            req.key,
            req.session,
            req.task,
            self.index,
            conn.instance.index,
            code,
        )
        if req.user is not None:
            req.user.done()

    def _retry(self, req: Request, code: int) -> bool:
        """Send the request again after a backoff, if it has retries left and that is safe."""
        if req.attempt >= self.retries or not (
            code in RETRY_SAFE or (code == CONNECTION_LOST and self.idempotent)
        ):
            return False
        assert self._retry_wait is not None
        req.attempt += 1
        self.retried += 1
        req.callbacks = self._redispatch_callbacks
        self._schedule(req, NORMAL, self._retry_wait.wait(req.attempt))
        return True

    def _redispatch(self, req: Request) -> None:
        req.waiting = False
        req.t_acq = NAN
        req.t_start = NAN
        self.service.dispatch(req)

    # ------------------------------------------------------- read-after-write

    def follow(self, key: int, session: int) -> None:
        """The query this one follows completed: issue this one for the same key and session."""
        follows = self.spec.follows
        assert follows is not None and self._follow_u is not None
        if follows.fraction < 1.0 and next(self._follow_u) >= follows.fraction:
            return
        if follows.delay > 0.0:
            pending = _Pending(self._pending_callbacks, key, session)
            self._schedule(pending, NORMAL, follows.delay)
        else:
            self._issue(self.env._now, key, session, None)

    def _issue_pending(self, pending: _Pending) -> None:
        self._issue(self.env._now, pending.key, pending.session, None)

    def fail(self, req: Request, code: int) -> None:
        """The request ends without a result, before it reached an instance."""
        if self.breaker is not None and code != CIRCUIT_OPEN:
            self.breaker(req, code)
        if self._retry(req, code):
            return
        self._record(
            req.t_arrive, req.t_acq, NAN, self.env._now, req.key, req.session, req.task, self.index, -1, code
        )
        if req.user is not None:
            req.user.done()

    def _user_arrives(self, user: _User) -> None:
        self.new_request(self.env._now, user)


class _Pending:
    """A follow-up read waiting for its delay."""

    __slots__ = ("callbacks", "key", "session")
    _ok = True

    def __init__(self, callbacks: tuple, key: int, session: int) -> None:
        self.callbacks = callbacks
        self.key = key
        self.session = session


class _User:
    """A closed-loop user: think, send one request, wait for its end (``done``), think again."""

    __slots__ = ("callbacks", "query", "session")
    _ok = True

    def __init__(self, query: QueryClass, session: int) -> None:
        self.query = query
        self.session = session
        self.callbacks: Any = None

    def think(self) -> None:
        q = self.query
        self.callbacks = q._user_callbacks
        q._schedule(self, NORMAL, q.spec.think * next(q._think))

    done = think


class _OpenArrivals:
    """Open arrivals (Poisson or evenly spaced) with a piecewise-constant rate; reschedules itself, one heap entry at a time."""

    __slots__ = ("_callbacks", "callbacks", "draws", "end", "query", "rates", "seg", "starts")
    _ok = True

    def __init__(
        self, query: QueryClass, starts: list[float], rates: list[float], end: float, draws: Any
    ) -> None:
        self.query = query
        self.starts = starts
        self.rates = rates
        self.end = end
        self.draws = draws
        self.seg = 0
        self._callbacks = (self._arrive,)
        self.callbacks: Any = None
        self._next_from(0.0)

    def _next_from(self, t: float) -> None:
        starts, rates = self.starts, self.rates
        n = len(starts)
        seg = self.seg
        while seg < n:
            seg_end = starts[seg + 1] if seg + 1 < n else self.end
            rate = rates[seg]
            if rate > 0.0:
                t_next = t + next(self.draws) / rate
                if t_next < seg_end:
                    self.seg = seg
                    self.callbacks = self._callbacks
                    self.query._schedule(self, NORMAL, t_next - self.query.env._now)
                    return
            t = seg_end
            seg += 1
        self.seg = seg

    def _arrive(self, _: Any) -> None:
        now = self.query.env._now
        self.query.new_request(now, None)
        self._next_from(now)
