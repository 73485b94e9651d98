"""Lambda functions (``services[].kind: lambda``): concurrency, scaling rate, throttles, cold starts and
frozen environments (FACTS: lambda.scaling, lambda.account, lambda.frozen).

Each invocation needs an execution environment for its whole run; the function's concurrency is the
number of invocations running. An invocation is admitted when

- the function is under its reserved concurrency, or, without a reservation, the account's unreserved
  concurrency (account limit minus every reservation) has room (FACTS: lambda.account, lambda.reserved);
- and concurrency would not rise more than 1,000 above its lowest level in the last 10 s
  (FACTS: lambda.scaling).

Otherwise it is throttled (429): a sync invocation fails ``throttled``; an async one is retried by Lambda
with backoff until ``max_event_age`` (FACTS: lambda.async_retry). An admitted invocation reuses the most
recently frozen environment (assumed), or starts a new one: a cold start, with an init duration drawn from
``init``, during which a ``per_environment`` connection is opened. The handler then spends ``work``, and runs
its query on the environment's one connection (opened now if it has none). A frozen environment keeps its
connection open on the server until it is reclaimed, ``reclaim_after`` after its last invocation
(FACTS: lambda.frozen). ``per_invocation`` closes the connection at the end of each invocation.

Like a plain driver connection, an environment's connection is not validated: one broken by a failover
fails the next query ``connection_lost`` and is then dropped; one that reaches a demoted writer keeps
answering ``read_only``.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from ..record import CODE
from ..rng import uniforms
from .endpoints import Resolver
from .instance import NORMAL
from .pool import Backoff, Connection, open_connection
from .storage import lognormal_params

if TYPE_CHECKING:
    from ..engine import Sim
    from ..scenario import Service
    from .endpoints import Endpoint
    from .workload import Request

THROTTLED = CODE["throttled"]
CONNECTION_LOST = CODE["connection_lost"]
SCALING_STEP = 1000  # FACTS: lambda.scaling (environments per window)
SCALING_WINDOW_S = 10.0  # FACTS: lambda.scaling
RECLAIM_CHECK_S = 10.0  # assumed: how often idle environments are looked at for reclaiming
# async retries of throttled events: 1 s doubling up to 5 min (FACTS: lambda.async_retry)
ASYNC_FIRST_S = 1.0
ASYNC_MAX_S = 300.0


class Account:
    """Account-wide concurrency shared by the scenario's functions."""

    def __init__(self, limit: int, reserved: int) -> None:
        self.limit = limit
        self.unreserved = limit - reserved
        self.unreserved_in_use = 0


class ExecutionEnvironment:
    """One execution environment: runs one invocation at a time, holds at most one connection."""

    __slots__ = (
        "callbacks",
        "conn",
        "connect_timeout",
        "env",
        "id",
        "idle_since",
        "last_error",
        "reclaim_at",
        "req",
        "resolver",
        "runtime",
        "service",
        "setup_cpu_s",
        "setup_s",
        "sim",
        "socket_timeout",
        "t_handler",
        "total",
    )
    _ok = True

    def __init__(self, runtime: LambdaRuntime, env_id: int) -> None:
        self.runtime = runtime
        self.sim = runtime.sim
        self.env = runtime.env
        self.service = runtime
        self.id = env_id
        self.conn: Connection | None = None
        self.resolver = Resolver(runtime.endpoints[0], runtime.spec.dns_cache, runtime.dns_age)
        pool = runtime.spec.pool
        self.connect_timeout = pool.connect_timeout
        self.socket_timeout = pool.socket_timeout
        self.setup_s = runtime.sim.scenario.cluster.connection.setup
        self.setup_cpu_s = runtime.sim.scenario.cluster.connection.setup_cpu
        self.last_error = 0
        self.total = 0
        self.idle_since = 0.0
        self.reclaim_at = math.inf
        self.t_handler = 0.0
        self.req: Any = None
        self.callbacks: Any = None

    # ------------------------------------------------------------ invocation

    def cold_start(self, req: Request, init_s: float):  # type: ignore[no-untyped-def]
        yield self.env.timeout(init_s)
        error = 0
        if self.runtime.per_environment:
            conn = yield from open_connection(self, self.resolver)
            if conn is None:
                error = self.last_error
            else:
                self.conn = conn
        self.start(req, error)

    def start(self, req: Request, error: int = 0) -> None:
        """The handler starts (after init on a cold start)."""
        self.t_handler = self.env._now
        if error:
            req.query.fail(req, error)
            return
        work = self.runtime.work
        if work > 0.0:
            self.req = req
            self.callbacks = self.runtime._work_callbacks
            self.runtime.schedule(self, NORMAL, work)
        else:
            self.query(req)

    def query(self, req: Request) -> None:
        """Run the handler's query on the environment's connection, opening one if it has none."""
        conn = self.conn
        if conn is None or conn.closed:
            self.env.process(self._connect_then(req))
            return
        self._lend(req, conn)

    def _connect_then(self, req: Request):  # type: ignore[no-untyped-def]
        conn = yield from open_connection(self, self.resolver)
        if conn is None:
            req.query.fail(req, self.last_error)
            return
        self.conn = conn
        self._lend(req, conn)

    def _lend(self, req: Request, conn: Connection) -> None:
        conn.lent = True
        req.conn = conn
        req.pool = self
        req.t_acq = self.env._now
        if conn.broken:
            req.query.lost(req)
        elif conn.instance.read_only and req.query.is_write:
            req.query.read_only(req)
        else:
            conn.instance.submit(req)

    # the workload calls these on req.pool / req.user
    def release(self, conn: Connection, code: int = 0) -> None:
        conn.lent = False
        conn.last_used = self.env._now
        if code == CONNECTION_LOST or conn.broken or not self.runtime.per_environment:
            self.close()

    def watch(self, conn: Connection) -> None:
        """A frozen environment runs no keepalive: a blackholed connection is found when next used."""

    def done(self) -> None:
        self.runtime.finished(self)

    def close(self) -> None:
        conn = self.conn
        self.conn = None
        if conn is not None and not conn.closed:
            conn.closed = True
            self.total -= 1
            if not conn.broken:
                conn.instance.disconnect(self.runtime.index, conn.id)


