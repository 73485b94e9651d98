"""Rule-based diagnosis of a run: what its results show, in the course's Why / Detect / Fix form.

Each rule reads summary.json, timeseries.csv and events.csv (never the model) and returns findings that
cite the metric that triggered them, with units, and the time range in seconds from the start of the run.
Thresholds are stated in each finding's Detect text. Finding ids are a public interface: keep them stable.

>>> explain({"requests": {"total": 100, "errors": {}}}, pd.DataFrame(), pd.DataFrame())
[]
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SimdbError

# Error shares above this fail the run's requests noticeably: the error budget of a 99% success objective
# (assumed; a common availability target, not an AWS figure)
ERROR_SHARE = 0.01
# HikariCP caps its reconnect backoff at 5 s (FACTS: hikari.fill): a client that can reach the new writer
# writes again within one capped backoff of resolving its address
BACKOFF_CAP_S = 5.0
# a reconnect storm grows the clients' connections by more than half over what they held before the fault
# (assumed: at steady state a pool holds min_idle idle connections plus the busy ones; load fluctuations
# move that by far less)
STORM_GROWTH = 1.5
# the idle_in_transaction_session_timeout the course recommends (FACTS: acu.idle_txn): capacity pinned
# longer than this means a transaction stayed open longer than that fix would allow
PIN_LIMIT_S = 60.0
# Aurora: commits need 4 of the 6 copies (FACTS: storage.quorum)
WRITE_QUORUM = 4
# lock contention: sessions spend more time waiting for row locks than on CPU, at least one average active
# session of it (assumed: Performance Insights' reading of a lock-bound workload; below one session the wait
# is noise next to the work)
LOCK_MIN_SESSIONS = 1.0
# a churn wave: at steady state, half the clients' connections reopened within one second (assumed: pools
# with HikariCP's lifetime variation reopen a few percent per second at most), in a fleet of at least
# CHURN_MIN_CONNECTIONS (fewer handshakes cannot load an instance), away from any event (deploys,
# failovers and scaling reopen connections for their own reasons, judged by other rules), and at least
# twice, 10 s or more apart
CHURN_SHARE = 0.5
CHURN_MIN_CONNECTIONS = 50
CHURN_STEADY = 0.9
CHURN_EVENT_GAP_S = 60.0

SEVERITIES = ("critical", "warning")


@dataclass(frozen=True)
class Finding:
    """One diagnosis. ``severity``: ``critical`` (requests failed or returned wrong data) or ``warning``
    (cost or risk without failures). ``metric`` is a summary.json key or a timeseries.csv column, ``source``
    says which, ``unit`` its unit; ``t_start``/``t_end`` are seconds from the start of the run."""

    id: str
    title: str
    severity: str
    why: str
    detect: str
    fix: str
    metric: str
    source: str
    unit: str
    t_start: float
    t_end: float
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (numpy numbers as Python ones, NaN as null)."""
        return _plain(asdict(self))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    if isinstance(node, np.generic):
        node = node.item()
    if isinstance(node, float) and not math.isfinite(node):
        return None
    return node


class Context:
    """The run's three tables, with the helpers every rule needs."""

    def __init__(self, summary: dict[str, Any], timeseries: pd.DataFrame, events: pd.DataFrame) -> None:
        self.summary = summary
        self.ts = timeseries if timeseries is not None else pd.DataFrame()
        self.events = events if events is not None else pd.DataFrame()
        self.duration = float(summary.get("duration_s", 0.0))
        self.warmup = float(summary.get("warmup_s", 0.0))
        times = self.ts["time_s"].to_numpy(dtype=np.float64) if "time_s" in self.ts else np.zeros(0)
        self.times = times
        if times.size >= 2:
            self.interval = float(times[1] - times[0])
        else:
            self.interval = self.duration or 1.0
        # rows whose interval overlaps the measured window (after warm-up)
        self.measured = times + self.interval > self.warmup

    def get(self, path: str, default: Any = 0) -> Any:
        node: Any = self.summary
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def column(self, name: str) -> np.ndarray | None:
        if name not in self.ts:
            return None
        return self.ts[name].to_numpy(dtype=np.float64)

    def columns(self, prefix: str) -> list[str]:
        return [c for c in self.ts.columns if c.startswith(prefix)]

    def active(
        self,
        mask: np.ndarray | None,
        start: float | None = None,
        end: float | None = None,
        at_end: bool = False,
    ) -> tuple[float, float] | None:
        """(first interval's start, last interval's end) of the measured rows where ``mask`` holds and that
        overlap [start, end]; None when there are none. ``at_end``: the column is a level sampled at the
        end of each interval, so a row's condition began within it and lasted into the next one."""
        if mask is None or mask.size == 0:
            return None
        keep = mask & self.measured
        if start is not None:
            keep &= self.times + self.interval > start
        if end is not None:
            keep &= self.times < end
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            return None
        shift = self.interval if at_end else 0.0
        first = float(self.times[rows[0]] + shift)
        return first, float(min(self.times[rows[-1]] + self.interval + shift, self.duration))

    def total_in(self, column: str, start: float, end: float) -> float:
        """Sum of a per-second column × interval over the measured rows starting in [start, end)."""
        values = self.column(column)
        if values is None:
            return 0.0
        keep = self.measured & (self.times >= start) & (self.times < end)
        return float(np.nansum(values[keep]) * self.interval)

    def mean_in(self, column: str, start: float, end: float) -> float | None:
        """Mean of a column over the rows overlapping [start, end); None without data."""
        values = self.column(column)
        if values is None:
            return None
        chosen = values[(self.times + self.interval > start) & (self.times < end)]
        chosen = chosen[np.isfinite(chosen)]
        return float(chosen.mean()) if chosen.size else None

    def extreme(self, column: str, highest: bool = True) -> float | None:
        """Largest (or smallest) value of a column in the measured rows; None without data."""
        values = self.column(column)
        if values is None:
            return None
        chosen = values[self.measured]
        chosen = chosen[np.isfinite(chosen)]
        if not chosen.size:
            return None
        return float(chosen.max() if highest else chosen.min())

    def event_times(self, *kinds: str) -> list[float]:
        if self.events.empty or "kind" not in self.events:
            return []
        mine = self.events[self.events["kind"].isin(kinds)]
        return sorted(float(t) for t in mine["time_s"])

    @property
    def window(self) -> tuple[float, float]:
        return self.warmup, self.duration


