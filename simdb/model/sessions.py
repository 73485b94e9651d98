"""Sessions that keep a transaction open: the `idle_in_transaction`, `long_transaction` and
`batch_update` events.

Each session takes a connection from one of the service's task pools like a request does (waiting up to
the pool's connection_timeout), runs its first statement on the instance, then holds the transaction open:
idle (a leaked transaction: the server's idle_in_transaction_session_timeout may end it) or busy (a long
batch: the timeout does not apply). When it ends, the app commits; if the server ended the session
meanwhile, the commit fails connection_lost and the pool discards the connection. Sessions are not
requests: they are logged on their own (``transactions`` in the summary), not in the request columns.

A `long_transaction` with ``keys`` and a `batch_update` lock a range of keys (ascending, like every
transaction: :mod:`.locks`) before their first statement, and hold them until they end. An idle session is
Client load while it holds its transaction; a busy one's own statements are not modelled, so it adds no
DB load: the requests it blocks show as Lock load.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..record import CODE, CODES
from ..units import format_duration
from .instance import NORMAL
from .workload import NAN, LockingRequest, Request

if TYPE_CHECKING:
    from ..engine import Sim
    from .services import ServiceRuntime

CONNECTION_LOST = CODE["connection_lost"]
BEGIN_CPU_S = 0.001  # assumed: BEGIN and the first statement cost 1 ms of DB CPU


class _NoPins:
    pins = False


class HeldSessions:
    """The sessions of one event. Acts as the query class of its requests (``req.query``)."""

    is_write = False
    spec = _NoPins()

    def __init__(self, sim: Sim, ev: Any, index: int) -> None:
        self.sim = sim
        self.env = sim.env
        self.ev = ev
        self.index = index
        self.idle = ev.action == "idle_in_transaction"
        self.hold = (ev.for_ if ev.for_ is not None else math.inf) if self.idle else ev.duration
        self.sessions = getattr(ev, "sessions", 1)
        self.keys = getattr(ev, "keys", 0)  # row locks per session
        self.first_key = getattr(ev, "first_key", 0)
        self.service: ServiceRuntime = sim.service(ev.service)
        routes = self.service.spec.routes()
        via = self.service.spec.connect_via
        self.route_slot = routes.index(via) if via in routes else 0
        self._end_callbacks = (self._end,)
        self.began_t: list[float] = []  # when each session's transaction began
        self.txs: list[Any] = []  # their handles: when the server ended them
        self.outcomes: list[str] = []  # how each that ended did: ok, connection_lost, not_started:<code>
        self.env.process(self._start())

    def _start(self):  # type: ignore[no-untyped-def]
        yield self.env.timeout(self.ev.at)
        now = self.env.now
        ev = self.ev
        how_long = f"for {format_duration(self.hold)}" if math.isfinite(self.hold) else "until the run ends"
        if ev.action == "batch_update":
            last = self.first_key + self.keys - 1
            detail = f"a batch locks keys {self.first_key}..{last} and holds them {how_long}"
        else:
            what = "idle in a transaction" if self.idle else "in a long transaction"
            detail = f"{self.sessions} sessions {what} {how_long}"
            if self.keys:
                detail += f", each holding {self.keys} row locks"
        self.sim.rec.event(now, ev.action, ev.service, detail)
        for session in range(self.sessions):
            if self.keys:
                req: Request = LockingRequest()
                first = self.first_key + session * self.keys
                req.lock_keys = range(first, first + self.keys)
                req.n_locked = 0
            else:
                req = Request()
            req.query = self
            req.t_arrive = now
            req.key = -1
            req.session = session
            req.user = None
            req.cpu = BEGIN_CPU_S
            req.after_cpu = self._began
            req.waiting = False
            req.t_acq = NAN
            req.t_start = NAN
            req.attempt = 0
            req.tx = None
            self.service.dispatch(req)

    def _began(self, req: Request) -> None:
        conn = req.conn
        inst = conn.instance
        if req.t_start <= inst.broken_before or conn.broken:
            self.lost(req)
            return
        now = self.env._now
        self.began_t.append(now)
        req.tx = inst.hold_begins(
            conn,
            self.hold,
            idle=self.idle,
            label=f"{self.ev.service} session {req.session}",
            req=req if self.keys else None,
        )
        if self.keys:
            self.sim.rec.event(
                now,
                "locks_held",
                self.ev.service,
                f"{self.ev.action} session {req.session} holds {self.keys} row locks, "
                f"{now - req.t_arrive:g} s after it asked for a connection",
            )
        if req.tx is not None:
            self.txs.append(req.tx)
        if math.isfinite(self.hold) and now + self.hold < self.sim.scenario.duration:
            req.callbacks = self._end_callbacks
            self.env.schedule(req, NORMAL, self.hold)

    def _end(self, req: Request) -> None:
        """The app commits: fine, unless the server ended the session meanwhile."""
        conn = req.conn
        conn.instance.hold_ends(req.tx)
        if self.keys:
            conn.instance.locks.release(req)
            if not conn.broken:  # a failed instance dropped them already
                self.sim.rec.event(
                    self.env._now,
                    "locks_released",
                    self.ev.service,
                    f"{self.ev.action} session {req.session}",
                )
        if conn.broken:
            self.outcomes.append("connection_lost")
            req.pool.release(conn, CONNECTION_LOST)
        else:
            self.outcomes.append("ok")
            req.pool.release(conn)

    # what the pools and the proxy call on a request's query class
    def fail(self, req: Request, code: int) -> None:
        self.outcomes.append("not_started:" + CODES[code])

    def lost(self, req: Request) -> None:
        if self.keys:
            req.conn.instance.locks.release(req)
        self.outcomes.append("connection_lost")
        req.pool.release(req.conn, CONNECTION_LOST)

    def lock_timeout(self, req: Request) -> None:
        """A row lock stayed taken longer than lock_timeout: the session rolls back and gives up."""
        self.outcomes.append("lock_timeout")
        req.pool.release(req.conn)

    def read_only(self, req: Request) -> None:  # sessions do not write: never called
        raise AssertionError("a held session does not write")

    def log(self) -> dict[str, Any]:
        return {
            "event": self.index,
            "action": self.ev.action,
            "service": self.ev.service,
            "sessions": self.sessions,
            "keys": self.keys,
            "began_t": list(self.began_t),
            "terminated": [(tx.start, tx.ended) for tx in self.txs if not math.isnan(tx.ended)],
            "outcomes": list(self.outcomes),
        }


def schedule_sessions(sim: Sim, ev: Any, index: int) -> None:
    sim.sessions.append(HeldSessions(sim, ev, index))