class _Throttled:
    """An async event waiting for Lambda's next try after a throttle."""

    __slots__ = ("callbacks", "req", "tries")
    _ok = True

    def __init__(self, callbacks: tuple, req: Request, tries: int) -> None:
        self.callbacks = callbacks
        self.req = req
        self.tries = tries


class LambdaRuntime:
    """One Lambda function: admission, environments, and the logs the analysis reads."""

    kind = "lambda"
    breaker_outcome = None  # no circuit breaker

    def __init__(
        self, sim: Sim, index: int, spec: Service, endpoints: list[Endpoint], account: Account
    ) -> None:
        self.sim = sim
        self.env = sim.env
        self.index = index
        self.spec = spec
        self.endpoints = endpoints
        self.account = account
        self.schedule = sim.env.schedule
        name = spec.name
        self.pick = uniforms(sim.stream(f"services.{name}.dns"))
        self.dns_age = uniforms(sim.stream(f"services.{name}.resolver"))
        self.reconnect = Backoff(spec.reconnect, uniforms(sim.stream(f"services.{name}.reconnect")))
        self._init_rng = sim.stream(f"services.{name}.init")
        self._reclaim_u = uniforms(sim.stream(f"services.{name}.reclaim"))
        self._init_mu, self._init_sigma = lognormal_params(spec.init)
        self.reserved = spec.reserved_concurrency
        self.per_environment = spec.connection == "per_environment"
        self.work = spec.work
        self.is_async = spec.invocation_type == "async"
        self.max_event_age = spec.max_event_age
        self.concurrency = 0
        self.environments = 0
        self.idle: list[ExecutionEnvironment] = []
        self._next_id = 0
        # concurrency after each change in the last SCALING_WINDOW_S, behind a sentinel at -inf
        self._history: deque[tuple[float, int]] = deque([(-math.inf, 0)])
        # the same changes as a monotonic queue: its front is the lowest level set within the window
        self._lows: deque[tuple[float, int]] = deque()
        self._work_callbacks = (self._work_done,)
        self._retry_callbacks = (self._retry_throttled,)
        # logs (columns) for the analysis
        self.conc_t = array("d")
        self.conc_delta = array("b")
        self.cold_t = array("d")
        self.init_s = array("d")
        self.throttle_t = array("d")
        self.end_t = array("d")
        self.duration_s = array("d")
        self.env_t = array("d")  # environments created (+1) and reclaimed (-1)
        self.env_delta = array("b")
        self.env.process(self._reclaimer())

    # ------------------------------------------------------------------ admission

    def _window_low(self, now: float) -> int:
        """The lowest concurrency at any time in the last SCALING_WINDOW_S: the level at its start, or
        any level set since."""
        history = self._history
        cut = now - SCALING_WINDOW_S
        while len(history) > 1 and history[1][0] <= cut:
            history.popleft()
        lows = self._lows
        while lows and lows[0][0] <= cut:
            lows.popleft()
        low = history[0][1]
        return min(low, lows[0][1]) if lows else low

    def _admit(self, now: float) -> bool:
        if self.reserved is not None:
            if self.concurrency >= self.reserved:
                return False
        elif self.account.unreserved_in_use >= self.account.unreserved:
            return False
        # concurrency may not rise more than SCALING_STEP above where it was at any time in the window
        return self.concurrency + 1 - self._window_low(now) <= SCALING_STEP

    def _change(self, now: float, delta: int) -> None:
        self.concurrency += delta
        if self.reserved is None:
            self.account.unreserved_in_use += delta
        level = self.concurrency
        self._history.append((now, level))
        lows = self._lows
        while lows and lows[-1][1] >= level:
            lows.pop()
        lows.append((now, level))
        self.conc_t.append(now)
        self.conc_delta.append(delta)

    def dispatch(self, req: Request) -> None:
        user = req.user
        if user is not None:  # the handler retries its query in the same environment
            user.query(req)
            return
        now = self.env._now
        if not self._admit(now):
            self.throttle_t.append(now)
            req.task = -1
            if self.is_async:
                self._throttled_async(req, 1)
            else:
                req.query.fail(req, THROTTLED)
            return
        self._change(now, 1)
        req.t_try = now
        if self.idle:
            env = self.idle.pop()
            env.reclaim_at = math.inf
            req.user = env
            req.task = env.id
            env.start(req)
            return
        env = ExecutionEnvironment(self, self._next_id)
        self._next_id += 1
        self.environments += 1
        self.env_t.append(now)
        self.env_delta.append(1)
        req.user = env
        req.task = env.id
        init = float(self._init_rng.lognormal(self._init_mu, self._init_sigma))
        self.cold_t.append(now)
        self.init_s.append(init)
        self.env.process(env.cold_start(req, init))

    def _throttled_async(self, req: Request, tries: int) -> None:
        wait = min(ASYNC_MAX_S, ASYNC_FIRST_S * 2.0 ** (tries - 1))
        if self.env._now + wait - req.t_arrive > self.max_event_age:
            req.query.fail(req, THROTTLED)  # the event is dropped
            return
        self.schedule(_Throttled(self._retry_callbacks, req, tries), NORMAL, wait)

    def _retry_throttled(self, token: _Throttled) -> None:
        req = token.req
        now = self.env._now
        if not self._admit(now):
            self.throttle_t.append(now)
            self._throttled_async(req, token.tries + 1)
            return
        req.user = None
        self.dispatch(req)

    def _work_done(self, env: ExecutionEnvironment) -> None:
        req = env.req
        env.req = None
        env.query(req)

    def finished(self, env: ExecutionEnvironment) -> None:
        """An invocation ended (its request is recorded): the environment is frozen until the next one."""
        now = self.env._now
        self._change(now, -1)
        self.end_t.append(now)
        self.duration_s.append(now - env.t_handler)
        env.idle_since = now
        span = self.spec.reclaim_after
        env.reclaim_at = now + span.min + (span.max - span.min) * next(self._reclaim_u)
        self.idle.append(env)

    def _reclaimer(self):  # type: ignore[no-untyped-def]
        while True:
            yield self.env.timeout(RECLAIM_CHECK_S)
            now = self.env._now
            if not any(e.reclaim_at <= now for e in self.idle):
                continue
            kept = []
            for env in self.idle:
                if env.reclaim_at <= now:
                    env.close()
                    self.environments -= 1
                    self.env_t.append(now)
                    self.env_delta.append(-1)
                else:
                    kept.append(env)
            self.idle = kept

    # ------------------------------------------------------------------ results

    def sample(self, rows: dict[str, list[float]]) -> None:
        rows.setdefault(f"Environments.{self.spec.name}", []).append(float(self.environments))

    def log(self) -> dict[str, np.ndarray]:
        return {
            "conc_t": np.frombuffer(self.conc_t, dtype=np.float64),
            "conc_delta": np.frombuffer(self.conc_delta, dtype=np.int8).astype(np.int64),
            "cold_t": np.frombuffer(self.cold_t, dtype=np.float64),
            "init_s": np.frombuffer(self.init_s, dtype=np.float64),
            "throttle_t": np.frombuffer(self.throttle_t, dtype=np.float64),
            "end_t": np.frombuffer(self.end_t, dtype=np.float64),
            "duration_s": np.frombuffer(self.duration_s, dtype=np.float64),
            "env_t": np.frombuffer(self.env_t, dtype=np.float64),
            "env_delta": np.frombuffer(self.env_delta, dtype=np.int8).astype(np.int64),
        }