# ------------------------------------------------------------------------------------------- formatting


def _num(x: float) -> str:
    """A count or a measurement, without spurious decimals."""
    if float(x).is_integer():
        return f"{int(x)}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def _pct(share: float) -> str:
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{100 * share:.1f}%"


def _t(t: float) -> str:
    return f"{t:.1f} s"


def _span(rng: tuple[float, float]) -> str:
    return f"between {_t(rng[0])} and {_t(rng[1])}"


# ---------------------------------------------------------------------------------------------- rules


def connection_budget_exceeded(c: Context) -> list[Finding]:
    rejected = int(c.get("connections.rejected"))
    budget = c.get("theory.connection_budget", {}) or {}
    fits = bool(budget.get("fits", True))
    if rejected == 0 and fits:
        return []
    limits = c.get("connections.max_connections", {}) or {}
    total = int(c.get("requests.total"))
    refused = int(c.get("requests.errors.too_many_connections"))
    cols = c.columns("ConnectionsRejected.")
    per_instance = {col.split(".", 1)[1]: c.total_in(col, *c.window) for col in cols}
    mask = c.ts[cols].fillna(0.0).sum(axis=1).to_numpy() > 0 if cols else None
    rng = c.active(mask) or c.window
    parts = []
    if rejected:
        where = ", ".join(
            f"{name} {_num(n)} (max_connections {limits.get(name, '?')})"
            for name, n in per_instance.items()
            if n > 0
        )
        parts.append(
            f"{rejected} connection attempts were rejected at max_connections (connections.rejected) "
            f"{_span(rng)}" + (f": {where} (ConnectionsRejected per instance, attempts)" if where else "")
        )
    demand = int(c.get("connections.peak_demand"))
    if demand:
        parts.append(
            f"the pools' peak demand was {demand} connections (connections.peak_demand, Σ pool max_size "
            f"of live tasks) against max_connections {', '.join(f'{k} {v}' for k, v in limits.items())}"
        )
    over = {k: v for k, v in (budget.get("instances") or {}).items() if not v.get("fits", True)}
    if over:
        parts.append(
            "the scenario's worst case does not fit (theory.connection_budget): "
            + ", ".join(
                f"{k} {_num(v['peak_demand'])} > {v['max_connections']} connections" for k, v in over.items()
            )
        )
    if refused:
        parts.append(
            f"{refused} of {total} requests ({_pct(refused / max(total, 1))}) failed too_many_connections "
            "(requests.errors.too_many_connections)"
        )
    storms = c.get("connections.storms", []) or []
    if storms:
        longest = max(s["recovered_s"] for s in storms)
        parts.append(
            f"{len(storms)} storm(s) of rejected attempts (connections.storms), the longest lasting "
            f"{_num(longest)} s as starved pools kept retrying"
        )
    threshold = "Threshold: any attempt rejected at max_connections, or a worst case above it."
    fleets = budget.get("fleets") or []
    direct_lambda = [
        f["service"] for f in fleets if f.get("kind") == "lambda" and "proxy" not in f.get("endpoints", [])
    ]
    fix = (
        "Budget connections before deploying: Σ over fleets of (peak tasks × pool max_size) at the worst "
        "moment (a deploy's overlap, a scale-out, a failover's reconnects) must stay below max_connections "
        "with headroom. Size pools from the measured need (Little's law: request rate × time a connection "
        "is held per task, plus a margin) rather than the default; deploy in sequential waves (or lower "
        "ECS maximumPercent) so old and new tasks do not both hold full pools; put RDS Proxy in front of "
        "many small clients; or choose an instance class whose max_connections covers the budget."
    )
    if direct_lambda:
        fix += (
            f" {', '.join(direct_lambda)}: every Lambda execution environment holds its own connection, so "
            "concurrency becomes connections: connect through RDS Proxy, or cap the function with reserved "
            "concurrency below the budget."
        )
    return [
        Finding(
            id="connection-budget-exceeded",
            title="Connection budget exceeded",
            severity="critical" if rejected else "warning",
            why=(
                "Every pooled connection takes one of the database's max_connections slots. When the "
                "fleet's pools together ask for more (tasks × pool size, doubled while a deploy runs old "
                "and new tasks side by side, or one connection per Lambda environment), the server "
                "refuses the rest, the pools that came last cannot open connections, and their requests "
                "wait out connection_timeout and fail."
            ),
            detect="; ".join(parts) + ". " + threshold,
            fix=fix,
            metric="connections.rejected" if rejected else "theory.connection_budget.peak_demand",
            source="summary.json",
            unit="connection attempts" if rejected else "connections",
            t_start=rng[0],
            t_end=rng[1],
            values={
                "connections.rejected": rejected,
                "connections.peak_demand": demand,
                "connections.max_connections": limits,
                "theory.connection_budget.peak_demand": budget.get("peak_demand"),
                "theory.connection_budget.fits": fits,
                "requests.errors.too_many_connections": refused,
                "rejected_by_instance": {k: round(v) for k, v in per_instance.items()},
            },
        )
    ]


def pool_acquire_timeout(c: Context) -> list[Finding]:
    total = int(c.get("requests.total"))
    n = int(c.get("requests.errors.acquire_timeout"))
    if total == 0 or n / total <= ERROR_SHARE:
        return []
    errors = c.column("Errors.acquire_timeout")
    rng = c.active(errors > 0 if errors is not None else None) or c.window
    p99 = float(c.get("pool.acquire_wait_ms.p99"))
    peak_wait = c.extreme("AcquireWaitP99")
    by_query = c.get("by_query", {}) or {}
    worst = sorted(
        ((q, v.get("failed", 0), v.get("total", 0)) for q, v in by_query.items()), key=lambda r: -r[1]
    )
    worst_text = ", ".join(f"{q} {f} of {t}" for q, f, t in worst[:3] if f)
    detect = (
        f"{n} of {total} requests ({_pct(n / total)}) failed acquire_timeout (requests.errors.acquire_timeout) "
        f"{_span(rng)}: they waited the pool's connection_timeout for a busy pool (the database did not "
        f"refuse the pool, or the code would be too_many_connections). Pool wait p99 {_num(p99)} ms "
        "(pool.acquire_wait_ms.p99)"
        + (f"; AcquireWaitP99 peaked at {_num(peak_wait)} ms" if peak_wait is not None else "")
        + (f"; failed requests by query: {worst_text}" if worst_text else "")
        + f". Threshold: more than {_pct(ERROR_SHARE)} of requests."
    )
    return [
        Finding(
            id="pool-acquire-timeout",
            title="Pool acquire timeouts (HikariCP connectionTimeout)",
            severity="critical",
            why=(
                "A request borrows a connection from its task's pool and waits (FIFO) while all of them "
                "are busy; after connection_timeout HikariCP gives up. The pool is too small for the "
                "concurrency the load needs (arrival rate × time each request holds its connection, by "
                "Little's law), or requests hold connections too long: external calls inside "
                "transactions, slow queries, a database queueing for CPU."
            ),
            detect=detect,
            fix=(
                "Give each task's pool at least rate × hold time connections with a margin (and keep the "
                "fleet's total within the connection budget); take external calls and user think time "
                "out of transactions; add tasks to spread the load; check CPUUtilization and DBLoad for a "
                "database that is itself the bottleneck; a shorter connection_timeout fails fast instead "
                "of queueing callers for 30 s."
            ),
            metric="requests.errors.acquire_timeout",
            source="summary.json",
            unit="requests",
            t_start=rng[0],
            t_end=rng[1],
            values={
                "requests.errors.acquire_timeout": n,
                "requests.total": total,
                "share": n / total,
                "pool.acquire_wait_ms.p99": p99,
            },
        )
    ]


