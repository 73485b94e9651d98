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
from .steps import (
    connection_delta,
    count_per_bin,
    level_at,
    max_per_bin,
    mean_by_bin,
    mean_per_bin,
    peak_in,
    rnd,
    sorted_levels,
)

# assumed: rejected connection attempts less than this far apart belong to one storm
STORM_GAP_S = 5.0


def peak(t: np.ndarray, delta: np.ndarray, start: float, end: float) -> int:
    """Highest level on [start, end] of a step function given by its changes."""
    return int(peak_in(*sorted_levels(t, delta), start, end))


def stats_ms(seconds: np.ndarray) -> dict[str, Any]:
    if seconds.size == 0:
        return {"mean": 0.0, "p99": 0.0}
    return {"mean": rnd(seconds.mean() * 1000.0), "p99": rnd(np.percentile(seconds, 99) * 1000.0)}


def _proxy_db(conn: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(time, change) of the DB connections the proxy owns (service -1 in the connection log)."""
    mine = conn["service"] == -1
    return conn["t"][mine], connection_delta(conn["kind"][mine])


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
    out.update(
        {
            "borrow_latency_ms": stats_ms(bw[in_window]),
            "borrow_timeouts": int(((timeouts >= start) & (timeouts <= end)).sum()),
            "peak_client_connections": peak(log["client_t"], log["client_delta"], start, end),
            "peak_db_connections": peak(*_proxy_db(conn), start, end),
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
    ts["DatabaseConnections.proxy"] = mean_per_bin(*_proxy_db(conn), n, interval)
    # µs, as CloudWatch reports it
    ts["DatabaseConnectionsBorrowLatency"] = (
        mean_by_bin(log["borrow_t"], log["borrow_wait"], n, interval) * 1e6
    )
    ts["DatabaseConnectionRequests"] = count_per_bin(log["requests_t"], n, interval)
    ts["DatabaseConnectionsCurrentlySessionPinned"] = level_at(
        *sorted_levels(log["pin_t"], log["pin_delta"]), (np.arange(n) + 1) * interval
    )


# --------------------------------------------------------------------------------------------- lambda


def lambda_summary(
    logs: dict[str, dict[str, np.ndarray]], reserved: dict[str, int | None], start: float, end: float
) -> dict[str, Any]:
    def within(t: np.ndarray) -> np.ndarray:
        return (t >= start) & (t <= end)

    functions = {}
    for name, log in logs.items():
        conc_t, conc_d = log["conc_t"], log["conc_delta"]
        done = within(log["end_t"])
        cold = within(log["cold_t"])
        functions[name] = {
            "invocations": int(within(conc_t[conc_d > 0]).sum()),
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
        ts[f"Duration.{name}"] = mean_by_bin(log["end_t"], log["duration_s"], n, interval) * 1000.0  # ms
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
                "start_s": rnd(s0),
                "end_s": rnd(s1),
                "recovered_s": rnd(s1 - s0),
                "rejected": int(b - a + 1),
                "attempts": int(hi - lo),
                "attempts_peak_per_s": rnd(rate),
                "attempts_peak_at_s": rnd(at),
            }
        )
    return out
