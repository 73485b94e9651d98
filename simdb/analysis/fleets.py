"""RDS Proxy, Lambda and connection-storm analysis: vectorised over the logs the run kept.

Step functions (client connections, pinned sessions, concurrency) come as change times and sizes; per
interval they are reported the way CloudWatch reads them: ConcurrentExecutions as the interval's
maximum, connection counts as the interval's time average, counts (Invocations, Throttles,
DatabaseConnectionRequests) as sums per interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .availability import attempt_peak

# assumed: rejected connection attempts less than this far apart belong to one storm
STORM_GAP_S = 5.0


def _rnd(x: Any, digits: int = 6) -> Any:
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


def levels(t: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Change times (stably sorted) and the level after each change."""
    order = np.argsort(t, kind="stable")
    return t[order], np.cumsum(delta[order], dtype=np.float64)


def level_at(t: np.ndarray, lv: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The level just after every change at or before each of ``at``."""
    idx = np.searchsorted(t, at, side="right") - 1
    return np.where(idx >= 0, lv[np.clip(idx, 0, None)] if lv.size else 0.0, 0.0)


def mean_per_bin(t: np.ndarray, delta: np.ndarray, n: int, interval: float) -> np.ndarray:
    """Time average of a step function over each interval [k·interval, (k+1)·interval)."""
    if t.size == 0:
        return np.zeros(n)
    t, lv = levels(t, delta)
    # area up to each change: level before it times the time since the previous change
    prev = np.r_[0.0, lv[:-1]]
    area_at = np.cumsum(prev * np.diff(np.r_[t[0], t]))
    edges = np.arange(n + 1) * interval
    idx = np.searchsorted(t, edges, side="right") - 1
    area = np.where(
        idx >= 0,
        area_at[np.clip(idx, 0, None)] + lv[np.clip(idx, 0, None)] * (edges - t[np.clip(idx, 0, None)]),
        0.0,
    )
    # before the first change the level is 0, so the area up to t[0] is 0 as the formula gives
    return np.diff(area) / interval


def max_per_bin(t: np.ndarray, delta: np.ndarray, n: int, interval: float) -> np.ndarray:
    """Highest level of a step function within each interval (changes at one instant applied together)."""
    if t.size == 0:
        return np.zeros(n)
    t, lv = levels(t, delta)
    last = np.r_[t[1:] != t[:-1], True]
    t, lv = t[last], lv[last]
    out = level_at(t, lv, np.arange(n) * interval).astype(np.float64)
    bins = (t / interval).astype(np.int64)
    inside = (bins >= 0) & (bins < n)
    np.maximum.at(out, bins[inside], lv[inside])
    return out


def count_per_bin(t: np.ndarray, n: int, interval: float) -> np.ndarray:
    bins = (t / interval).astype(np.int64)
    bins = bins[(bins >= 0) & (bins < n)]
    return np.bincount(bins, minlength=n)[:n].astype(np.float64)


def peak(t: np.ndarray, delta: np.ndarray, start: float, end: float) -> int:
    """Highest level on [start, end]."""
    if t.size == 0:
        return 0
    t, lv = levels(t, delta)
    last = np.r_[t[1:] != t[:-1], True]
    t, lv = t[last], lv[last]
    at_start = level_at(t, lv, np.asarray([start]))[0]
    inside = lv[(t > start) & (t <= end)]
    return int(max(at_start, inside.max()) if inside.size else at_start)


def stats_ms(seconds: np.ndarray) -> dict[str, Any]:
    if seconds.size == 0:
        return {"mean": 0.0, "p99": 0.0}
    return {"mean": _rnd(seconds.mean() * 1000.0), "p99": _rnd(np.percentile(seconds, 99) * 1000.0)}


# ---------------------------------------------------------------------------------------------- proxy


def proxy_summary(
    log: dict[str, Any] | None, conn: dict[str, np.ndarray], start: float, end: float
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "borrow_latency_ms": {"mean": 0.0, "p99": 0.0},
        "borrow_timeouts": 0,
        "peak_client_connections": 0,
        "peak_db_connections": 0,
        "borrows": 0,
        "db_connection_requests": 0,
        "max_db_connections_allowed": {},
        "peak_pinned": 0,
    }
    if log is None:
        return out
    bt, bw = log["borrow_t"], log["borrow_wait"]
    in_window = (bt >= start) & (bt <= end)
    timeouts = log["timeout_t"]
    # a borrow that timed out waited the whole ConnectionBorrowTimeout: its latency counts too
    waits = np.r_[bw[in_window], np.full(int(((timeouts >= start) & (timeouts <= end)).sum()), np.nan)]
    proxy_db = conn["service"] == -1
    delta = np.where(conn["kind"][proxy_db] == 0, 1, np.where(conn["kind"][proxy_db] == 2, -1, 0))
    out.update(
        {
            "borrow_latency_ms": stats_ms(bw[in_window]),
            "borrow_timeouts": int(np.isnan(waits).sum()),
            "peak_client_connections": peak(log["client_t"], log["client_delta"], start, end),
            "peak_db_connections": peak(conn["t"][proxy_db], delta, start, end),
            "borrows": int(in_window.sum()),
            "db_connection_requests": int(((log["requests_t"] >= start) & (log["requests_t"] <= end)).sum()),
            "max_db_connections_allowed": dict(log["caps"]),
            "peak_pinned": peak(log["pin_t"], log["pin_delta"], start, end),
        }
    )
    return out


def proxy_timeseries(
    ts: dict[str, np.ndarray], log: dict[str, Any], conn: dict[str, np.ndarray], n: int, interval: float
) -> None:
    ts["ClientConnections"] = mean_per_bin(log["client_t"], log["client_delta"], n, interval)
    proxy_db = conn["service"] == -1
    kind = conn["kind"][proxy_db]
    delta = np.where(kind == 0, 1, np.where(kind == 2, -1, 0))
    ts["DatabaseConnections.proxy"] = mean_per_bin(conn["t"][proxy_db], delta, n, interval)
    bt, bw = log["borrow_t"], log["borrow_wait"]
    count = count_per_bin(bt, n, interval)
    bins = (bt / interval).astype(np.int64)
    keep = (bins >= 0) & (bins < n)
    total = np.bincount(bins[keep], weights=bw[keep], minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        ts["DatabaseConnectionsBorrowLatency"] = total / count * 1e6  # µs, as CloudWatch reports it
    ts["DatabaseConnectionRequests"] = count_per_bin(log["requests_t"], n, interval)
    ts["DatabaseConnectionsCurrentlySessionPinned"] = level_at(
        *levels(log["pin_t"], log["pin_delta"]), (np.arange(n) + 1) * interval
    )


# --------------------------------------------------------------------------------------------- lambda


def lambda_summary(
    logs: dict[str, dict[str, np.ndarray]], reserved: dict[str, int | None], start: float, end: float
) -> dict[str, Any]:
    functions = {}
    for name, log in logs.items():
        conc_t, conc_d = log["conc_t"], log["conc_delta"]
        started = conc_t[conc_d > 0]
        ends = log["end_t"]
        done = (ends >= start) & (ends <= end)

        def within(t: np.ndarray) -> np.ndarray:
            return (t >= start) & (t <= end)

        cold = within(log["cold_t"])
        functions[name] = {
            "invocations": int(within(started).sum()),
            "throttles": int(within(log["throttle_t"]).sum()),
            "cold_starts": int(cold.sum()),
            "peak_concurrency": peak(conc_t, conc_d, start, end),
            "peak_environments": peak(log["env_t"], log["env_delta"], start, end),
            "reserved_concurrency": reserved.get(name),
            "duration_ms": stats_ms(log["duration_s"][done]),
            "init_ms": stats_ms(log["init_s"][cold]),
        }
    if logs:
        all_t = np.concatenate([log["conc_t"] for log in logs.values()])
        all_d = np.concatenate([log["conc_delta"] for log in logs.values()])
        account_peak = peak(all_t, all_d, start, end)
    else:
        account_peak = 0
    return {
        "invocations": sum(f["invocations"] for f in functions.values()),
        "throttles": sum(f["throttles"] for f in functions.values()),
        "cold_starts": sum(f["cold_starts"] for f in functions.values()),
        "peak_concurrency": account_peak,
        "functions": functions,
    }


def lambda_timeseries(
    ts: dict[str, np.ndarray], logs: dict[str, dict[str, np.ndarray]], n: int, interval: float
) -> None:
    if not logs:
        return
    for name, log in logs.items():
        conc_t, conc_d = log["conc_t"], log["conc_delta"]
        ts[f"ConcurrentExecutions.{name}"] = max_per_bin(conc_t, conc_d, n, interval)
        ts[f"Invocations.{name}"] = count_per_bin(conc_t[conc_d > 0], n, interval)
        ts[f"Throttles.{name}"] = count_per_bin(log["throttle_t"], n, interval)
        ends = log["end_t"]
        count = count_per_bin(ends, n, interval)
        bins = (ends / interval).astype(np.int64)
        keep = (bins >= 0) & (bins < n)
        total = np.bincount(bins[keep], weights=log["duration_s"][keep], minlength=n)[:n]
        with np.errstate(invalid="ignore", divide="ignore"):
            ts[f"Duration.{name}"] = total / count * 1000.0  # ms
        ts[f"ColdStarts.{name}"] = count_per_bin(log["cold_t"], n, interval)
    all_t = np.concatenate([log["conc_t"] for log in logs.values()])
    all_d = np.concatenate([log["conc_delta"] for log in logs.values()])
    ts["ConcurrentExecutions"] = max_per_bin(all_t, all_d, n, interval)
    ts["Throttles"] = sum(ts[f"Throttles.{name}"] for name in logs)


# --------------------------------------------------------------------------------------------- storms


def storms(
    conn: dict[str, np.ndarray], attempts: np.ndarray, start: float, end: float
) -> list[dict[str, Any]]:
    """Connection storms: runs of rejected connection attempts (too_many_connections) with gaps under
    STORM_GAP_S, each with its attempts, rejections and peak attempt rate; ``recovered_s`` is the time
    from the first rejection to the last."""
    t = conn["t"]
    rejected_t = t[(conn["kind"] == 1) & (t >= start) & (t <= end)]
    if rejected_t.size == 0:
        return []
    rejected_t = np.sort(rejected_t)
    breaks = np.flatnonzero(np.diff(rejected_t) > STORM_GAP_S)
    firsts = np.r_[0, breaks + 1]
    lasts = np.r_[breaks, rejected_t.size - 1]
    att_t = np.sort(t[attempts])
    out = []
    for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):  # one iteration per storm
        s0, s1 = float(rejected_t[a]), float(rejected_t[b])
        lo, hi = np.searchsorted(att_t, [s0, s1], side="left")[0], np.searchsorted(att_t, s1, side="right")
        rate, at = attempt_peak(att_t[lo:hi], s0, s1 + 1e-9)
        out.append(
            {
                "start_s": _rnd(s0),
                "end_s": _rnd(s1),
                "recovered_s": _rnd(s1 - s0),
                "rejected": int(b - a + 1),
                "attempts": int(hi - lo),
                "attempts_peak_per_s": _rnd(rate),
                "attempts_peak_at_s": _rnd(at),
            }
        )
    return out