def _fleet_connections(c: Context) -> np.ndarray | None:
    """The clients' own DB connections per interval: DatabaseConnections less the proxy's."""
    conns = c.column("DatabaseConnections")
    if conns is None:
        return None
    proxy = c.column("DatabaseConnections.proxy")
    return conns - np.nan_to_num(proxy) if proxy is not None else conns


def reconnect_storm(c: Context) -> list[Finding]:
    failovers = c.get("failovers", []) or []
    conns = _fleet_connections(c)
    if conns is None:
        return []
    out = []
    for i, f in enumerate(failovers):
        start, available = f.get("start_s"), f.get("writer_available_s")
        if available is None or start is None:
            continue
        end = failovers[i + 1]["start_s"] if i + 1 < len(failovers) else c.duration
        before_rows = np.flatnonzero(c.times + c.interval <= start + 1e-9)
        if before_rows.size == 0:
            continue
        before = float(conns[before_rows[-1]])
        after_rows = np.flatnonzero((c.times + c.interval > available) & (c.times < end))
        if not before > 0 or not np.isfinite(conns[after_rows]).any():
            continue
        peak_row = after_rows[int(np.nanargmax(conns[after_rows]))]
        after = float(conns[peak_row])
        rate = float(f.get("reconnect_peak_per_s") or 0.0)
        if not (rate > before and after > STORM_GROWTH * before):
            continue
        t0, t1 = float(available), float(min(c.times[peak_row] + c.interval, c.duration))
        storms = [
            s for s in c.get("connections.storms", []) or [] if s["start_s"] <= t1 and s["end_s"] >= start
        ]
        rejected = sum(s["rejected"] for s in storms)
        detect = (
            f"After the fault at {_t(start)} the new writer accepted connections at {_t(available)}; "
            f"connection attempts then peaked at {_num(rate)}/s in 100 ms bins at "
            f"{_t(f.get('reconnect_peak_at_s') or available)} (failovers[{i}].reconnect_peak_per_s), a rate "
            f"that would reopen all {_num(before)} connections the clients held before the fault within "
            f"1 s, and the clients' DatabaseConnections rose from {_num(before)} to {_num(after)} by {_t(t1)} "
            f"({after / before:.1f}×): pools with waiting borrowers opened connections up to max_size at "
            "once."
            + (
                f" {rejected} attempts were rejected at max_connections in the storm (connections.storms)."
                if rejected
                else ""
            )
            + " Threshold: attempts per second above the clients' pre-fault connection count, and "
            f"connections more than {STORM_GROWTH:g}× that count."
        )
        out.append(
            Finding(
                id="reconnect-storm",
                title="Reconnect storm after a failover",
                severity="critical" if rejected else "warning",
                why=(
                    "During a failover every request waits for a connection, so when the new writer "
                    "answers, every pool wants connections at the same moment, and more than usual: "
                    "borrowers have piled up, so elastic pools (min_idle < max_size) grow to max_size. "
                    "HikariCP's backoff has no jitter, so pools that failed together retry at the same "
                    "instants. The handshakes (DB CPU each) queue ahead of the first queries on an "
                    "instance that has just started, and the burst can exceed max_connections."
                ),
                detect=detect,
                fix=(
                    "Spread the retries: full or equal jitter on the reconnect backoff "
                    "(services[].reconnect.jitter). Keep pools fixed-size (min_idle = max_size, HikariCP's "
                    "recommendation) so a failover cannot grow the fleet beyond its steady state; leave "
                    "max_connections headroom for the reconnect in the connection budget; RDS Proxy keeps "
                    "client connections open through a failover and reopens only its own."
                ),
                metric=f"failovers.{i}.reconnect_peak_per_s",
                source="summary.json",
                unit="connection attempts per second",
                t_start=t0,
                t_end=t1,
                values={
                    "reconnect_peak_per_s": rate,
                    "connections_before": before,
                    "connections_after_peak": after,
                    "rejected": rejected,
                },
            )
        )
    return out


