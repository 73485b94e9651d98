"""Serverless v2 capacity, cost and held transactions: vectorised over the step functions the run kept.

Capacity is a step function (time, ACU) per instance; ACU-hours are its exact integral over the measured
window, cost is ACU-hours times the price. The provisioned comparison sizes, per instance, the smallest
db.r6g class with at least the memory of the peak capacity (2 GiB per ACU) and prices it per GiB-hour.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from ..catalog import GIB_PER_ACU, INSTANCE_CLASSES
from .steps import rnd

_R6G = sorted(
    (c for c in INSTANCE_CLASSES.values() if c.name.startswith("db.r6g.")), key=lambda c: c.memory_gib
)


def _overlaps(t: np.ndarray, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Each step's overlap with [start, end]: (lengths, which steps overlap at all or hold at ``end``)."""
    ends = np.append(t[1:], math.inf)
    lengths = np.clip(np.minimum(ends, end) - np.maximum(t, start), 0.0, None)
    at_end = (t <= end) & (ends > end)
    return lengths, (lengths > 0) | at_end


def capacity_stats(t: np.ndarray, v: np.ndarray, start: float, end: float) -> dict[str, float]:
    """ACU-seconds, peak, minimum and final capacity, and seconds paused (0 ACU), over [start, end]."""
    lengths, present = _overlaps(t, start, end)
    seen = v[present]
    final = v[np.searchsorted(t, end, side="right") - 1]
    return {
        "acu_s": float((v * lengths).sum()),
        "peak": float(seen.max()),
        "min": float(seen.min()),
        "final": float(final),
        "paused_s": float(lengths[v == 0].sum()),
    }


def _in_window(times: Any, start: float, end: float) -> int:
    t = np.asarray(times, dtype=np.float64)
    return int(((t >= start) & (t <= end)).sum())


def provisioned_class(peak_acu: float) -> Any:
    """The smallest db.r6g class with at least the peak capacity's memory (the largest if none has)."""
    need = GIB_PER_ACU * peak_acu
    return next((c for c in _R6G if c.memory_gib >= need - 1e-9), _R6G[-1])


def serverless_summary(log: dict[str, Any] | None, start: float, end: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "acu_hours": 0.0,
        "peak_acu": 0.0,
        "min_acu": 0.0,
        "final_acu": 0.0,
        "cost_usd": 0.0,
        "price_per_acu_hour": 0.0,
        "capacity_range": [],
        "pauses": 0,
        "resumes": 0,
        "paused_s": 0.0,
        "pinned_s": 0.0,
        "provisioned": {"instance_classes": {}, "cost_usd": 0.0, "saving_usd": 0.0},
        "instances": {},
    }
    if log is None:
        return out
    hours = (end - start) / 3600.0
    price = log["price_per_acu_hour"]
    gib_price = log["provisioned_price_per_gib_hour"]
    per: dict[str, Any] = {}
    for name, inst in log["instances"].items():
        t = np.frombuffer(inst["acu_t"], dtype=np.float64)
        v = np.frombuffer(inst["acu_v"], dtype=np.float64)
        st = capacity_stats(t, v, start, end)
        acu_hours = st["acu_s"] / 3600.0
        cls = provisioned_class(st["peak"])
        per[name] = {
            "acu_hours": rnd(acu_hours),
            "mean_acu": rnd(st["acu_s"] / (end - start)),
            "peak_acu": rnd(st["peak"]),
            "min_acu": rnd(st["min"]),
            "final_acu": rnd(st["final"]),
            "cost_usd": rnd(acu_hours * price),
            "pauses": _in_window(inst["pauses_t"], start, end),
            "resumes": _in_window(inst["resumes_t"], start, end),
            "paused_s": rnd(st["paused_s"]),
            # each pinned controller interval ends at its logged time: those ending in (start, end]
            "pinned_s": rnd(log["interval"] * _in_window(inst["pinned_t"], start + 1e-9, end)),
            "provisioned_class": cls.name,
            "provisioned_cost_usd": rnd(cls.memory_gib * gib_price * hours),
        }
    rows = list(per.values())
    out.update(
        {
            "acu_hours": rnd(sum(r["acu_hours"] for r in rows)),
            "peak_acu": max(r["peak_acu"] for r in rows),
            "min_acu": min(r["min_acu"] for r in rows),
            "final_acu": max(r["final_acu"] for r in rows),
            "cost_usd": rnd(sum(r["cost_usd"] for r in rows)),
            "price_per_acu_hour": price,
            "capacity_range": [log["min_acu"], log["max_acu"]],
            "pauses": sum(r["pauses"] for r in rows),
            "resumes": sum(r["resumes"] for r in rows),
            "paused_s": rnd(sum(r["paused_s"] for r in rows)),
            "pinned_s": rnd(sum(r["pinned_s"] for r in rows)),
            "provisioned": {
                "instance_classes": {n: r["provisioned_class"] for n, r in per.items()},
                "cost_usd": rnd(sum(r["provisioned_cost_usd"] for r in rows)),
                # what Serverless v2 saved against the provisioned instances (negative: it cost more)
                "saving_usd": rnd(
                    sum(r["provisioned_cost_usd"] for r in rows) - sum(r["cost_usd"] for r in rows)
                ),
            },
            "instances": per,
        }
    )
    return out


def cost_timeseries(ts: dict[str, np.ndarray], log: dict[str, Any] | None, interval: float) -> None:
    """ServerlessCost: US$ accumulated by the end of each interval (all Serverless v2 instances)."""
    if log is None:
        return
    cap = ts.get("ServerlessDatabaseCapacity")
    if cap is None:
        return
    n_inst = len(log["instances"])
    ts["ServerlessCostUSD"] = np.cumsum(cap * n_inst) * interval / 3600.0 * log["price_per_acu_hour"]


def transactions_summary(extra: dict[str, Any], timeout_s: float, start: float, end: float) -> dict[str, Any]:
    """Sessions ended by idle_in_transaction_session_timeout, and what each held-session event did."""
    per_instance = [np.asarray(times, dtype=np.float64) for times in extra.get("terminated", {}).values()]
    all_t = np.concatenate(per_instance) if per_instance else np.zeros(0)
    events = []
    for log in extra.get("sessions", []):
        held = [ended - began for began, ended in log["terminated"]]
        events.append(
            {
                "event": log["event"],
                "action": log["action"],
                "service": log["service"],
                "sessions": log["sessions"],
                "began": len(log["began_t"]),
                "ended": dict(Counter(log["outcomes"])),
                "terminated": len(held),
                "terminated_after_s": [rnd(h) for h in held],
                # row locks each session held (long_transaction keys, batch_update); absent without
                **({"keys": log["keys"]} if log.get("keys") else {}),
            }
        )
    return {
        "idle_in_transaction_session_timeout_s": rnd(timeout_s),
        "terminated": _in_window(all_t, start, end),
        "held_sessions": events,
    }
