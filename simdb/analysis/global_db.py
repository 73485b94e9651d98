"""Aurora Global Database results: cross-Region lag, each switchover's and failover's RPO and lost writes,
and the timeseries CloudWatch reports for it (FACTS: global.lag, global.failover, global.switchover,
global.metrics).

Definitions (times in seconds; the model records, per write, when it reached the other Region's volume,
infinite when a failover's cut left it behind):

* **cross-Region lag** of a write: its arrival in the other Region's volume − its commit
  (``AuroraGlobalDBReplicationLag``, the mean over the writes committed in each interval);
* **RPO lag** at time t: the age of the oldest write committed by t that has not reached the other Region
  by t (``AuroraGlobalDBRPOLag``), 0 when all have;
* a failover's **lost writes**: the writes of its epoch committed before the cut that had not arrived by
  then; its **RPO** is the RPO lag at the cut: cut − the commit of the oldest of them (0 with none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import RawRun
from .staleness import replica_lag_at
from .steps import rnd


def neutral() -> dict[str, Any]:
    """The block of a run without a global database: present, zero and empty."""
    return {
        "regions": [],
        "primary_region": "",
        "secondary_instances": [],
        "lag_ms": {"mean": 0.0, "p99": 0.0, "max": 0.0},
        "secondary_reads": {
            "reads": 0,
            "stale_reads": 0,
            "stale_read_fraction": 0.0,
            "read_your_writes_violations": 0,
        },
        "switchovers": 0,
        "failovers": 0,
        "rpo_s": 0.0,
        "lost_writes": 0,
        "promotion_s": 0.0,
        "recovery_s": 0.0,
        "write_downtime_s": 0.0,
        "operations": [],
    }


def lost_writes(write_t: np.ndarray, arrival: np.ndarray, epoch: np.ndarray, k: int) -> np.ndarray:
    """Indexes of epoch ``k``'s writes that never reached the other Region."""
    return np.flatnonzero((epoch == k) & np.isinf(arrival))


def global_summary(
    raw: RawRun,
    warmup: float,
    duration: float,
    secondary_reads: dict[str, Any],
    write_windows: list[tuple[float, float]],
    failovers: list[dict[str, Any]],
) -> dict[str, Any]:
    """summary.json's ``global`` block; ``write_windows`` are the client-seen write downtime windows and
    ``failovers`` the summary's entries (an operation's clients recovered with its writer outage)."""
    info = raw.extra.get("global")
    if info is None:
        return neutral()
    log = raw.replication
    write_t, arrival, epoch = log.write_t, log.global_arrival, log.global_epoch
    measured = (write_t >= warmup) & (write_t < duration) & np.isfinite(arrival)
    lag_ms = (arrival[measured] - write_t[measured]) * 1000.0
    ops = []
    starts = [op["start_s"] for op in info["operations"]]
    for i, op in enumerate(info["operations"]):
        lost = lost_writes(write_t, arrival, epoch, op["epoch"]) if op["kind"] == "failover" else []
        cut = op["failure_s"]
        rpo = float(cut - write_t[lost].min()) if len(lost) else 0.0
        begin = cut if cut is not None else op["start_s"]
        end = starts[i + 1] if i + 1 < len(starts) else duration
        down = sum(max(0.0, min(b, end) - max(a, begin)) for a, b in write_windows)
        fo = failovers[op["failover_index"]] if op["failover_index"] < len(failovers) else {}
        recovered = fo.get("clients_recovered_s")
        ops.append(
            {
                "kind": op["kind"],
                "start_s": rnd(op["start_s"]),
                "from_region": op["from_region"],
                "to_region": op["to_region"],
                "promoted": op["promoted"],
                "failure_s": rnd(cut),
                "synced_s": rnd(op["synced_s"]),
                "promotion_started_s": rnd(op["promotion_started_s"]),
                "writer_available_s": rnd(op["writer_available_s"]),
                "dns_updated_s": rnd(op["dns_updated_s"]),
                "promotion_s": rnd(
                    op["writer_available_s"] - op["promotion_started_s"]
                    if op["writer_available_s"] is not None
                    else None
                ),
                "rpo_s": rnd(rpo),
                "lost_writes": len(lost),
                "write_downtime_s": rnd(down),
                "clients_recovered_s": rnd(recovered),
                # from the operation's start (the switchover or failover call) until every client wrote again
                "recovery_s": rnd(None if recovered is None else recovered - op["start_s"]),
            }
        )
    failed_over = [o for o in ops if o["kind"] == "failover"]
    return {
        "regions": list(info["regions"]),
        "primary_region": info["primary_region"],
        "secondary_instances": [i.name for i in raw.instances if i.region == info["regions"][1]],
        "lag_ms": {
            "mean": rnd(lag_ms.mean()) if lag_ms.size else 0.0,
            "p99": rnd(np.percentile(lag_ms, 99)) if lag_ms.size else 0.0,
            "max": rnd(lag_ms.max()) if lag_ms.size else 0.0,
        },
        "secondary_reads": secondary_reads,
        "switchovers": sum(1 for o in ops if o["kind"] == "switchover"),
        "failovers": len(failed_over),
        "rpo_s": max((o["rpo_s"] for o in failed_over), default=0.0),
        "lost_writes": sum(o["lost_writes"] for o in failed_over),
        "promotion_s": max((o["promotion_s"] or 0.0 for o in ops), default=0.0),
        # the longest, to the end of the run when some client never wrote again
        "recovery_s": rnd(
            max(
                (o["recovery_s"] if o["recovery_s"] is not None else duration - o["start_s"] for o in ops),
                default=0.0,
            )
        ),
        "write_downtime_s": rnd(sum(o["write_downtime_s"] for o in ops)),
        "operations": ops,
    }


def global_timeseries(ts: dict[str, np.ndarray], raw: RawRun, n: int, interval: float) -> None:
    """``AuroraGlobalDBReplicationLag`` (ms, mean of the writes committed in each interval; empty when none
    arrived) and ``AuroraGlobalDBRPOLag`` (ms, at the interval's end, in the epoch then running; empty
    between a failover's cut and the new primary's first instant)."""
    info = raw.extra.get("global")
    if info is None:
        return
    log = raw.replication
    write_t, arrival, epoch = log.write_t, log.global_arrival, log.global_epoch
    shipped = np.isfinite(arrival)
    bins = np.minimum((write_t[shipped] / interval).astype(np.int64), n - 1)
    count = np.bincount(bins, minlength=n)[:n]
    total = np.bincount(bins, weights=arrival[shipped] - write_t[shipped], minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        ts["AuroraGlobalDBReplicationLag"] = np.where(count > 0, total / count, np.nan) * 1000.0
    ends = (np.arange(n) + 1) * interval
    rpo = np.full(n, np.nan)
    plan = info["plan"]
    epochs = plan.epochs
    for k, ep in enumerate(epochs):
        last = ep.cut if ep.cut is not None else (epochs[k + 1].start if k + 1 < len(epochs) else np.inf)
        within = (ends >= ep.start) & (ends <= last)
        # no secondary to measure against while the target Region is out (CloudWatch has no data then)
        for a, b in plan.outages.get(ep.target, ()):
            within &= ~((ends >= a) & (ends < b))
        mine = epoch == k
        rpo[within] = replica_lag_at(write_t[mine], arrival[mine], ends[within]) * 1000.0
    ts["AuroraGlobalDBRPOLag"] = rpo