def connection_churn_wave(c: Context) -> list[Finding]:
    attempts, conns = c.column("ConnectionAttempts"), _fleet_connections(c)
    if attempts is None or conns is None or conns.size < 2:
        return []
    held = np.r_[np.nan, conns[:-1]]  # connections held through the interval before
    steady_level = np.nanmedian(conns[c.measured]) if c.measured.any() else np.nan
    calm = np.ones(c.times.size, dtype=bool)
    for t in c.event_times(*(c.events["kind"].unique() if "kind" in c.events else [])):
        calm &= ~((c.times + c.interval > t) & (c.times < t + CHURN_EVENT_GAP_S))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = attempts / held
    wave = (
        calm
        & (held >= CHURN_MIN_CONNECTIONS)
        & (held >= CHURN_STEADY * steady_level)
        & (share >= CHURN_SHARE)
    )
    rows = np.flatnonzero(wave & c.measured)
    # lifetimes that end together do so again every lifetime: a single burst (a Lambda spike, a restart)
    # is some other storm
    starts = rows[np.r_[True, np.diff(c.times[rows]) > CHURN_EVENT_GAP_S / 6]] if rows.size else rows
    if starts.size < 2:
        return []
    worst = rows[int(np.nanargmax(share[rows]))]
    t0, t1 = float(c.times[rows[0]]), float(min(c.times[rows[-1]] + c.interval, c.duration))
    at = ", ".join(_t(float(c.times[r])) for r in starts[:5]) + (" ..." if starts.size > 5 else "")
    return [
        Finding(
            id="connection-churn-wave",
            title="Connections reopen in synchronized waves",
            severity="warning",
            why=(
                "Connections opened together retire together: pools that filled at the same moment with the "
                "same max_lifetime (and no per-connection variation) close and reopen their whole fleet in "
                "the same second, every lifetime. The handshakes cost DB CPU and queue ahead of queries, so "
                "latency spikes at every wave even though nothing failed."
            ),
            detect=(
                f"ConnectionAttempts reached {_num(float(attempts[worst]))}/s at {_t(float(c.times[worst]))}, "
                f"{_pct(float(share[worst]))} of the {_num(float(held[worst]))} connections the clients held, "
                f"with no fault, deploy or scaling event in the minute before (waves at {at}). Threshold: "
                f"{CHURN_SHARE:.0%} of the clients' connections reopened within one second, at steady state "
                f"(at least {CHURN_STEADY:.0%} of the run's median connections, {CHURN_MIN_CONNECTIONS} or "
                "more), in two or more waves at least 10 s apart."
            ),
            fix=(
                "Keep HikariCP's per-connection lifetime variation (services[].pool.max_lifetime_jitter, "
                "2.5% by default) or stagger task starts, so lifetimes end spread over seconds; keep "
                "max_lifetime a few seconds below any server-side or network idle limit rather than raising "
                "the pool size to absorb the wave."
            ),
            metric="ConnectionAttempts",
            source="timeseries.csv",
            unit="connection attempts per second",
            t_start=t0,
            t_end=t1,
            values={
                "peak_attempts_per_s": float(attempts[worst]),
                "connections_held": float(held[worst]),
                "waves": int(starts.size),
            },
        )
    ]


def failover_stale_endpoint(c: Context) -> list[Finding]:
    failovers = c.get("failovers", []) or []
    out = []
    for i, f in enumerate(failovers):
        start, available, dns = f.get("start_s"), f.get("writer_available_s"), f.get("dns_updated_s")
        if start is None or available is None or dns is None:
            continue
        end = failovers[i + 1]["start_s"] if i + 1 < len(failovers) else c.duration
        ttl = float(f.get("dns_ttl_s") or 0.0)
        deadline = dns + ttl + BACKOFF_CAP_S
        recovered = f.get("clients_recovered_s")
        late = recovered is None or recovered > deadline
        finished = c.total_in("Requests", deadline, end) + c.total_in("Errors", deadline, end)
        read_only = c.total_in("Errors.read_only", deadline, end)
        ro_share = read_only / finished if finished else 0.0
        if not late and ro_share <= ERROR_SHARE:
            continue
        t1 = recovered if recovered is not None else end
        clients, stuck = int(f.get("clients") or 0), int(f.get("clients_not_recovered") or 0)
        if recovered is None:
            recovery_text = (
                f"{stuck} of {clients} clients never wrote again before {_t(end)} "
                f"(failovers[{i}].clients_not_recovered; availability.client_recovery_s "
                f"{_num(c.get('availability.client_recovery_s'))} s)"
            )
        else:
            recovery_text = (
                f"the last client wrote again only at {_t(recovered)}, "
                f"{_num(recovered - deadline)} s later (failovers[{i}].clients_recovered_s)"
            )
        detect = (
            f"The writer failed at {_t(start)}; the new writer accepted writes at {_t(available)} "
            f"(server side {_num(available - start)} s, failovers[{i}].server_outage_s) and the writer "
            f"endpoint's DNS record changed at {_t(dns)} (TTL {_num(ttl)} s). Allowing the TTL and one capped "
            f"reconnect backoff ({_num(BACKOFF_CAP_S)} s), every client should have written by "
            f"{_t(deadline)}, but {recovery_text}."
            + (
                f" {_num(read_only)} requests after {_t(deadline)} ({_pct(ro_share)} of those finishing) "
                "failed read_only (Errors.read_only): connections still on the old writer, now a reader."
                if read_only
                else ""
            )
            + f" Threshold: clients recovering after the DNS change + TTL + {_num(BACKOFF_CAP_S)} s, or "
            f"read_only errors above {_pct(ERROR_SHARE)} of requests after it."
        )
        out.append(
            Finding(
                id="failover-stale-endpoint",
                title="Failover downtime extended by cached DNS or stale connections",
                severity="critical",
                why=(
                    "After a failover the writer endpoint's DNS record names the new writer, but a client "
                    "that cached the old answer (the JVM keeps lookups 30 s by default) keeps connecting "
                    "to the old writer's address, and pooled connections opened there stay in the pool: "
                    "once the old writer is back as a reader it answers writes with read_only (SQLState "
                    "25006), which HikariCP does not treat as a broken connection, so they are kept until "
                    "max_lifetime. The server side recovered; the clients did not."
                ),
                detect=detect,
                fix=(
                    "Re-resolve the endpoint on every new connection (JVM networkaddress.cache.ttl of a "
                    "few seconds at most; dns_cache: 0s); evict a connection on read_only errors (an "
                    "SQLExceptionOverride, evict_on_error: all) and validate or keepalive idle ones; retry "
                    "failed writes that are safe to retry with backoff; or let a failover-aware path follow "
                    "the new writer without DNS: RDS Proxy, or the AWS Advanced JDBC Wrapper's failover "
                    "plugin."
                ),
                metric=f"failovers.{i}.clients_recovered_s"
                if recovered is not None
                else f"failovers.{i}.clients_not_recovered",
                source="summary.json",
                unit="s" if recovered is not None else "clients",
                t_start=float(start),
                t_end=float(t1),
                values={
                    "writer_available_s": available,
                    "dns_updated_s": dns,
                    "dns_ttl_s": ttl,
                    "expected_recovery_by_s": deadline,
                    "clients_recovered_s": recovered,
                    "clients_not_recovered": stuck,
                    "read_only_after_deadline": round(read_only),
                },
            )
        )
    return out


