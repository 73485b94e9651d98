"""Failovers as the clients saw them, and connection-attempt storms; vectorised over the request log.

A failover's server-side times come from the model's record (fault, detection, promotion, DNS update).
What clients saw comes from the requests: each client (a task of a service) has recovered at its first
successful write once the new writer was available. ``clients_recovered_s`` is when the last of them did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# connection attempts are counted in bins this wide to find a storm's peak: a lockstep reconnect lands in
# one bin, a jittered one spreads over many (assumed: 100 ms, shorter than any backoff cap in use)
STORM_BIN_S = 0.1


def failover_summaries(
    records: list[dict[str, Any]],
    t_arrive: np.ndarray,
    t_end: np.ndarray,
    ok: np.ndarray,
    is_write: np.ndarray,
    client: np.ndarray,
    attempt_t: np.ndarray,
    duration: float,
) -> list[dict[str, Any]]:
    """One entry per writer outage: the model's phase times plus the clients' recovery."""
    out = []
    starts = [r["start_s"] for r in records]
    for i, rec in enumerate(records):
        start = rec["start_s"]
        end = starts[i + 1] if i + 1 < len(starts) else duration
        available = rec["writer_available_s"]
        writes = is_write & (t_arrive >= start) & (t_arrive < end)
        clients = np.unique(client[writes])
        first_ok = clients_recovered = None
        not_recovered = int(clients.size)
        if available is not None:
            good = is_write & ok & (t_end > start) & (t_end < end)
            if good.any():
                first_ok = float(t_end[good].min())
            after = good & (t_end >= available)
            ids, t = client[after], t_end[after]
            order = np.lexsort((t, ids))
            ids, t = ids[order], t[order]
            first = np.r_[True, ids[1:] != ids[:-1]] if ids.size else np.zeros(0, dtype=bool)
            recovered_ids, recovered_t = ids[first], t[first]
            mine = np.isin(recovered_ids, clients)
            not_recovered = int(clients.size - mine.sum())
            if mine.any() and not_recovered == 0:
                clients_recovered = float(recovered_t[mine].max())
        entry = {
            "start_s": start,
            "kind": rec["kind"],
            "cause": rec["cause"],
            "failed": rec["failed"],
            "mode": rec["mode"],
            "promoted": rec["promoted"],
            "in_flight": rec["in_flight"],
            "detected_s": rec["detected_s"],
            "writer_available_s": available,
            "dns_updated_s": rec["dns_updated_s"],
            "dns_ttl_s": rec["dns_ttl_s"],
            "first_write_ok_s": first_ok,
            "clients_recovered_s": clients_recovered,
            "clients": int(clients.size),
            "clients_not_recovered": not_recovered,
            "server_outage_s": None if available is None else available - start,
            "dns_outage_s": None if rec["dns_updated_s"] is None else rec["dns_updated_s"] - start,
            "client_outage_s": None if clients_recovered is None else clients_recovered - start,
        }
        # the storm against the new writer: attempts once it is available (before, they are refused anyway)
        entry["reconnect_peak_per_s"], entry["reconnect_peak_at_s"] = (
            attempt_peak(attempt_t, available, end) if available is not None else (0.0, 0.0)
        )
        out.append(entry)
    return out


def attempt_peak(t: np.ndarray, start: float, end: float) -> tuple[float, float]:
    """(peak connection attempts per second over STORM_BIN_S bins, the bin's start) within [start, end)."""
    t = t[(t >= start) & (t < end)]
    if t.size == 0:
        return 0.0, 0.0
    bins = np.floor(t / STORM_BIN_S).astype(np.int64)
    first = int(bins.min())
    counts = np.bincount(bins - first)
    top = int(counts.argmax())
    return float(counts[top] / STORM_BIN_S), float((first + top) * STORM_BIN_S)
