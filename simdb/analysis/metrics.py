"""Vectorised analysis of a run: requests table, timeseries, events and summary.json.

Reads only the recorder's arrays and the run's names (a RawRun), never live model objects.
No Python loop runs per request: everything is numpy over whole columns.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .. import theory
from ..engine import WAIT_CLASSES, RawRun
from ..errors import SimdbError
from ..record import (
    CODES,
    CONN_CLOSED,
    CONN_OPENED,
    CONN_REFUSED,
    CONN_REJECTED,
    CONN_TIMED_OUT,
    ERROR_CODES,
    OK,
)
from ..scenario import parse_expect
from .availability import attempt_peak, failover_summaries
from .fleets import lambda_summary, lambda_timeseries, proxy_summary, proxy_timeseries, storms
from .global_db import global_summary, global_timeseries
from .restore import restore_summary
from .serverless import cost_timeseries, serverless_summary, transactions_summary
from .staleness import mean_lag_per_bin, replica_lag_at, stale_reads
from .steps import connection_delta, level_at, peak_in, rnd, step_levels
from .warmup import mser5_cut

PERCENTILES = (50, 95, 99)
# assumed: a failure that a success (of any client) follows within a second is a partial outage, not
# downtime: a retry would have succeeded. Shorter windows are left out of the totals and the list.
MIN_DOWNTIME_WINDOW_S = 1.0
# binned_percentiles sorts bin by bin up to this many non-empty bins (a Python loop per bin, not per value)
PER_BIN_SORT_LIMIT = 200_000


def latency_stats(latency_ms: np.ndarray) -> dict[str, Any]:
    if latency_ms.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    p = np.percentile(latency_ms, PERCENTILES)
    return {
        "mean": rnd(latency_ms.mean()),
        "p50": rnd(p[0]),
        "p95": rnd(p[1]),
        "p99": rnd(p[2]),
        "max": rnd(latency_ms.max()),
    }


def binned_percentiles(
    bins: np.ndarray, values: np.ndarray, n_bins: int, qs: tuple[float, ...], overwrite: bool = False
) -> list[np.ndarray]:
    """Quantiles ``qs`` (0..1, linear interpolation) of ``values`` per integer bin; NaN for empty bins.

    The values are grouped by bin (already so when the bins come from completion times, which the
    recorder writes in order), then each bin's values are sorted in place: one C sort per bin, much
    cheaper than an argsort of all values. With very many non-empty bins a single argsort by value,
    then a stable one by bin, does the same without the loop. ``overwrite``: ``values`` is a temporary
    the caller gives up, sorted in place instead of copied.
    """
    if values.size == 0:
        return [np.full(n_bins, np.nan) for _ in qs]
    counts = np.bincount(bins, minlength=n_bins)[:n_bins]
    ends = np.cumsum(counts)
    starts = ends - counts
    has = counts > 0
    if np.count_nonzero(has) > PER_BIN_SORT_LIMIT:
        order = np.argsort(values)
        v = values[order[np.argsort(bins[order], kind="stable")]]
    else:
        if np.any(bins[1:] < bins[:-1]):
            v = values[np.argsort(bins, kind="stable")]
        else:
            v = values if overwrite else values.copy()
        for start, end in zip(starts[has].tolist(), ends[has].tolist(), strict=True):
            v[start:end].sort()
    out = []
    for q in qs:
        result = np.full(n_bins, np.nan)
        pos = q * (counts[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, counts[has] - 1)
        frac = pos - lo
        base = starts[has]
        result[has] = v[base + lo] * (1 - frac) + v[base + hi] * frac
        out.append(result)
    return out


class Analysis:
    """Tables and summary of one run."""

    def __init__(self, raw: RawRun) -> None:
        self.raw = raw
        s = raw.scenario
        self.scenario = s
        self.duration = s.duration
        self.cols = raw.recorder.requests()
        c = self.cols
        self.warmup_auto: dict[str, Any] | None = None
        if s.warmup == "auto":
            self.warmup = self._detect_warmup()
        else:
            self.warmup = float(s.warmup)
        self.window = (c["t_arrive"] >= self.warmup) & (c["t_arrive"] < self.duration)
        self.ok = c["code"] == OK
        self.latency_ms = (c["t_end"] - c["t_arrive"]) * 1000.0
        query_kind = np.array([q.kind == "write" for q in raw.queries], dtype=bool)
        self.is_write = query_kind[c["query"]] if c["query"].size else np.zeros(0, dtype=bool)
        service_of_query = np.array([raw.services.index(q.service) for q in raw.queries], dtype=np.int64)
        self.service = service_of_query[c["query"]] if c["query"].size else np.zeros(0, dtype=np.int64)
        # the engine builds query classes service by service, in workload order
        self.query_specs = [q for svc in s.services for q in svc.workload]
        names = [q.name for q in raw.queries]
        # summary.json's by_query keys: the name, or service:name where two services share it
        self.query_keys = [
            q.name if names.count(q.name) == 1 else f"{q.service}:{q.name}" for q in raw.queries
        ]

    @cached_property
    def conn(self) -> dict[str, np.ndarray]:
        """The connection log's columns."""
        return self.raw.recorder.connections()

    @cached_property
    def attempts(self) -> np.ndarray:
        """Connection-log rows that are attempts (accepted, rejected, refused or timed out), not closes."""
        return self.conn["kind"] != CONN_CLOSED

    def _detect_warmup(self) -> float:
        """MSER-5 on the mean latency of successful requests per timeseries interval, by arrival time."""
        c = self.cols
        interval = self.scenario.timeseries_interval
        n = round(self.duration / interval)
        ok = (c["code"] == OK) & (c["t_arrive"] < self.duration)
        bins = (c["t_arrive"][ok] / interval).astype(np.int64)
        counts = np.bincount(bins, minlength=n)[:n]
        total = np.bincount(bins, weights=(c["t_end"] - c["t_arrive"])[ok], minlength=n)[:n]
        with np.errstate(invalid="ignore", divide="ignore"):
            series = total / counts  # NaN where nothing arrived: MSER skips those
        kept = np.flatnonzero(counts > 0)
        cut = mser5_cut(series)
        # the cut counts observations with data; map it back to time
        cut_s = float(kept[cut] * interval) if 0 < cut < kept.size else 0.0
        self.warmup_auto = {
            "method": "MSER-5 on the mean latency of successful requests per interval, by arrival",
            "cut_s": cut_s,
        }
        return cut_s

    # ------------------------------------------------------------------ tables

    def requests_frame(self) -> pd.DataFrame:
        c = self.cols
        raw = self.raw
        query_names = [q.name for q in raw.queries]
        service_of_query = np.array([raw.services.index(q.service) for q in raw.queries], dtype=np.int16)
        return pd.DataFrame(
            {
                "t_arrive": c["t_arrive"],
                "t_acquired": c["t_acquired"],
                "t_start": c["t_start"],
                "t_end": c["t_end"],
                "service": pd.Categorical.from_codes(
                    service_of_query[c["query"]] if c["query"].size else np.zeros(0, np.int16), raw.services
                ),
                "query": pd.Categorical.from_codes(c["query"], query_names),
                "kind": pd.Categorical.from_codes(self.is_write.astype(np.int8), ["read", "write"]),
                "instance": pd.Categorical.from_codes(c["instance"], [i.name for i in raw.instances]),
                "code": pd.Categorical.from_codes(c["code"], list(CODES)),
                "task": c["task"],
                "key": c["key"],
                "session": c["session"],
            }
        )

    def events_frame(self) -> pd.DataFrame:
        events = list(self.raw.recorder.events)
        restore = self.restore
        moved_at = restore["cutover"]["completed_s"]
        if moved_at is not None:
            # found after the run, from the requests; placed in time order among the model's events
            at = next((i for i, e in enumerate(events) if e[0] > moved_at), len(events))
            events.insert(
                at,
                (
                    moved_at,
                    "cutover_completed",
                    restore["restored_instance"],
                    f"all {restore['cutover']['clients']} clients on the restored cluster, "
                    f"{restore['cutover_s']:g} s after it was available",
                ),
            )
        return pd.DataFrame(events, columns=["time_s", "kind", "target", "detail"])

    @cached_property
    def restore(self) -> dict[str, Any]:
        """summary.json's `restore` (a neutral block without a restore event)."""
        c = self.cols
        return restore_summary(
            self.raw.extra.get("restore"),
            c["t_arrive"],
            c["t_end"],
            self.ok,
            self.is_write,
            c["instance"],
            (self.service << 32) | c["task"].astype(np.int64),
            self.duration,
        )

    def timeseries(self) -> pd.DataFrame:
        raw = self.raw
        interval = self.scenario.timeseries_interval
        n = round(self.duration / interval)
        edges_end = (np.arange(n) + 1) * interval
        ts: dict[str, np.ndarray] = {"time_s": np.arange(n) * interval}
        samples = {k: v[:n] for k, v in raw.samples.items()}
        names = [i.name for i in raw.instances]

        def per_instance(metric: str) -> list[np.ndarray]:
            return [samples.get(f"{metric}.{name}", np.zeros(n)) for name in names]

        conns, cpu, load = (
            per_instance("DatabaseConnections"),
            per_instance("CPUUtilization"),
            per_instance("DBLoad"),
        )
        ts["DatabaseConnections"] = np.sum(conns, axis=0)
        ts["CPUUtilization"] = np.mean(cpu, axis=0)
        ts["DBLoad"] = np.sum(load, axis=0)
        for name, a, b, d in zip(names, conns, cpu, load, strict=True):
            ts[f"DatabaseConnections.{name}"] = a
            ts[f"CPUUtilization.{name}"] = b
            ts[f"DBLoad.{name}"] = d
        # DB load by wait class (Performance Insights' DBLoadCPU / DBLoadNonCPU and the wait dimension)
        by_wait = {wait: per_instance(f"DBLoad.wait.{wait}") for wait in WAIT_CLASSES}
        non_cpu = [
            io + lock + client
            for io, lock, client in zip(*(by_wait[w] for w in WAIT_CLASSES[1:]), strict=True)
        ]
        ts["DBLoadCPU"] = np.sum(by_wait["CPU"], axis=0)
        ts["DBLoadNonCPU"] = np.sum(non_cpu, axis=0)
        for wait in WAIT_CLASSES:
            ts[f"DBLoad.wait.{wait}"] = np.sum(by_wait[wait], axis=0)
        for i, name in enumerate(names):
            ts[f"DBLoadCPU.{name}"] = by_wait["CPU"][i]
            ts[f"DBLoadNonCPU.{name}"] = non_cpu[i]
            for wait in WAIT_CLASSES:
                ts[f"DBLoad.wait.{wait}.{name}"] = by_wait[wait][i]

        conn = self.conn
        attempts = self.attempts
        ts["ConnectionAttempts"] = np.zeros(n)
        for i, name in enumerate(names):
            mine = conn["instance"] == i
            att = _rate(conn["t"][mine & attempts], n, interval)
            ts[f"ConnectionAttempts.{name}"] = att
            ts["ConnectionAttempts"] = ts["ConnectionAttempts"] + att
            ts[f"ConnectionsRejected.{name}"] = _rate(
                conn["t"][mine & (conn["kind"] == CONN_REJECTED)], n, interval
            )

        dem = raw.recorder.demands()
        t_all, lvl_all = step_levels(dem["t"], dem["delta"])
        ts["ConnectionDemand"] = level_at(t_all, lvl_all, edges_end)
        for e, endpoint in enumerate(raw.endpoints):
            mine = dem["endpoint"] == e
            if mine.any():
                te, le = step_levels(dem["t"][mine], dem["delta"][mine])
                ts[f"ConnectionDemand.{endpoint}"] = level_at(te, le, edges_end)

        c = self.cols
        bins = (
            np.minimum((c["t_end"] / interval).astype(np.int64), n - 1)
            if c["t_end"].size
            else np.zeros(0, np.int64)
        )
        # one pass each: counts per (service, ok or not, bin), then per (error code, bin)
        n_svc = len(raw.services)
        by_svc = np.bincount((self.service * 2 + ~self.ok) * n + bins, minlength=n_svc * 2 * n).reshape(
            n_svc, 2, n
        )
        ts["Requests"] = by_svc[:, 0].sum(axis=0) / interval
        ts["Errors"] = by_svc[:, 1].sum(axis=0) / interval
        for si, name in enumerate(raw.services):
            ts[f"Requests.{name}"] = by_svc[si, 0] / interval
            ts[f"Errors.{name}"] = by_svc[si, 1] / interval
        failed_codes = c["code"][~self.ok].astype(np.int64)
        if failed_codes.size:
            by_code = np.bincount(failed_codes * n + bins[~self.ok], minlength=len(CODES) * n).reshape(
                len(CODES), n
            )
            for code in np.unique(failed_codes):
                ts[f"Errors.{CODES[code]}"] = by_code[code] / interval
        ok_bins, ok_lat = bins[self.ok], self.latency_ms[self.ok]
        ts["LatencyP50"], ts["LatencyP99"] = binned_percentiles(
            ok_bins, ok_lat, n, (0.50, 0.99), overwrite=True
        )
        acquired = ~np.isnan(c["t_acquired"])
        if acquired.all():  # the common case: skip three full-size copies
            t_acq, t_arr = c["t_acquired"], c["t_arrive"]
        else:
            t_acq, t_arr = c["t_acquired"][acquired], c["t_arrive"][acquired]
        wait_ms = t_acq - t_arr
        wait_ms *= 1000.0
        acq_bins = np.minimum((t_acq / interval).astype(np.int64), n - 1)
        (ts["AcquireWaitP99"],) = binned_percentiles(acq_bins, wait_ms, n, (0.99,), overwrite=True)
        for qi, spec in enumerate(self.query_specs):
            if spec.plan is not None:
                key = self.query_keys[qi]
                mine = self.ok & (c["query"] == qi)
                (ts[f"LatencyP95.{key}"],) = binned_percentiles(
                    bins[mine], self.latency_ms[mine], n, (0.95,), overwrite=True
                )
                # rows grow linearly: their mean over the interval is the value at its middle
                ts[f"PlanRows.{key}"] = theory.plan_rows(spec.plan, ts["time_s"] + interval / 2.0)
        for k, v in samples.items():
            if (
                k.startswith(("Tasks.", "Environments.", "ServerlessDatabaseCapacity", "ACUUtilization"))
                or k == "MaxDatabaseConnectionsAllowed"
            ):
                ts[k] = v
        if raw.extra.get("proxy") is not None:
            proxy_timeseries(ts, raw.extra["proxy"], conn, n, interval)
        lambda_timeseries(ts, raw.extra.get("lambda", {}), n, interval)
        cost_timeseries(ts, raw.extra.get("serverless"), interval)
        if raw.extra.get("restore") is not None:
            ts["LazyLoads"] = _rate(np.asarray(raw.extra["restore"]["loads"], dtype=np.float64), n, interval)
        self._replication_timeseries(ts, n, interval)
        global_timeseries(ts, raw, n, interval)
        return pd.DataFrame(ts)

    # ----------------------------------------------------------------- summary

    def summary(self) -> dict[str, Any]:
        s = self.scenario
        raw = self.raw
        c = self.cols
        w = self.window
        ok_w = w & self.ok
        failed_w = w & ~self.ok
        codes_w = c["code"][failed_w]
        errors = {
            name: int(n) for name, n in zip(CODES, np.bincount(codes_w, minlength=len(CODES)), strict=False)
        }
        measured_s = self.duration - self.warmup

        latency = latency_stats(self.latency_ms[ok_w])
        n_ok = int(ok_w.sum())
        by_query: dict[str, Any] = {}
        for qi, q in enumerate(raw.queries):
            key = self.query_keys[qi]
            mine = c["query"] == qi
            ok_mine = ok_w & mine
            n_ok_mine = int(ok_mine.sum())
            by_query[key] = {
                "service": q.service,
                "kind": q.kind,
                "route": q.route,
                "total": int((w & mine).sum()),
                "ok": n_ok_mine,
                "failed": int((failed_w & mine).sum()),
                "retries": int(raw.extra.get("retried", {}).get(qi, 0)),
                # a query that all successes belong to has the run's percentiles: no second partition
                "latency_ms": dict(latency) if n_ok_mine == n_ok else latency_stats(self.latency_ms[ok_mine]),
            }
            spec = self.query_specs[qi]
            if spec.plan is not None:
                by_query[key]["plan"] = self._plan(spec)

        acquired = w & ~np.isnan(c["t_acquired"])
        waits_ms = (c["t_acquired"][acquired] - c["t_arrive"][acquired]) * 1000.0
        pool_failures = (
            failed_w
            & np.isnan(c["t_acquired"])
            & np.isin(c["code"], [CODES.index("acquire_timeout"), CODES.index("too_many_connections")])
        )

        summary: dict[str, Any] = {
            "scenario": s.name,
            "seed": s.seed,
            "duration_s": rnd(self.duration),
            "warmup_s": rnd(self.warmup),
            **({"warmup_auto": self.warmup_auto} if self.warmup_auto is not None else {}),
            "requests": {
                "total": int(w.sum()),
                "ok": n_ok,
                "failed": int(failed_w.sum()),
                "errors": {code: errors[code] for code in ERROR_CODES},
                "throughput_per_s": rnd(n_ok / measured_s),
                "retries": int(sum(raw.extra.get("retried", {}).values())),
                "in_flight_at_end": raw.in_flight_at_end,
            },
            "latency_ms": latency,
            "by_query": by_query,
            "connections": self._connections(),
            "pool": {
                "acquire_wait_ms": {
                    "mean": rnd(waits_ms.mean()) if waits_ms.size else 0.0,
                    "p99": rnd(np.percentile(waits_ms, 99)) if waits_ms.size else 0.0,
                },
                "acquire_timeouts": int(pool_failures.sum()),
            },
            "availability": self._availability(),
            "replication": self.replication_summary,
            "storage": self._storage(),
            "failovers": self.failovers,
            "proxy": proxy_summary(raw.extra.get("proxy"), self.conn, self.warmup, self.duration),
            "lambda": lambda_summary(
                raw.extra.get("lambda", {}),
                {svc.name: svc.reserved_concurrency for svc in s.services if svc.kind == "lambda"},
                self.warmup,
                self.duration,
            ),
            "serverless": serverless_summary(raw.extra.get("serverless"), self.warmup, self.duration),
            "transactions": transactions_summary(
                raw.extra,
                s.cluster.parameters.idle_in_transaction_session_timeout,
                self.warmup,
                self.duration,
            ),
            "restore": self.restore,
            "theory": self._theory(),
            "global": global_summary(
                raw,
                self.warmup,
                self.duration,
                self._secondary_reads(),
                self._write_windows,
                self.failovers,
            ),
            "db_load": self._db_load(by_query),
        }
        summary["expect"] = evaluate_expectations(s.expect, summary)
        return summary

    def _plan(self, spec: Any) -> dict[str, Any]:
        """A query's plan as it played out: its table and mean CPU per execution at the start and the end."""
        plan = spec.plan
        return {
            "access": plan.access,
            "rows_start": rnd(plan.rows),
            "rows_end": rnd(theory.plan_rows(plan, self.duration)),
            "growth_per_s": rnd(plan.growth),
            "cost_per_row_us": rnd(plan.cost_per_row * 1e6),
            "mean_cpu_ms_start": rnd(theory.plan_cost_s(spec, 0.0) * 1000.0),
            "mean_cpu_ms_end": rnd(theory.plan_cost_s(spec, self.duration) * 1000.0),
        }

    def _db_load(self, by_query: dict[str, Any]) -> dict[str, Any]:
        """Average active sessions over the measured time (Performance Insights' DBLoad), by wait class,
        by instance and by query class.

        The totals come from the model's exact integrals per timeseries interval. A query class's share is
        the time its requests spent in the DB (from the connection handing the statement over to the end),
        inside the measured time, per second; requests whose end the client learns later than the DB
        (connection_lost) or that never reached it (read_only) are left out, and so are event sessions and
        connection setup: together they are ``other``.
        """
        raw = self.raw
        interval = self.scenario.timeseries_interval
        n = round(self.duration / interval)
        first = round(self.warmup / interval)
        start = first * interval
        names = [i.name for i in raw.instances]

        def window(metric: str, name: str) -> np.ndarray:
            return raw.samples.get(f"{metric}.{name}", np.zeros(0))[first:n]

        def cluster(metric: str) -> np.ndarray:
            parts = [v for v in (window(metric, name) for name in names) if v.size]
            return np.sum(parts, axis=0) if parts else np.zeros(0)

        def avg(values: np.ndarray) -> float:
            return float(values.mean()) if values.size else 0.0

        total = cluster("DBLoad")
        mean = avg(total)
        by_wait = {wait: avg(cluster(f"DBLoad.wait.{wait}")) for wait in WAIT_CLASSES}

        c = self.cols
        dt = np.minimum(c["t_end"], self.duration) - np.maximum(c["t_acquired"], start)
        dt[~(dt > 0.0)] = 0.0  # never acquired (NaN), or outside the measured time
        late = np.isin(c["code"], [CODES.index("connection_lost"), CODES.index("read_only")])
        if late.any():
            dt[late] = 0.0
        seconds = np.bincount(c["query"], weights=dt, minlength=len(raw.queries))
        measured = self.duration - start
        loads = {key: float(sec) / measured for key, sec in zip(by_query, seconds, strict=True)}
        ranked = sorted(loads.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "mean": rnd(mean),
            "peak": rnd(total.max()) if total.size else 0.0,
            "cpu": rnd(by_wait["CPU"]),
            "non_cpu": rnd(sum(by_wait[w] for w in WAIT_CLASSES[1:])),
            "by_wait": {wait: rnd(v) for wait, v in by_wait.items()},
            "by_instance": {name: rnd(avg(window("DBLoad", name))) for name in names},
            "vcpus": {i.name: i.vcpu for i in raw.instances},
            "by_query": {key: rnd(v) for key, v in ranked},
            "other": rnd(max(mean - sum(loads.values()), 0.0)),
        }

    def _connections(self) -> dict[str, Any]:
        raw = self.raw
        conn = self.conn
        in_window = (conn["t"] >= self.warmup) & (conn["t"] <= self.duration)
        delta = connection_delta(conn["kind"])
        attempts = self.attempts
        peak, peak_at = attempt_peak(conn["t"][attempts], self.warmup, self.duration)
        t_all, lvl_all = step_levels(conn["t"], delta)
        by_instance = {}
        for i, inst in enumerate(raw.instances):
            mine = conn["instance"] == i
            ti, li = step_levels(conn["t"][mine], delta[mine])
            by_instance[inst.name] = int(peak_in(ti, li, self.warmup, self.duration))
        dem = raw.recorder.demands()
        td, ld = step_levels(dem["t"], dem["delta"])
        by_endpoint = {}
        for e, endpoint in enumerate(raw.endpoints):
            mine = dem["endpoint"] == e
            if mine.any():
                te, le = step_levels(dem["t"][mine], dem["delta"][mine])
                by_endpoint[endpoint] = int(peak_in(te, le, self.warmup, self.duration))
        return {
            "peak_db": int(peak_in(t_all, lvl_all, self.warmup, self.duration)),
            "peak_db_by_instance": by_instance,
            "max_connections": {i.name: i.max_connections for i in raw.instances},
            "peak_demand": int(peak_in(td, ld, self.warmup, self.duration)),
            "peak_demand_by_endpoint": by_endpoint,
            "opened": int((in_window & (conn["kind"] == CONN_OPENED)).sum()),
            "rejected": int((in_window & (conn["kind"] == CONN_REJECTED)).sum()),
            "closed": int((in_window & (conn["kind"] == CONN_CLOSED)).sum()),
            "refused": int((in_window & (conn["kind"] == CONN_REFUSED)).sum()),
            "timed_out": int((in_window & (conn["kind"] == CONN_TIMED_OUT)).sum()),
            "attempts": int((in_window & attempts).sum()),
            "attempts_peak_per_s": rnd(peak),
            "attempts_peak_at_s": rnd(peak_at),
            "storms": storms(conn, attempts, self.warmup, self.duration),
            "circuit_breakers_opened": int(sum(raw.extra.get("breakers", {}).values())),
        }

    # ------------------------------------------------------------- replication

    @cached_property
    def replica_reads(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Successful reads served by replicas: (request indexes, stale, read-your-writes violation).

        A read observes its replica when it starts on a vCPU (a statement's snapshot).
        """
        raw = self.raw
        log = raw.replication
        c = self.cols
        column = np.full(len(raw.instances) + 1, -1, dtype=np.int64)  # last slot: no instance (-1)
        for j, replica in enumerate(log.replicas):
            column[replica.instance] = j
        on_replica = column[c["instance"]] if c["instance"].size else np.zeros(0, np.int64)
        idx = np.flatnonzero(self.ok & ~self.is_write & (on_replica >= 0))
        stale, ryw = stale_reads(
            log.write_t,
            log.write_key,
            log.write_session,
            log.apply_t,
            c["t_start"][idx],
            c["key"][idx],
            c["session"][idx],
            on_replica[idx],
        )
        return idx, stale, ryw

    @cached_property
    def replication_summary(self) -> dict[str, Any]:
        """summary.json's `replication` (the theory panel quotes its lag beside the expected one)."""
        raw = self.raw
        log = raw.replication
        measured = (log.write_t >= self.warmup) & (log.write_t < self.duration)
        lags = [
            (log.apply_t[:, j] - log.write_t)[measured & r.lag_counts(log.write_t, log.apply_t[:, j])]
            * 1000.0
            for j, r in enumerate(log.replicas)
        ]

        def lag_stats(lag: np.ndarray) -> dict[str, Any]:
            if lag.size == 0:
                return {"mean": 0.0, "p99": 0.0, "max": 0.0}
            return {"mean": rnd(lag.mean()), "p99": rnd(np.percentile(lag, 99)), "max": rnd(lag.max())}

        idx, stale, ryw = self.replica_reads
        in_window = self.window[idx]
        query = self.cols["query"][idx]

        def counts(mask: np.ndarray) -> dict[str, Any]:
            n = int(mask.sum())
            n_stale = int((stale & mask).sum())
            return {
                "reads_on_replicas": n,
                "stale_reads": n_stale,
                "stale_read_fraction": rnd(n_stale / n) if n else 0.0,
                "read_your_writes_violations": int((ryw & mask).sum()),
            }

        by_query = {}
        for qi, q in enumerate(raw.queries):
            if q.kind == "read":
                name = q.name if [x.name for x in raw.queries].count(q.name) == 1 else f"{q.service}:{q.name}"
                by_query[name] = counts(in_window & (query == qi))
        return {
            "kind": log.replicas[0].kind if log.replicas else "none",
            "lag_ms": lag_stats(np.concatenate(lags) if lags else np.empty(0)),
            **counts(in_window),
            "lag_ms_by_replica": {r.name: lag_stats(lags[j]) for j, r in enumerate(log.replicas)},
            "by_query": by_query,
        }

    def _storage(self) -> dict[str, Any]:
        st = self.raw.storage
        measured = (st.commit_t >= self.warmup) & (st.commit_t < self.duration)
        commit_ms = st.commit_s[measured] * 1000.0
        return {
            "kind": st.kind,
            "commit_ms": {
                "mean": rnd(commit_ms.mean()) if commit_ms.size else 0.0,
                "p50": rnd(np.percentile(commit_ms, 50)) if commit_ms.size else 0.0,
                "p99": rnd(np.percentile(commit_ms, 99)) if commit_ms.size else 0.0,
            },
            "write_quorum_lost_s": rnd(self._time_below(st.write_quorum)),
            "read_quorum_lost_s": rnd(self._time_below(st.read_quorum)),
            "data_loss": bool(st.data_loss),
        }

    def _time_below(self, quorum: int) -> float:
        """Seconds of the measured period with fewer than ``quorum`` storage copies reachable."""
        st = self.raw.storage
        starts = np.clip(st.state_t, self.warmup, self.duration)
        ends = np.clip(np.append(st.state_t[1:], self.duration), self.warmup, self.duration)
        return float(((ends - starts) * (st.state_reachable < quorum)).sum())

    def _replication_timeseries(self, ts: dict[str, np.ndarray], n: int, interval: float) -> None:
        log = self.raw.replication
        edges = np.arange(n + 1) * interval
        write_bins = np.minimum((log.write_t / interval).astype(np.int64), n - 1)
        ts["CommittedWrites"] = np.bincount(write_bins, minlength=n)[:n] / interval
        st = self.raw.storage
        if st.commit_t.size:
            commit_bins = np.minimum((st.commit_t / interval).astype(np.int64), n - 1)
            count = np.bincount(commit_bins, minlength=n)[:n]
            total = np.bincount(commit_bins, weights=st.commit_s, minlength=n)[:n]
            ts["CommitLatency"] = np.where(count > 0, total / np.maximum(count, 1), 0.0) * 1000.0
        else:
            ts["CommitLatency"] = np.zeros(n)
        if st.kind == "aurora":
            ts["StorageCopiesReachable"] = level_at(
                st.state_t, st.state_reachable.astype(np.float64), edges[1:], float(st.copies)
            )
        aurora = [j for j, r in enumerate(log.replicas) if r.kind == "aurora"]
        for j, replica in enumerate(log.replicas):
            if j in aurora:
                ts[f"AuroraReplicaLag.{replica.name}"] = (
                    mean_lag_per_bin(log.write_t, log.apply_t[:, j], edges) * 1e3
                )
            else:
                ts[f"ReplicaLag.{replica.name}"] = replica_lag_at(log.write_t, log.apply_t[:, j], edges[1:])
        if aurora:
            ts["AuroraReplicaLagMaximum"] = np.max(
                [ts[f"AuroraReplicaLag.{log.replicas[j].name}"] for j in aurora], axis=0
            )
        idx, stale, ryw = self.replica_reads
        if idx.size or log.replicas:
            read_bins = np.minimum((self.cols["t_start"][idx] / interval).astype(np.int64), n - 1)
            reads = np.bincount(read_bins, minlength=n)[:n]
            n_stale = np.bincount(read_bins[stale], minlength=n)[:n]
            ts["ReplicaReads"] = reads / interval
            ts["StaleReads"] = n_stale / interval
            ts["StaleReadFraction"] = np.where(reads > 0, n_stale / np.maximum(reads, 1), 0.0)
            ts["ReadYourWritesViolations"] = np.bincount(read_bins[ryw], minlength=n)[:n] / interval

    @cached_property
    def failovers(self) -> list[dict[str, Any]]:
        """Writer outages (failovers, in-place restarts, reboots) with what the clients saw."""
        c = self.cols
        client = (self.service << 32) | c["task"].astype(np.int64)
        found = failover_summaries(
            self.raw.extra.get("failovers", []),
            c["t_arrive"],
            c["t_end"],
            self.ok,
            self.is_write,
            client,
            self.conn["t"][self.attempts],
            self.duration,
        )
        return [{k: rnd(v) for k, v in f.items()} for f in found]

    @cached_property
    def _write_windows(self) -> list[tuple[float, float]]:
        return self._downtime(self.is_write)

    def _downtime(self, mask: np.ndarray) -> list[tuple[float, float]]:
        return downtime_windows(
            self.cols["t_end"][mask], self.ok[mask], self.warmup, self.duration, MIN_DOWNTIME_WINDOW_S
        )

    def _secondary_reads(self) -> dict[str, Any]:
        """Reads served in aurora-global's secondary Region (by the instance's first Region), and how many
        were stale: the cross-Region lag as readers there see it."""
        regions = self.scenario.cluster.regions()
        idx, stale, ryw = self.replica_reads
        region = np.array([i.region for i in self.raw.instances] + [""], dtype=object)
        there = (
            self.window[idx] & (region[self.cols["instance"][idx]] == regions[1]) if regions else stale[:0]
        )
        n = int(there.sum())
        n_stale = int((stale[: there.size] & there).sum())
        return {
            "reads": n,
            "stale_reads": n_stale,
            "stale_read_fraction": rnd(n_stale / n) if n else 0.0,
            "read_your_writes_violations": int((ryw[: there.size] & there).sum()),
        }

    def _availability(self) -> dict[str, Any]:
        windows: list[dict[str, Any]] = []
        totals = {}
        for kind, mask in (("write", self.is_write), ("read", ~self.is_write)):
            found = self._write_windows if kind == "write" else self._downtime(mask)
            totals[kind] = sum(e - s for s, e in found)
            windows += [{"start_s": rnd(s), "end_s": rnd(e), "kind": kind} for s, e in found]
        windows.sort(key=lambda x: (x["start_s"], x["kind"]))
        failovers = self.failovers
        recovery = [
            (f["clients_recovered_s"] if f["clients_recovered_s"] is not None else self.duration)
            - f["start_s"]
            for f in failovers
        ]
        return {
            "write_downtime_s": rnd(totals["write"]),
            "read_downtime_s": rnd(totals["read"]),
            "windows": windows,
            "failovers": len(failovers),
            # server side: fault until the new writer accepts writes, summed
            "writer_unavailable_s": rnd(
                sum(
                    (f["writer_available_s"] if f["writer_available_s"] is not None else self.duration)
                    - f["start_s"]
                    for f in failovers
                )
            ),
            # client side: the longest time from a fault until every client wrote again (to the run's end
            # when some never did)
            "client_recovery_s": rnd(max(recovery, default=0.0)),
            "clients_not_recovered": sum(f["clients_not_recovered"] for f in failovers),
            # the largest reconnect storm against a new writer (attempts per second in 100 ms bins)
            "reconnect_peak_per_s": rnd(max((f["reconnect_peak_per_s"] for f in failovers), default=0.0)),
        }

    def _theory(self) -> dict[str, Any]:
        raw = self.raw
        s = self.scenario
        out: dict[str, Any] = {}
        writer = raw.instances[0]
        q = theory.queueing(s, writer.vcpu)
        if q is not None:
            c = self.cols
            on_writer = self.window & self.ok & (c["instance"] == 0)
            waits = c["t_start"][on_writer] - c["t_acquired"][on_writer]
            measured = self.duration - self.warmup
            q = {k: rnd(v) for k, v in q.items()}
            q["instance"] = writer.name
            # sessions on a vCPU or queued for one: the M/M/c system's L
            load = raw.samples.get(f"DBLoad.wait.CPU.{writer.name}")
            cpu = raw.samples.get(f"CPUUtilization.{writer.name}")
            first = round(self.warmup / s.timeseries_interval)
            q["simulated"] = {
                "utilization": rnd(cpu[first:].mean() / 100.0)
                if cpu is not None and cpu[first:].size
                else None,
                "p_wait": rnd((waits > 0).mean()) if waits.size else None,
                "wq_ms": rnd(waits.mean() * 1000) if waits.size else None,
                "throughput_per_s": rnd(on_writer.sum() / measured),
                "little_l": rnd(load[first:].mean()) if load is not None and load[first:].size else None,
            }
            out["queueing"] = q
        members = theory.endpoint_members(s, raw.instances)
        limits = {i.name: i.max_connections for i in raw.instances}
        out["connection_budget"] = theory.connection_budget(s, limits, members)
        storage = self._storage_theory()
        if storage:
            out["storage"] = storage
        replication = self._replication_theory()
        if replication:
            out["replication"] = replication
        if any(q.plan is not None for q in self.query_specs):
            out["plans"] = self._plans_theory(members)
        return out

    def _plans_theory(self, members: dict[str, list[str]]) -> dict[str, Any]:
        """Per query with a plan: the table size at which its instance's CPU saturates, and when the table
        reaches it (FACTS: plan.saturation)."""
        s = self.scenario
        raw = self.raw
        vcpu = {i.name: float(i.vcpu) for i in raw.instances}
        # per instance, each query's load on it at t = 0 (vCPUs): (query index, load)
        load: dict[str, list[tuple[int, float]]] = {name: [] for name in vcpu}
        unknown: set[str] = set()  # instances a closed loop or a follow-up reaches: their rate is not given
        per_query: list[tuple[Any, float | None, list[str]]] = []  # (spec, rate on each member, members)
        services = {svc.name: svc for svc in s.services}
        for qi, (spec, info) in enumerate(zip(self.query_specs, raw.queries, strict=True)):
            svc = services[info.service]
            route = spec.route or svc.connect_via
            reached = members.get({"proxy": "writer", "proxy:reader": "reader"}.get(route, route), [])
            if spec.users is not None or spec.follows is not None:
                unknown.update(reached)
                per_query.append((spec, None, reached))
                continue
            rate = theory._mean_rate(s, svc, spec) / max(len(reached), 1)
            for m in reached:
                load[m].append((qi, rate * theory.plan_cost_s(spec, 0.0)))
            per_query.append((spec, rate, reached))
        out: dict[str, Any] = {}
        for qi, ((spec, rate, reached), key) in enumerate(zip(per_query, self.query_keys, strict=True)):
            plan = spec.plan
            if plan is None:
                continue
            entry: dict[str, Any] = {"formula": theory.PLAN_FORMULA}
            if rate is None or any(m in unknown for m in reached) or not reached:
                why = (
                    "a closed-loop (users) or follows query reaches the instance: its rate depends on latency"
                )
                out[key] = {
                    **entry,
                    "instance": reached[0] if reached else None,
                    "saturation_rows": None,
                    "saturation_s": None,
                    "reason": why,
                }
                continue
            best: tuple[float, str, float] | None = None
            for m in reached:
                other = math.fsum(v for j, v in load[m] if j != qi)
                r_sat = theory.plan_saturation_rows(
                    plan.access, spec.cpu, plan.cost_per_row, rate, vcpu[m], other
                )
                rank = math.inf if r_sat is None else r_sat
                if best is None or rank < best[0]:
                    best = (rank, m, other)
            assert best is not None
            rank, name, other = best
            r_sat = None if math.isinf(rank) else rank
            if r_sat is None:
                when = None
            elif r_sat <= plan.rows:
                when = 0.0  # saturated from the start
            elif plan.growth > 0.0 and (r_sat - plan.rows) / plan.growth <= self.duration:
                when = (r_sat - plan.rows) / plan.growth
            else:
                when = None
            out[key] = {
                **entry,
                "instance": name,
                "vcpu": rnd(vcpu[name]),
                "arrival_rate_per_s": rnd(rate),
                "other_load_vcpu": rnd(other),
                "utilization_start": rnd((rate * theory.plan_cost_s(spec, 0.0) + other) / vcpu[name]),
                "utilization_end": rnd((rate * theory.plan_cost_s(spec, self.duration) + other) / vcpu[name]),
                "saturation_rows": rnd(r_sat),
                "saturation_s": rnd(when),
            }
        return out

    def _storage_theory(self) -> dict[str, Any] | None:
        """Expected time without quorum under random failures (FACTS: theory.quorum)."""
        cluster = self.scenario.cluster
        failures = cluster.storage.failures
        if not cluster.is_aurora or (failures.segment_mtbf is None and failures.az_mtbf is None):
            return None
        p_copy, p_az = 1.0, 1.0
        if failures.segment_mtbf is not None:
            mttr = failures.segment_mttr or cluster.storage.segment_repair
            p_copy = failures.segment_mtbf / (failures.segment_mtbf + mttr)
        if failures.az_mtbf is not None:
            p_az = failures.az_mtbf / (failures.az_mtbf + failures.az_mttr)
        measured = self.duration - self.warmup
        lost = {
            kind: 1.0 - theory.az_quorum_availability(3, 2, k, p_copy, p_az)
            for kind, k in (("write", 4), ("read", 3))
        }
        return {
            "model": "binomial per AZ: P(at least k of 6 copies reachable), copies and AZs independent",
            "copy_up_probability": rnd(p_copy),
            "az_up_probability": rnd(p_az),
            "write_quorum_lost_fraction": rnd(lost["write"]),
            "read_quorum_lost_fraction": rnd(lost["read"]),
            "simulated": {
                "write_quorum_lost_fraction": rnd(self._time_below(4) / measured),
                "read_quorum_lost_fraction": rnd(self._time_below(3) / measured),
            },
        }

    def _replication_theory(self) -> dict[str, Any] | None:
        """Expected lag from the scenario's write rates (FACTS: replication.aurora_lag, replication.rds_async)."""
        s = self.scenario
        steps = theory.write_rate_steps(s)
        if not s.cluster.readers or not steps:
            return None
        measured = self.duration - self.warmup
        ends = [t for t, _ in steps[1:]] + [self.duration]
        mean_rate = sum(r * (e - t) for (t, r), e in zip(steps, ends, strict=True)) / self.duration
        peak_rate = max(r for _, r in steps)
        log = self.raw.replication
        out: dict[str, Any] = {
            "mean_write_rate_per_s": rnd(mean_rate),
            "peak_write_rate_per_s": rnd(peak_rate),
        }
        if s.cluster.is_aurora:
            lag = s.cluster.replication.aurora
            out["aurora_lag_ms_at_mean_rate_idle_reader"] = rnd(
                1000 * theory.aurora_lag_s(mean_rate, lag.base, lag.per_1000_writes, lag.load_factor, 0.0)
            )
        else:
            out["replicas"] = {
                r.name: {
                    "apply_rate_per_s": rnd(r.apply_rate),
                    "lag_growth_s_per_s_at_peak": rnd(
                        theory.async_lag_growth(peak_rate, r.apply_rate or 1.0)
                    ),
                    "peak_lag_s_fluid": rnd(
                        theory.async_peak_lag_s(steps, self.duration, r.apply_rate or 1.0)
                    ),
                }
                for r in s.cluster.readers
            }
        out["simulated"] = {"lag_ms": self.replication_summary["lag_ms"]} if log.replicas and measured else {}
        return out


def _rate(times: np.ndarray, n: int, interval: float) -> np.ndarray:
    if times.size == 0:
        return np.zeros(n)
    return np.bincount(np.minimum((times / interval).astype(np.int64), n - 1), minlength=n)[:n] / interval


def downtime_windows(
    t_end: np.ndarray, ok: np.ndarray, start: float, end: float, min_window_s: float = 0.0
) -> list[tuple[float, float]]:
    """Client-seen downtime: from a failure to the next success (by completion time), clipped to [start, end].

    Requests of every client are merged: one success anywhere ends a window. Windows shorter than
    ``min_window_s`` (after clipping) are dropped.
    """
    if t_end.size == 0 or ok.all():
        return []
    if np.all(t_end[1:] >= t_end[:-1]):  # the recorder writes in completion order
        t, good = t_end, ok
    else:
        order = np.argsort(t_end, kind="stable")
        t, good = t_end[order], ok[order]
    bad = np.flatnonzero(~good)
    previous_ok = np.r_[True, good[:-1]]
    first_bad = bad[previous_ok[bad]]
    good_idx = np.flatnonzero(good)
    nxt = np.searchsorted(good_idx, first_bad)
    if good_idx.size:
        ends = np.where(nxt < good_idx.size, t[good_idx[np.minimum(nxt, good_idx.size - 1)]], end)
    else:
        ends = np.full(first_bad.size, end)
    starts = t[first_bad]
    s_clip, e_clip = np.clip(starts, start, end), np.clip(ends, start, end)
    keep = (e_clip > s_clip) & (e_clip - s_clip >= min_window_s)
    return [(float(a), float(b)) for a, b in zip(s_clip[keep], e_clip[keep], strict=True)]


def lookup(summary: dict[str, Any], path: str) -> Any:
    node: Any = summary
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


class ExpectationError(SimdbError):
    """An `expect:` line names no number in summary.json."""

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


def evaluate_expectations(checks: list[str], summary: dict[str, Any]) -> list[dict[str, Any]]:
    ops = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    results = []
    for index, check in enumerate(checks):
        path, op, expected = parse_expect(check)
        try:
            value = lookup(summary, path)
        except KeyError:
            import difflib

            candidates = list(_paths(summary))
            close = difflib.get_close_matches(path, candidates, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ExpectationError(index, f"summary.json has no {path!r}{hint}") from None
        if isinstance(value, dict | list | str) or value is None:
            raise ExpectationError(index, f"{path!r} in summary.json is not a number")
        results.append({"check": check, "value": rnd(value), "passed": bool(ops[op](float(value), expected))})
    return results


def _paths(node: Any, prefix: str = ""):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, f"{prefix}.{k}" if prefix else k)
    elif prefix:
        yield prefix