def proxy_borrow_exhaustion(c: Context) -> list[Finding]:
    timeouts = int(c.get("proxy.borrow_timeouts"))
    borrows = int(c.get("proxy.borrows"))
    tries = timeouts + borrows
    if tries == 0 or timeouts / tries <= ERROR_SHARE:
        return []
    errors = c.column("Errors.borrow_timeout")
    rng = c.active(errors > 0 if errors is not None else None) or c.window
    held, cap = c.column("DatabaseConnections.proxy"), c.column("MaxDatabaseConnectionsAllowed")
    at_cap = c.active(held >= cap - 0.5) if held is not None and cap is not None else None
    t0 = min(rng[0], at_cap[0]) if at_cap else rng[0]
    peak_us = c.extreme("DatabaseConnectionsBorrowLatency")
    caps = c.get("proxy.max_db_connections_allowed", {}) or {}
    pinned = int(c.get("proxy.peak_pinned"))
    detect = (
        f"{timeouts} of {tries} borrows ({_pct(timeouts / tries)}) failed borrow_timeout "
        f"(proxy.borrow_timeouts) {_span(rng)}. The proxy's DB connections peaked at "
        f"{int(c.get('proxy.peak_db_connections'))} (proxy.peak_db_connections) against its cap "
        f"{', '.join(f'{k} {v}' for k, v in caps.items())} (MaxDatabaseConnectionsAllowed)"
        + (
            f", at the cap from {_t(at_cap[0])} (DatabaseConnections.proxy = MaxDatabaseConnectionsAllowed)"
            if at_cap
            else ""
        )
        + (
            f"; DatabaseConnectionsBorrowLatency rose to {peak_us:,.0f} µs ({peak_us / 1e6:.1f} s)"
            if peak_us is not None
            else ""
        )
        + f"; borrow wait p99 {_num(c.get('proxy.borrow_latency_ms.p99'))} ms (proxy.borrow_latency_ms.p99)"
        + (f"; up to {pinned} DB connections pinned (proxy.peak_pinned)" if pinned else "")
        + f". Threshold: more than {_pct(ERROR_SHARE)} of borrows."
    )
    return [
        Finding(
            id="proxy-borrow-exhaustion",
            title="RDS Proxy borrow queue exhausted",
            severity="critical",
            why=(
                "RDS Proxy lends each transaction one of its DB connections and opens at most "
                "MaxConnectionsPercent of the target's max_connections. When transactions in flight "
                "(arrival rate × transaction time) exceed that cap, the rest queue for a connection; a "
                "wait longer than ConnectionBorrowTimeout fails the transaction. Many clients (Lambda "
                "environments) behind the proxy keep the queue growing; pinned sessions take connections "
                "out of the shared pool."
            ),
            detect=detect,
            fix=(
                "Raise MaxConnectionsPercent so the cap covers the transactions in flight, leaving the "
                "database headroom for other clients; keep transactions short (no external calls inside "
                "them); cap the callers (Lambda reserved concurrency) so the queue cannot outgrow the cap; "
                "avoid session pinning (SET, temporary tables); a shorter ConnectionBorrowTimeout fails "
                "fast instead of holding callers for 120 s. CloudWatch has no 'max connections exceeded' "
                "metric: watch DatabaseConnections against MaxDatabaseConnectionsAllowed and "
                "DatabaseConnectionsBorrowLatency."
            ),
            metric="proxy.borrow_timeouts",
            source="summary.json",
            unit="borrows",
            t_start=t0,
            t_end=rng[1],
            values={
                "proxy.borrow_timeouts": timeouts,
                "proxy.borrows": borrows,
                "share": timeouts / tries,
                "proxy.peak_db_connections": int(c.get("proxy.peak_db_connections")),
                "proxy.max_db_connections_allowed": caps,
                "DatabaseConnectionsBorrowLatency_max_us": peak_us,
            },
        )
    ]


def lambda_throttling(c: Context) -> list[Finding]:
    functions = c.get("lambda.functions", {}) or {}
    limits = {
        f["service"]: f.get("environments")
        for f in c.get("theory.connection_budget.fleets", []) or []
        if f.get("kind") == "lambda"
    }
    out = []
    for name, fn in functions.items():
        throttles, invocations = int(fn.get("throttles", 0)), int(fn.get("invocations", 0))
        tries = throttles + invocations
        if tries == 0 or throttles / tries <= ERROR_SHARE:
            continue
        col = c.column(f"Throttles.{name}")
        rng = c.active(col > 0 if col is not None else None) or c.window
        peak = int(fn.get("peak_concurrency", 0))
        limit = fn.get("reserved_concurrency") or limits.get(name)
        duration = float((fn.get("duration_ms") or {}).get("mean", 0.0))
        if limit and peak >= limit:
            cause = (
                f"ConcurrentExecutions.{name} reached the function's concurrency limit {limit} "
                f"({'its reserved concurrency' if fn.get('reserved_concurrency') else 'its share of the account unreserved concurrency'}; "
                f"lambda.functions.{name}.peak_concurrency {peak})"
            )
        else:
            cause = (
                f"ConcurrentExecutions.{name} peaked at {peak}, below its limit {limit or '?'}: the burst "
                "outran Lambda's scaling rate (1,000 environments per 10 s)"
            )
        detect = (
            f"{throttles} of {tries} invocations ({_pct(throttles / tries)}) were throttled "
            f"(lambda.functions.{name}.throttles; Throttles.{name} per interval) {_span(rng)}; {cause}; mean "
            f"Duration {_num(duration)} ms (lambda.functions.{name}.duration_ms.mean), so each invocation "
            f"keeps its environment busy that long. Threshold: more than {_pct(ERROR_SHARE)} of invocations."
        )
        out.append(
            Finding(
                id="lambda-throttling",
                title=f"Lambda throttling ({name})",
                severity="critical",
                why=(
                    "Lambda runs an invocation only while the function is below its reserved concurrency "
                    "(or the account's unreserved concurrency, 1,000 by default) and has not added more "
                    "than 1,000 environments in the last 10 s; otherwise it throttles (429). Concurrency "
                    "is arrival rate × duration, so a burst, or invocations that got slower (waiting on "
                    "the database or the proxy), need more of it."
                ),
                detect=detect,
                fix=(
                    "If Duration grew because invocations wait for database connections, fix that first "
                    "(see the other findings): faster invocations need less concurrency. Otherwise raise "
                    "reserved concurrency or the account quota within what the database can serve, buffer "
                    "bursts (asynchronous invocation, an SQS queue) and retry synchronous calls with "
                    "backoff and jitter."
                ),
                metric=f"lambda.functions.{name}.throttles",
                source="summary.json",
                unit="invocations",
                t_start=rng[0],
                t_end=rng[1],
                values={
                    "throttles": throttles,
                    "invocations": invocations,
                    "share": throttles / tries,
                    "peak_concurrency": peak,
                    "concurrency_limit": limit,
                    "duration_ms_mean": duration,
                },
            )
        )
    return out


def read_your_writes_violations(c: Context) -> list[Finding]:
    by_query = c.get("replication.by_query", {}) or {}
    bad = {q: v for q, v in by_query.items() if v.get("read_your_writes_violations", 0) > 0}
    if not bad:
        return []
    col = c.column("ReadYourWritesViolations")
    rng = c.active(col > 0 if col is not None else None) or c.window
    routes = c.get("by_query", {}) or {}
    parts = [
        f"{q} (route {routes.get(q, {}).get('route', '?')}): {v['read_your_writes_violations']} of "
        f"{v['reads_on_replicas']} replica reads ({_pct(v['read_your_writes_violations'] / max(v['reads_on_replicas'], 1))}) "
        f"missed the session's own write (replication.by_query.{q}.read_your_writes_violations)"
        for q, v in bad.items()
    ]
    others = [
        f"{q} {_pct(v['stale_read_fraction'])} stale"
        for q, v in by_query.items()
        if q not in bad and v.get("stale_reads", 0) > 0
    ]
    lag = c.get("replication.lag_ms", {}) or {}
    lag_cols = c.columns("ReplicaLag.") + c.columns("AuroraReplicaLagMaximum")
    lag_text = f"replica lag reached {_num(float(lag.get('max', 0.0)) / 1000)} s (replication.lag_ms.max"
    lag_text += f"; {', '.join(lag_cols)})" if lag_cols else ")"
    detect = (
        "; ".join(parts)
        + f", {_span(rng)} (ReadYourWritesViolations per second); {lag_text}."
        + (
            f" Other replica reads were stale without reading the session's own write ({', '.join(others)}): "
            "not flagged, as nothing in the run says they need fresh data."
            if others
            else ""
        )
        + " Threshold: any read-your-writes violation: a user did not see what they had just written."
    )
    return [
        Finding(
            id="read-your-writes-violation",
            title="Stale reads of the session's own writes on replicas",
            severity="critical",
            why=(
                "Replicas apply the writer's changes after it commits: milliseconds behind on Aurora, and "
                "on an RDS read replica as far behind as its apply queue, which grows whenever writes "
                "outpace the replica's apply rate. A read routed to a replica right after the same "
                "session's write (an order confirmation) can miss that write."
            ),
            detect=detect,
            fix=(
                "Route reads that must see the session's own writes to the writer endpoint (or keep a "
                "session on the writer for a while after it writes); leave reads that tolerate staleness "
                "(reports, browsing) on the replicas. Watch ReplicaLag / AuroraReplicaLag; on RDS keep "
                "write bursts within the replica's apply rate, or use Aurora, whose readers lag by "
                "milliseconds."
            ),
            metric="replication.read_your_writes_violations",
            source="summary.json",
            unit="reads",
            t_start=rng[0],
            t_end=rng[1],
            values={
                "replication.read_your_writes_violations": int(
                    c.get("replication.read_your_writes_violations")
                ),
                "by_query": {q: v["read_your_writes_violations"] for q, v in bad.items()},
                "replication.lag_ms.max": lag.get("max"),
            },
        )
    ]


def serverless_capacity_pinned(c: Context) -> list[Finding]:
    instances = c.get("serverless.instances", {}) or {}
    pinned = {name: float(v.get("pinned_s", 0.0)) for name, v in instances.items()}
    if not pinned or max(pinned.values()) <= PIN_LIMIT_S:
        return []
    name = max(pinned, key=lambda k: pinned[k])
    held = c.get("transactions.held_sessions", []) or []
    starts = c.event_times("idle_in_transaction", "long_transaction")
    t0 = starts[0] if starts else c.warmup
    open_at_end = sum(
        max(0, h.get("began", 0) - h.get("terminated", 0) - h.get("ended", {}).get("ok", 0)) for h in held
    )
    terminated = c.event_times("session_terminated")
    t1 = c.duration if open_at_end or not terminated else max(terminated)
    measured = c.duration - c.warmup
    sv = c.get("serverless", {}) or {}
    cap_range = sv.get("capacity_range") or [None, None]
    capacity = c.mean_in(f"ServerlessDatabaseCapacity.{name}", t0, t1)
    acu_util = c.mean_in(f"ACUUtilization.{name}", t0, t1)
    cpu = c.mean_in(f"CPUUtilization.{name}", t0, t1)
    conns = c.mean_in(f"DatabaseConnections.{name}", t0, t1)
    began = sum(h.get("began", 0) for h in held)
    timeout = float(c.get("transactions.idle_in_transaction_session_timeout_s"))
    detect = (
        f"Open transactions held the capacity of {name} above what load and connections needed for "
        f"{_num(pinned[name])} s ({_pct(pinned[name] / measured) if measured else '?'} of the measured time; "
        f"serverless.instances.{name}.pinned_s)"
        + (
            f": from {_t(t0)} to {_t(t1)} ServerlessDatabaseCapacity.{name} averaged {_num(capacity)} ACU "
            f"(ACUUtilization {_num(acu_util)}% of max_acu {cap_range[1]}) while CPUUtilization averaged "
            f"{_num(cpu)}% and DatabaseConnections {_num(conns)}"
            if capacity is not None and acu_util is not None and cpu is not None and conns is not None
            else ""
        )
        + f"; capacity at the end {_num(sv.get('final_acu', 0.0))} ACU (serverless.final_acu, min_acu "
        f"{cap_range[0]})"
        + (
            f"; {began} sessions held open by events (transactions.held_sessions), {open_at_end} still open "
            f"at the end, {int(c.get('transactions.terminated'))} ended by the server "
            f"(idle_in_transaction_session_timeout {_num(timeout)} s, 0 = off)"
            if held
            else ""
        )
        + f"; the window cost US${_num(sv.get('cost_usd', 0.0))} (serverless.cost_usd). Threshold: capacity "
        f"pinned for more than {_num(PIN_LIMIT_S)} s, the idle_in_transaction_session_timeout the course "
        "recommends."
    )
    return [
        Finding(
            id="serverless-capacity-pinned",
            title="Serverless v2 capacity held up by open transactions",
            severity="warning",
            why=(
                "Aurora Serverless v2 does not scale down while long-running or idle-in-transaction "
                "sessions are open (simdb: a transaction open longer than pin_after keeps the capacity it "
                "began under). A session leaked idle inside a transaction at the peak keeps the peak's "
                "capacity, and its cost, while CPU and connections are low, until something ends it."
            ),
            detect=detect,
            fix=(
                "Set idle_in_transaction_session_timeout in the DB parameter group (the course: 60000 ms) "
                "so the server ends leaked sessions; fix the code path that leaves transactions open "
                "(commit or roll back in a finally block); find them in pg_stat_activity (state 'idle in "
                "transaction'); run long batches off-peak or on a provisioned instance."
            ),
            metric=f"serverless.instances.{name}.pinned_s",
            source="summary.json",
            unit="s",
            t_start=float(t0),
            t_end=float(t1),
            values={
                "pinned_s": pinned,
                "serverless.final_acu": sv.get("final_acu"),
                "serverless.capacity_range": cap_range,
                "serverless.cost_usd": sv.get("cost_usd"),
                "sessions_open_at_end": open_at_end,
            },
        )
    ]


def storage_quorum_lost(c: Context) -> list[Finding]:
    write_lost = float(c.get("storage.write_quorum_lost_s"))
    read_lost = float(c.get("storage.read_quorum_lost_s"))
    data_loss = bool(c.get("storage.data_loss", False))
    if write_lost <= 0 and read_lost <= 0 and not data_loss:
        return []
    copies = c.column("StorageCopiesReachable")
    rng = c.active(copies < WRITE_QUORUM if copies is not None else None, at_end=True) or c.window
    lowest = c.extreme("StorageCopiesReachable", highest=False)
    causes = []
    if not c.events.empty and "kind" in c.events:
        mine = c.events[
            c.events["kind"].isin(["az_outage", "storage_node_failure", "storage_repaired"])
            & (c.events["time_s"] <= rng[1])
        ]
        causes = [f"{r.kind} {r.target} at {_t(float(r.time_s))} ({r.detail})" for r in mine.itertuples()]
    total = int(c.get("requests.total"))
    failed = int(c.get("requests.errors.quorum_unavailable"))
    detect = (
        f"Fewer than {WRITE_QUORUM} of 6 Aurora copies were reachable for {_num(write_lost)} s "
        f"(storage.write_quorum_lost_s) {_span(rng)} (StorageCopiesReachable"
        + (f" down to {_num(lowest)})" if lowest is not None else ")")
        + (f"; events.csv: {'; '.join(causes)}" if causes else "")
        + f"; read quorum (3 copies) lost {_num(read_lost)} s (storage.read_quorum_lost_s)"
        + (
            f"; {failed} of {total} requests ({_pct(failed / max(total, 1))}) failed quorum_unavailable "
            "(requests.errors.quorum_unavailable)"
            if failed
            else ""
        )
        + ("; all 6 copies were lost at once (storage.data_loss)" if data_loss else "")
        + ". Threshold: any time without a write quorum: no commit can complete."
    )
    return [
        Finding(
            id="storage-quorum-lost",
            title="Aurora storage lost its write quorum",
            severity="critical",
            why=(
                "Aurora keeps 6 copies of the volume, 2 in each of 3 AZs; a commit needs 4 of them, a "
                "read 3. Losing an AZ leaves 4, so writes go on; losing one more copy (AZ+1) stops every "
                "commit until Aurora re-creates a copy on another node (about 10 s for a 10 GiB "
                "segment). Stalled commits hold their connections, so other writes queue in the pools."
            ),
            detect=detect,
            fix=(
                "Nothing in Aurora's configuration changes the quorum; make the application ride it out: "
                "statement timeouts longer than a segment repair, idempotent writes retried with backoff, "
                "circuit breakers so stalled commits do not take every pooled connection, and alarms on "
                "commit latency. For longer or regional outages plan with Aurora Global Database."
            ),
            metric="storage.write_quorum_lost_s" if write_lost > 0 else "storage.read_quorum_lost_s",
            source="summary.json",
            unit="s",
            t_start=rng[0],
            t_end=rng[1],
            values={
                "storage.write_quorum_lost_s": write_lost,
                "storage.read_quorum_lost_s": read_lost,
                "storage.data_loss": data_loss,
                "requests.errors.quorum_unavailable": failed,
            },
        )
    ]


# id -> rule; the order is the order of the README's table
def lock_contention(c: Context) -> list[Finding]:
    by_wait = c.get("db_load.by_wait", {}) or {}
    lock, cpu, client = (float(by_wait.get(k) or 0.0) for k in ("Lock", "CPU", "Client"))
    if not (lock >= LOCK_MIN_SESSIONS and lock > cpu):
        return []
    series = c.column("DBLoad.wait.Lock")
    rng = (c.active(series >= LOCK_MIN_SESSIONS) if series is not None else None) or c.window
    timeouts = int(c.get("requests.errors.lock_timeout", 0) or 0)
    total = int(c.get("requests.total", 0) or 0)
    top = next(iter((c.get("db_load.by_query", {}) or {}).items()), None)
    return [
        Finding(
            id="lock-contention",
            title="Lock contention: sessions wait for row locks",
            severity="critical" if timeouts else "warning",
            why=(
                "A transaction keeps the rows it wrote locked until it commits. When it stays open across slow "
                "work (an external call, application logic, a batch) every other transaction that needs a hot "
                "row queues behind it: the database looks busy while its CPU is idle, and waits past "
                "lock_timeout fail."
            ),
            detect=(
                f"DBLoad by wait class: Lock {_num(lock)} average active sessions against CPU {_num(cpu)} "
                f"(db_load.by_wait), {_span(rng)}"
                + (f"; Client (idle in a transaction) {_num(client)}" if client >= LOCK_MIN_SESSIONS else "")
                + (
                    f"; {timeouts} requests failed lock_timeout ({_pct(timeouts / total)})"
                    if timeouts and total
                    else ""
                )
                + (f"; the most load is {top[0]} ({_num(float(top[1]))} sessions)" if top else "")
                + f". Threshold: Lock load of at least {LOCK_MIN_SESSIONS:g} session and more than the CPU load."
            ),
            fix=(
                "Keep transactions short and bounded (course 004 §7.1): call external services before BEGIN or "
                "after COMMIT, touch hot rows last and commit at once; split batch updates into small "
                "transactions; set lock_timeout so waits fail fast instead of piling up; split hot aggregates "
                "or use optimistic locking."
            ),
            metric="db_load.by_wait.Lock",
            source="summary.json",
            unit="average active sessions",
            t_start=rng[0],
            t_end=rng[1],
            values={"Lock": lock, "CPU": cpu, "Client": client, "lock_timeouts": timeouts},
        )
    ]


def restore_failed(c: Context) -> list[Finding]:
    r = c.get("restore", {}) or {}
    if not r.get("restores") or r.get("succeeded"):
        return []
    started = float(r.get("started_s") or 0.0)
    failed_at = r.get("failed_s") or (r.get("cutover") or {}).get("failed_s")
    end = c.duration
    cut = r.get("cutover") or {}
    lost = int(r.get("writes_lost") or 0)
    detect = (
        f"The restore started at {_t(started)} ({r.get('from')}, faults: {', '.join(r.get('faults') or []) or 'none'}) "
        + (
            f"and the restored cluster was available at {_t(float(r['available_s']))} (RTO {_num(float(r['rto_s']))} s), "
            if r.get("completed")
            else "and never produced an available cluster, "
        )
        + f"but the drill failed: {r.get('reason') or 'no reason recorded'} (restore.succeeded false"
        + (
            f"; {cut.get('clients_not_cut_over')} of {cut.get('clients')} clients not on the restored cluster"
            if cut.get("clients")
            else ""
        )
        + f"; {lost} committed writes after the restore point are lost, RPO {_num(float(r.get('rpo_s') or 0))} s)."
        + " Threshold: any restore that does not end with every client on the restored cluster."
    )
    return [
        Finding(
            id="restore-failed",
            title="Restore drill failed",
            severity="critical",
            why=(
                "A backup is only as good as the restore nobody rehearsed: a restore creates a new cluster "
                "with new endpoints, and it needs the KMS key, a matching subnet and security groups, and an "
                "application that can be pointed at it. Any of these found missing during an incident "
                "turns a 30 min RTO into hours."
            ),
            detect=detect,
            fix=(
                "Run scheduled restore drills with realistic data size and measure RTO and the cutover; check "
                "KMS key grants and network settings for the restore target ahead of time; make the "
                "application's endpoint a configuration (a DNS name or secret) the runbook switches, and "
                "refresh the pools after the switch."
            ),
            metric="restore.succeeded",
            source="summary.json",
            unit="true/false",
            t_start=started,
            t_end=float(failed_at) if failed_at is not None and not r.get("completed") else end,
            values={
                "reason": r.get("reason"),
                "rto_s": r.get("rto_s"),
                "rpo_s": r.get("rpo_s"),
                "writes_lost": lost,
            },
        )
    ]


RULES: dict[str, Callable[[Context], list[Finding]]] = {
    "connection-budget-exceeded": connection_budget_exceeded,
    "pool-acquire-timeout": pool_acquire_timeout,
    "reconnect-storm": reconnect_storm,
    "connection-churn-wave": connection_churn_wave,
    "failover-stale-endpoint": failover_stale_endpoint,
    "proxy-borrow-exhaustion": proxy_borrow_exhaustion,
    "lambda-throttling": lambda_throttling,
    "read-your-writes-violation": read_your_writes_violations,
    "serverless-capacity-pinned": serverless_capacity_pinned,
    "storage-quorum-lost": storage_quorum_lost,
    "lock-contention": lock_contention,
    "restore-failed": restore_failed,
}


def explain(summary: dict[str, Any], timeseries: pd.DataFrame, events: pd.DataFrame) -> list[Finding]:
    """The findings of one run, critical first, then by start time.

    ``summary`` is a single run's summary.json (not the means of replications: pass a replication's
    own summary instead); ``timeseries`` and ``events`` are its timeseries.csv and events.csv.
    """
    if "replications" in summary:
        raise SimdbError(
            "explain reads one run; this summary holds the means of replications "
            "(run the scenario without --replications, or pass one replication's summary)"
        )
    ctx = Context(summary, timeseries, events)
    found = [f for rule in RULES.values() for f in rule(ctx)]
    return sorted(found, key=lambda f: (SEVERITIES.index(f.severity), f.t_start, f.id))


def explain_dir(path: str | Path) -> list[Finding]:
    """:func:`explain` on a results folder (summary.json, timeseries.csv, events.csv)."""
    return explain(*load_run(path))


def load_run(path: str | Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """A results folder's summary, timeseries and events; :class:`SimdbError` if it is not one."""
    folder = Path(path)
    if not (folder / "summary.json").is_file():
        raise SimdbError(f"{folder}: not a simdb results folder (no summary.json)")
    try:
        summary = json.loads((folder / "summary.json").read_text())
        timeseries = pd.read_csv(folder / "timeseries.csv")
        events = pd.read_csv(folder / "events.csv")
    except (OSError, ValueError) as exc:
        raise SimdbError(f"{folder}: not a readable simdb results folder ({exc})") from None
    if not isinstance(summary, dict) or "requests" not in summary:
        raise SimdbError(f"{folder}: summary.json is not a simdb summary")
    return summary, timeseries, events


def format_text(findings: list[Finding], width: int = 110) -> str:
    """Findings as the CLI prints them: Why / Detect / Fix under a heading each."""
    if not findings:
        return (
            f"no findings: none of the {len(RULES)} rules triggered ({', '.join(RULES)}); "
            "see summary.json for the numbers"
        )
    blocks = []
    for f in findings:
        lines = [f"[{f.severity}] {f.id}: {f.title} ({_t(f.t_start)} to {_t(f.t_end)})"]
        for label, text in (
            ("Why", f.why),
            ("Detect", f.detect),
            ("Fix", f.fix),
            ("Metric", f"{f.metric} ({f.unit}, {f.source})"),
        ):
            lines.append(
                textwrap.fill(text, width=width, initial_indent=f"  {label:8s}", subsequent_indent=" " * 10)
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def to_json(findings: list[Finding], **header: Any) -> str:
    return (
        json.dumps({**header, "findings": [f.to_dict() for f in findings]}, indent=2, allow_nan=False) + "\n"
    )


__all__ = ["RULES", "Finding", "explain", "explain_dir", "format_text", "load_run", "to_json"]
