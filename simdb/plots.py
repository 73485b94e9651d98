"""Pictures of a run, drawn from analysis output only (timeseries, events, summary).

Every figure has a title, axis labels with units, the warm-up shaded and timed events marked.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, ScalarFormatter

from .record import ERROR_CODES

ERROR_COLORS = dict(zip(ERROR_CODES, matplotlib.colormaps["tab10"].colors, strict=False))
# the end of something already marked: a thin grey line, no label
QUIET_EVENTS = (
    "tasks_stopped",
    "write_spike_end",
    "instance_up",
    "az_recovered",
    "storage_repaired",
    "locks_held",
    "locks_released",
)
# Performance Insights' wait classes, bottom to top of the stack (FACTS: pi.wait_classes)
WAIT_COLORS = {"CPU": "tab:green", "IO": "tab:blue", "Lock": "tab:red", "Client": "tab:orange"}
WAIT_LABELS = {
    "CPU": "CPU (on a vCPU or queued for one)",
    "IO": "IO (waiting for the commit)",
    "Lock": "Lock (waiting for a row lock)",
    "Client": "Client (idle in a transaction)",
}


def _subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure and its axes without pyplot: files are drawn with the Agg canvas whatever backend a
    notebook or script has chosen, and nothing is left open in pyplot's figure list."""
    fig = Figure(**{k: kwargs.pop(k) for k in ("figsize", "constrained_layout", "layout") if k in kwargs})
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _decorate(ax: Any, events: pd.DataFrame, summary: dict[str, Any], label: bool) -> None:
    warmup = summary.get("warmup_s") or 0
    if warmup:
        ax.axvspan(0, warmup, color="0.9", zorder=0, label="warm-up (excluded)" if label else None)
    for _, ev in events.iterrows():
        if ev["kind"] in QUIET_EVENTS:
            style = {"color": "0.5", "ls": ":", "lw": 0.9}
        else:
            style = {"color": "tab:purple", "ls": "--", "lw": 1.0}
        ax.axvline(ev["time_s"], **style, zorder=1)
    ax.grid(True, alpha=0.3)


def _event_labels(ax: Any, events: pd.DataFrame) -> None:
    shown: set[tuple[float, str]] = set()
    for _, ev in events.iterrows():
        if ev["kind"] in QUIET_EVENTS:
            continue
        key = (round(ev["time_s"], 3), ev["kind"])
        if key in shown:
            continue
        shown.add(key)
        ax.annotate(
            f"{ev['kind']} {ev['target']}",
            xy=(ev["time_s"], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=7,
            color="tab:purple",
        )


def _max_connection_lines(ax: Any, summary: dict[str, Any], ts: pd.DataFrame) -> None:
    for name, limit in summary["connections"]["max_connections"].items():
        if f"DatabaseConnections.{name}" in ts:
            ax.axhline(limit, color="tab:red", lw=1.2, ls="-.", label=f"max_connections {name} ({limit})")


def timeline(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Stacked panels: connections vs limits, throughput and errors, latency; events marked."""
    t = ts["time_s"]
    storage = "StorageCopiesReachable" in ts and ts["StorageCopiesReachable"].min() < 6
    fig, axes = _subplots(
        4 if storage else 3, 1, figsize=(11, 11 if storage else 9), sharex=True, constrained_layout=True
    )
    fig.suptitle(f"{summary['scenario']} — timeline (seed {summary['seed']})")

    ax = axes[0]
    names = list(summary["connections"]["max_connections"])
    for name in names:
        ax.plot(t, ts[f"DatabaseConnections.{name}"], lw=1.3, label=f"DatabaseConnections {name}")
    if "ConnectionDemand" in ts:
        ax.step(
            t,
            ts["ConnectionDemand"],
            where="post",
            color="0.3",
            lw=1.0,
            ls="--",
            label="pool demand (Σ max_size)",
        )
    _max_connection_lines(ax, summary, ts)
    ax.set_ylabel("connections (count)")
    ax.set_title("DB connections vs max_connections")
    _decorate(ax, events, summary, label=True)
    _event_labels(ax, events)
    ax.legend(loc="center right", fontsize=7, ncol=2)

    ax = axes[1]
    ax.plot(t, ts["Requests"], color="tab:green", lw=1.2, label="ok")
    for code in ERROR_CODES:
        col = f"Errors.{code}"
        if col in ts:
            ax.plot(t, ts[col], lw=1.2, color=ERROR_COLORS.get(code), label=code)
    ax.set_ylabel("requests / s")
    ax.set_title("Throughput and errors by code")
    _decorate(ax, events, summary, label=False)
    ax.legend(loc="upper left", fontsize=7, ncol=3)

    ax = axes[2]
    ax.plot(t, ts["LatencyP50"], lw=1.0, label="p50")
    ax.plot(t, ts["LatencyP99"], lw=1.0, label="p99")
    if "AcquireWaitP99" in ts:
        ax.plot(t, ts["AcquireWaitP99"], lw=1.0, ls="--", label="pool acquire wait p99")
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("Latency of successful requests")
    _decorate(ax, events, summary, label=False)
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    if storage:
        ax = axes[3]
        ax.step(
            t, ts["StorageCopiesReachable"], where="post", color="tab:brown", lw=1.3, label="copies reachable"
        )
        ax.axhline(4, color="tab:red", ls="-.", lw=1.0, label="write quorum (4 of 6)")
        ax.axhline(3, color="tab:orange", ls=":", lw=1.0, label="read quorum (3 of 6)")
        ax.set_ylim(-0.2, 6.5)
        ax.set_ylabel("copies (of 6)")
        ax.set_title("Aurora volume: storage copies reachable at each interval's end")
        _decorate(ax, events, summary, label=False)
        ax.legend(loc="lower left", fontsize=7, ncol=3)
    axes[-1].set_xlabel("simulated time (s)")
    fig.savefig(path, dpi=110)


def connections(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Per instance: connections vs max_connections, connection attempts and rejections per second."""
    names = list(summary["connections"]["max_connections"])
    t = ts["time_s"]
    fig, axes = _subplots(2, 1, figsize=(11, 7), sharex=True, constrained_layout=True)
    fig.suptitle(f"{summary['scenario']} — connections (seed {summary['seed']})")
    ax = axes[0]
    for name in names:
        ax.plot(t, ts[f"DatabaseConnections.{name}"], lw=1.3, label=f"DatabaseConnections {name}")
    for col in [c for c in ts.columns if c.startswith("ConnectionDemand.")]:
        ax.step(t, ts[col], where="post", lw=1.0, ls="--", label=f"pool demand via {col.split('.', 1)[1]}")
    _max_connection_lines(ax, summary, ts)
    ax.set_ylabel("connections (count)")
    ax.set_title("Open connections, pool demand and the limit")
    _decorate(ax, events, summary, label=True)
    _event_labels(ax, events)
    ax.legend(loc="center right", fontsize=7, ncol=2)
    ax = axes[1]
    for name in names:
        ax.plot(t, ts[f"ConnectionAttempts.{name}"], lw=1.0, label=f"ConnectionAttempts {name}")
        rejected = ts[f"ConnectionsRejected.{name}"]
        if rejected.any():
            ax.plot(t, rejected, lw=1.0, color="tab:red", label=f"rejected (too_many_connections) {name}")
    ax.set_ylabel("attempts / s")
    ax.set_xlabel("simulated time (s)")
    ax.set_title("Connection attempts and rejections")
    _decorate(ax, events, summary, label=False)
    ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path, dpi=110)


def stale_reads(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Stale-read fraction and read-your-writes violations above replica lag and the write rate."""
    t = ts["time_s"]
    rep = summary["replication"]
    fig, axes = _subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    fig.suptitle(
        f"{summary['scenario']} — stale reads (seed {summary['seed']}): "
        f"{rep['stale_reads']} of {rep['reads_on_replicas']} replica reads stale, "
        f"{rep['read_your_writes_violations']} read-your-writes violations"
    )
    ax = axes[0]
    if "StaleReadFraction" in ts:
        ax.plot(
            t,
            100.0 * ts["StaleReadFraction"],
            color="tab:red",
            lw=1.2,
            label="stale reads (% of replica reads)",
        )
        ax.set_ylim(bottom=0)
        right = ax.twinx()
        right.plot(
            t, ts["ReadYourWritesViolations"], color="tab:purple", lw=1.0, ls="--", label="RYW violations / s"
        )
        right.set_ylabel("read-your-writes violations / s")
        right.set_ylim(bottom=0)
        right.legend(loc="upper right", fontsize=7)
    else:
        ax.text(
            0.5, 0.5, "no replicas serve reads: nothing can be stale", ha="center", transform=ax.transAxes
        )
    ax.set_ylabel("stale reads (%)")
    ax.set_title("Reads on replicas that missed a committed write")
    _decorate(ax, events, summary, label=True)
    _event_labels(ax, events)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=7)

    ax = axes[1]
    aurora = [c for c in ts.columns if c.startswith("AuroraReplicaLag.")]
    rds = [c for c in ts.columns if c.startswith("ReplicaLag.")]
    for col in aurora:
        ax.plot(t, ts[col], lw=1.1, label=f"AuroraReplicaLag {col.split('.', 1)[1]} (ms)")
    for col in rds:
        ax.plot(
            t, ts[col] * (1.0 if not aurora else 1000.0), lw=1.1, label=f"ReplicaLag {col.split('.', 1)[1]}"
        )
    ax.set_ylabel("replica lag (ms)" if aurora else "replica lag (s)")
    ax.set_title("Replica lag (AuroraReplicaLag: mean per interval; ReplicaLag: at the interval's end)")
    _decorate(ax, events, summary, label=False)
    if aurora or rds:
        ax.legend(loc="upper left", fontsize=7)

    ax = axes[2]
    ax.plot(t, ts["CommittedWrites"], color="tab:blue", lw=1.1, label="committed writes / s")
    if "ReplicaReads" in ts:
        ax.plot(t, ts["ReplicaReads"], color="tab:green", lw=1.0, label="reads on replicas / s")
    ax.set_ylabel("rate (per s)")
    ax.set_xlabel("simulated time (s)")
    ax.set_title("Write rate and replica reads")
    _decorate(ax, events, summary, label=False)
    ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path, dpi=110)


# failover phases, shaded in downtime.png: (summary key where it starts, key where it ends, label, colour)
PHASES = (
    ("start_s", "detected_s", "detection", "tab:red"),
    ("detected_s", "writer_available_s", "promotion", "tab:orange"),
    ("writer_available_s", "dns_updated_s", "DNS update", "gold"),
    ("dns_updated_s", "dns_visible_s", "DNS TTL (resolver caches)", "tab:olive"),
    ("dns_visible_s", "clients_recovered_s", "client DNS caches / stale connections", "tab:cyan"),
)


def _shade(ax: Any, spans: Any, label: bool, scale: float = 1.0) -> None:
    """Shade (start, end, name, colour) spans, times divided by ``scale``; open or empty spans are skipped."""
    for a, b, name, color in spans:
        if a is None or b is None or b <= a:
            continue
        ax.axvspan(a / scale, b / scale, color=color, alpha=0.18, zorder=0, label=name if label else None)


def _failover_phases(ax: Any, summary: dict[str, Any], label: bool) -> None:
    """Shade each writer outage's phases; the legend entries come from the first outage only."""
    for f in summary["failovers"]:
        visible = None if f["dns_updated_s"] is None else f["dns_updated_s"] + f["dns_ttl_s"]
        times = {**f, "dns_visible_s": visible}
        spans = []
        for start_key, end_key, name, color in PHASES:
            a, b = times[start_key], times[end_key]
            if b is None and end_key == "clients_recovered_s" and a is not None:
                b = summary["duration_s"]  # some clients never recovered
            spans.append((a, b, name, color))
        _shade(ax, spans, label)
        if f["dns_ttl_s"] and f["dns_updated_s"] is not None:
            ax.axvline(
                f["dns_updated_s"], color="tab:purple", lw=1.2, label="DNS record changed" if label else None
            )
        if f["first_write_ok_s"] is not None:
            ax.axvline(
                f["first_write_ok_s"],
                color="tab:green",
                lw=1.2,
                ls="--",
                label="first successful write" if label else None,
            )
        label = False


def downtime(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Per service: successful and failed requests per second, the failover phases shaded."""
    t = ts["time_s"]
    services = [c.split(".", 1)[1] for c in ts.columns if c.startswith("Requests.")]
    fig, axes = _subplots(
        len(services) + 1,
        1,
        figsize=(11, 3 + 2.6 * (len(services) + 1)),
        sharex=True,
        constrained_layout=True,
    )
    av = summary["availability"]
    fig.suptitle(
        f"{summary['scenario']} — downtime as clients saw it (seed {summary['seed']}): writes down "
        f"{av['write_downtime_s']:.1f} s, reads down {av['read_downtime_s']:.1f} s; "
        f"{av['failovers']} writer outage(s)"
    )
    for ax, name in zip(axes, services, strict=False):
        ax.plot(t, ts[f"Requests.{name}"], color="tab:green", lw=1.1, label="ok / s")
        ax.plot(t, ts[f"Errors.{name}"], color="tab:red", lw=1.1, label="failed / s")
        ax.set_ylabel("requests / s")
        ax.set_ylim(bottom=0)
        ax.set_title(f"service {name}: requests by outcome (by completion time)")
        _failover_phases(ax, summary, label=ax is axes[0])
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax = axes[-1]
    ax.plot(t, ts["ConnectionAttempts"], color="tab:blue", lw=1.1, label="connection attempts / s")
    ax.plot(t, ts["DatabaseConnections"], color="0.3", lw=1.0, label="DatabaseConnections (count)")
    ax.set_ylabel("attempts / s; connections")
    ax.set_ylim(bottom=0)
    # the run's peak includes the pools' first fill; after a failover the storm against the new writer matters
    peak = (
        f"peak against a new writer {av['reconnect_peak_per_s']:.0f} attempts/s"
        if summary["failovers"]
        else f"peak {summary['connections']['attempts_peak_per_s']:.0f} attempts/s"
    )
    ax.set_title(f"Reconnects: {peak} (100 ms bins)")
    _failover_phases(ax, summary, label=False)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=7)
    ax.set_xlabel("simulated time (s)")
    if not summary["failovers"]:
        axes[0].text(0.5, 0.9, "no writer outage in this run", ha="center", transform=axes[0].transAxes)
    fig.savefig(path, dpi=110)


def proxy(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """RDS Proxy: client and DB connections against the cap, borrow latency and borrow timeouts."""
    t = ts["time_s"]
    fig, axes = _subplots(2, 1, figsize=(11, 7), sharex=True, constrained_layout=True)
    fig.suptitle(f"{summary['scenario']} — RDS Proxy (seed {summary['seed']})")
    ax = axes[0]
    ax.plot(t, ts["ClientConnections"], lw=1.3, label="ClientConnections")
    ax.plot(t, ts["DatabaseConnections.proxy"], lw=1.3, label="DatabaseConnections (proxy)")
    ax.step(
        t,
        ts["MaxDatabaseConnectionsAllowed"],
        where="post",
        color="tab:red",
        ls="-.",
        lw=1.2,
        label="MaxDatabaseConnectionsAllowed",
    )
    if ts["DatabaseConnectionsCurrentlySessionPinned"].any():
        ax.plot(t, ts["DatabaseConnectionsCurrentlySessionPinned"], lw=1.0, label="session pinned")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylabel("connections (count, symlog)")
    ax.set_title("Client connections are cheap; DB connections stay under the proxy's cap")
    _decorate(ax, events, summary, label=True)
    _event_labels(ax, events)
    ax.legend(loc="upper right", fontsize=7)
    ax = axes[1]
    ax.plot(
        t,
        ts["DatabaseConnectionsBorrowLatency"] / 1000.0,
        lw=1.2,
        label="DatabaseConnectionsBorrowLatency (mean)",
    )
    ax.set_ylabel("borrow latency (ms)")
    ax.set_xlabel("simulated time (s)")
    p = summary["proxy"]
    ax.set_title(
        f"Borrow latency (mean {p['borrow_latency_ms']['mean']:.1f} ms, p99 {p['borrow_latency_ms']['p99']:.1f} ms); "
        f"{p['borrow_timeouts']} borrow timeouts"
    )
    if "Errors.borrow_timeout" in ts:
        right = ax.twinx()
        right.plot(t, ts["Errors.borrow_timeout"], color="tab:red", lw=1.0, label="borrow_timeout / s")
        right.set_ylabel("borrow timeouts / s")
        right.legend(loc="upper right", fontsize=7)
    _decorate(ax, events, summary, label=False)
    ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path, dpi=110)


def lambdas(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Lambda: concurrency and environments, invocations and throttles, and what they do to the DB."""
    t = ts["time_s"]
    functions = summary["lambda"]["functions"]
    fig, axes = _subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    fig.suptitle(f"{summary['scenario']} — Lambda (seed {summary['seed']})")
    ax = axes[0]
    for name, f in functions.items():
        ax.plot(t, ts[f"ConcurrentExecutions.{name}"], lw=1.3, label=f"ConcurrentExecutions {name} (max)")
        ax.plot(t, ts[f"Environments.{name}"], lw=1.0, ls="--", label=f"environments {name} (incl. frozen)")
        if f["reserved_concurrency"] is not None:
            ax.axhline(f["reserved_concurrency"], color="tab:red", ls="-.", lw=1.0, label=f"reserved {name}")
    ax.set_ylabel("executions (count)")
    ax.set_title("Concurrency and execution environments")
    _decorate(ax, events, summary, label=True)
    _event_labels(ax, events)
    ax.legend(loc="upper right", fontsize=7)
    ax = axes[1]
    for name in functions:
        ax.plot(t, ts[f"Invocations.{name}"], lw=1.2, label=f"Invocations {name}")
        ax.plot(t, ts[f"Throttles.{name}"], lw=1.2, color="tab:red", label=f"Throttles {name}")
        ax.plot(t, ts[f"ColdStarts.{name}"], lw=1.0, color="tab:gray", label=f"cold starts {name}")
    ax.set_ylabel(
        f"per interval ({ts['time_s'].iloc[1] - ts['time_s'].iloc[0]:g} s)" if len(ts) > 1 else "count"
    )
    ax.set_title("Invocations, throttles (429) and cold starts")
    _decorate(ax, events, summary, label=False)
    ax.legend(loc="upper right", fontsize=7)
    ax = axes[2]
    for name in summary["connections"]["max_connections"]:
        ax.plot(t, ts[f"DatabaseConnections.{name}"], lw=1.2, label=f"DatabaseConnections {name}")
    _max_connection_lines(ax, summary, ts)
    if "Errors.too_many_connections" in ts:
        ax.plot(
            t, ts["Errors.too_many_connections"], lw=1.0, color="tab:red", label="too_many_connections / s"
        )
    ax.set_ylabel("connections; errors / s")
    ax.set_xlabel("simulated time (s)")
    ax.set_title("What the database sees")
    _decorate(ax, events, summary, label=False)
    ax.legend(loc="upper right", fontsize=7)
    fig.savefig(path, dpi=110)


def serverless(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Serverless v2: capacity against its range, what drives it (CPU, connections) and the cost."""
    t = ts["time_s"]
    sv = summary["serverless"]
    low, high = sv["capacity_range"]
    # runs of 2 h or more are drawn in hours: the time axis, the warm-up band and the event markers
    scale, unit = (3600.0, "h") if t.iloc[-1] >= 7200 else (1.0, "s")
    x = t / scale
    shift = {**summary, "warmup_s": (summary.get("warmup_s") or 0) / scale}
    ev = events.assign(time_s=events["time_s"] / scale)
    fig, axes = _subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    fig.suptitle(f"{summary['scenario']} — Aurora Serverless v2 (seed {summary['seed']})")
    ax = axes[0]
    for name in sv["instances"]:
        ax.step(
            x,
            ts[f"ServerlessDatabaseCapacity.{name}"],
            where="post",
            lw=1.3,
            label=f"ServerlessDatabaseCapacity {name}",
        )
    ax.axhline(high, color="tab:red", ls="-.", lw=1.0, label=f"max_acu ({high:g})")
    ax.axhline(low, color="tab:green", ls="-.", lw=1.0, label=f"min_acu ({low:g})")
    ax.set_ylabel("capacity (ACU)")
    right = ax.twinx()
    right.plot(x, ts["ACUUtilization"], lw=0.8, color="tab:gray", alpha=0.6)
    right.set_ylabel("ACUUtilization (%)")
    right.set_ylim(0, 105)
    ax.set_title(
        f"Capacity: peak {sv['peak_acu']:g}, final {sv['final_acu']:g} ACU; held up by open transactions "
        f"for {sv['pinned_s']:.0f} s"
    )
    _decorate(ax, ev, shift, label=True)
    _event_labels(ax, ev)
    ax.legend(loc="upper left", fontsize=7)
    ax = axes[1]
    ax.plot(x, ts["CPUUtilization"], lw=1.0, label="CPUUtilization (% of max capacity's CPU)")
    ax.plot(x, ts["Requests"], lw=1.0, label="requests / s (ok)")
    ax.set_ylabel("% ; requests / s")
    right = ax.twinx()
    right.plot(x, ts["DatabaseConnections"], lw=1.0, color="tab:orange", label="DatabaseConnections")
    right.set_ylabel("connections (count)")
    right.legend(loc="upper right", fontsize=7)
    ax.set_title("What drives it: load and connections")
    _decorate(ax, ev, shift, label=False)
    ax.legend(loc="upper left", fontsize=7)
    ax = axes[2]
    ax.plot(x, ts["ServerlessCostUSD"], lw=1.3, label=f"Serverless v2 (US${sv['cost_usd']:.2f})")
    prov = sv["provisioned"]
    # a provisioned instance costs the same every second: its cost over the measured time, spread evenly
    per_s = prov["cost_usd"] / max(summary["duration_s"] - (summary.get("warmup_s") or 0), 1e-9)
    step = t.iloc[1] - t.iloc[0] if len(t) > 1 else 0.0
    classes = ", ".join(sorted(set(prov["instance_classes"].values())))
    ax.plot(
        x,
        (t + step) * per_s,
        lw=1.0,
        ls="--",
        label=f"provisioned {classes} of equal peak memory (US${prov['cost_usd']:.2f} over the measured time)",
    )
    ax.set_ylabel("cost accumulated (US$)")
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_title(f"Cost at US${sv['price_per_acu_hour']:g} per ACU-hour: {sv['acu_hours']:.2f} ACU-hours")
    _decorate(ax, ev, shift, label=False)
    ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path, dpi=110)


# restore phases, shaded in restore.png: (start, end, label, colour); times from summary `restore`
def _restore_spans(r: dict[str, Any], end: float) -> list[tuple[float, float, str, str]]:
    p, cut = r["phases"], r["cutover"]
    spans = []
    t = r["started_s"]
    if r["failed_s"] is None:
        for key, label, color in (
            ("provisioning_s", "provisioning", "tab:red"),
            ("copy_s", "data copy", "tab:orange"),
            ("replay_s", "log replay", "gold"),
        ):
            spans.append((t, min(t + p[key], end), label, color))
            t += p[key]
    if r["completed"] and cut["enabled"]:
        available = r["available_s"]
        changed = cut["dns_changed_s"]
        updated = next((t for t in (changed, cut["failed_s"]) if t is not None), end)
        spans.append((available, updated, "endpoint/secret update", "tab:olive"))
        if changed is not None:
            visible = min(changed + cut["dns_ttl_s"], end)
            spans.append((changed, visible, "record TTL (resolvers may answer old)", "tab:cyan"))
            moved = cut["completed_s"] if cut["completed_s"] is not None else end
            spans.append((visible, moved, "clients moving (DNS caches, pools)", "tab:blue"))
    return [(a, b, label, color) for a, b, label, color in spans if b > a]


def _restore_marks(ax: Any, r: dict[str, Any], scale: float, end: float, label: bool) -> None:
    _shade(ax, _restore_spans(r, end), label, scale)
    ax.axvline(
        r["started_s"] / scale, color="black", lw=1.2, label="restore started (incident)" if label else None
    )
    if 0 <= r["target_s"] <= end:
        ax.axvline(
            r["target_s"] / scale, color="0.4", lw=1.0, ls=":", label="restore point (RPO)" if label else None
        )
    if r["available_s"] is not None:
        ax.axvline(
            r["available_s"] / scale,
            color="tab:green",
            lw=1.2,
            label="restored cluster available (RTO)" if label else None,
        )
    for failed in (r["failed_s"], r["cutover"]["failed_s"]):
        if failed is not None:
            ax.axvline(failed / scale, color="tab:red", lw=2.0, label="drill failed" if label else None)
            label = False
    if r["cutover"]["completed_s"] is not None:
        ax.axvline(
            r["cutover"]["completed_s"] / scale,
            color="tab:green",
            lw=1.2,
            ls="--",
            label="every client on the restored cluster" if label else None,
        )


def restore(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """A restore drill: requests per service with the phases shaded, connections per instance (old cluster
    against the restored one), latency with the lazy-load fetches."""
    r = summary["restore"]
    end = summary["duration_s"]
    scale, unit = (60.0, "min") if end >= 1800 else (1.0, "s")
    x = ts["time_s"] / scale
    services = [c.split(".", 1)[1] for c in ts.columns if c.startswith("Requests.")]
    fig, axes = _subplots(
        len(services) + 2,
        1,
        figsize=(11, 3 + 2.6 * (len(services) + 2)),
        sharex=True,
        constrained_layout=True,
    )
    verdict = "succeeded" if r["succeeded"] else "FAILED"
    fig.suptitle(
        f"{summary['scenario']} — restore drill (seed {summary['seed']}): {verdict}; RTO {r['rto_s']:.0f} s, "
        f"RPO {r['rpo_s']:.0f} s, cutover {r['cutover_s']:.0f} s"
        + ("\n" + "\n".join(textwrap.wrap(r["reason"], 130)) if r["reason"] else "")
    )
    for ax, name in zip(axes, services, strict=False):
        ax.plot(x, ts[f"Requests.{name}"], color="tab:green", lw=1.1, label="ok / s")
        ax.plot(x, ts[f"Errors.{name}"], color="tab:red", lw=1.1, label="failed / s")
        ax.set_ylabel("requests / s")
        # the queue released at the cutover is a one-second spike: scale to the rest, with room for the legend
        both = pd.concat([ts[f"Requests.{name}"], ts[f"Errors.{name}"]])
        top, peak = max(float(both.quantile(0.999)), 1.0), float(both.max())
        ax.set_ylim(0, top * 1.6)
        clipped = f"; a peak of {peak:.0f}/s is cut off" if peak > top * 1.6 else ""
        ax.set_title(f"service {name}: requests by outcome (by completion time{clipped})")
        _restore_marks(ax, r, scale, end, label=ax is axes[0])
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=7, ncol=4)
    ax = axes[-2]
    top = 1.0
    for name in summary["connections"]["max_connections"]:
        ax.plot(x, ts[f"DatabaseConnections.{name}"], lw=1.2, label=f"DatabaseConnections {name}")
        top = max(top, float(ts[f"DatabaseConnections.{name}"].max()))
    ax.set_ylabel("connections (count)")
    ax.set_ylim(0, top * 1.5)
    ax.set_title(f"Connections: the old cluster and the restored one ({r['restored_instance']})")
    _restore_marks(ax, r, scale, end, label=False)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center", fontsize=7, ncol=3)
    ax = axes[-1]
    ax.plot(x, ts["LatencyP50"], lw=1.0, label="latency p50")
    ax.plot(x, ts["LatencyP99"], lw=1.0, label="latency p99")
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    lazy = r["lazy_load"]
    ax.set_title(
        f"Latency of successful requests; first access to a key waits {lazy['penalty_ms']:g} ms for its block "
        f"({lazy['keys_loaded']} keys loaded)"
    )
    if "LazyLoads" in ts:
        right = ax.twinx()
        right.plot(
            x, ts["LazyLoads"], color="tab:brown", lw=1.0, ls="--", label="lazy loads / s (first access)"
        )
        right.set_ylabel("lazy loads / s")
        right.set_ylim(bottom=0)
        right.legend(loc="upper right", fontsize=7)
    _restore_marks(ax, r, scale, end, label=False)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=7)
    ax.set_xlabel(f"simulated time ({unit})")
    fig.savefig(path, dpi=110)


# a global operation's phases, shaded in global.png: (key where it starts, key where it ends, label, colour)
GLOBAL_PHASES = (
    ("failure_s", "start_s", "until the failover is started", "tab:red"),
    ("start_s", "synced_s", "switchover: secondary catches up", "tab:blue"),
    ("promotion_started_s", "writer_available_s", "promotion", "tab:orange"),
    ("writer_available_s", "dns_updated_s", "global writer endpoint DNS update", "gold"),
    ("dns_updated_s", "clients_recovered_s", "DNS TTL and client caches", "tab:cyan"),
)


def _global_phases(ax: Any, summary: dict[str, Any], label: bool) -> None:
    for op in summary["global"]["operations"]:
        _shade(ax, ((op[a], op[b], name, color) for a, b, name, color in GLOBAL_PHASES), label)
        if op["failure_s"] is not None:
            ax.axvline(
                op["failure_s"], color="tab:red", lw=1.3, label="replication stopped" if label else None
            )
        label = False


def global_db(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Aurora Global Database: cross-Region lag and RPO lag, writes through each switchover or failover,
    and what readers in the secondary Region see."""
    t = ts["time_s"]
    g = summary["global"]
    regions = g["regions"]
    fig, axes = _subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    fig.suptitle(
        f"{summary['scenario']} — Aurora Global Database {regions[0]} → {regions[1]} (seed {summary['seed']})\n"
        f"{g['switchovers']} switchover(s), {g['failovers']} failover(s); RPO {g['rpo_s'] * 1000:.0f} ms, "
        f"{g['lost_writes']} committed writes lost"
    )
    ax = axes[0]
    ax.plot(
        t, ts["AuroraGlobalDBReplicationLag"], color="tab:blue", lw=1.1, label="AuroraGlobalDBReplicationLag"
    )
    ax.plot(
        t,
        ts["AuroraGlobalDBRPOLag"],
        color="tab:red",
        lw=1.0,
        ls="--",
        label="AuroraGlobalDBRPOLag (at the end)",
    )
    for op in g["operations"]:
        if op["kind"] == "failover":
            ax.annotate(
                f"RPO {op['rpo_s'] * 1000:.0f} ms: {op['lost_writes']} writes lost",
                xy=(op["failure_s"], 0.5),
                xycoords=("data", "axes fraction"),
                xytext=(4, 0),
                textcoords="offset points",
                fontsize=8,
                color="tab:red",
            )
    ax.set_ylim(bottom=0)
    ax.set_ylabel("lag (ms)")
    ax.set_title(
        "Cross-Region replication: mean lag of the interval's commits; age of the oldest unreplicated one"
    )
    _decorate(ax, events, summary, label=True)
    _global_phases(ax, summary, label=True)
    ax.legend(loc="upper right", fontsize=7, ncol=2)

    ax = axes[1]
    ax.plot(t, ts["CommittedWrites"], color="tab:green", lw=1.1, label="committed writes / s")
    ax.plot(t, ts["Errors"], color="tab:red", lw=1.0, label="failed requests / s")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("per second")
    ax.set_title(
        f"Writes through the operations: {g['write_downtime_s']:.1f} s of client-seen write downtime"
    )
    _decorate(ax, events, summary, label=False)
    _global_phases(ax, summary, label=False)
    ax.legend(loc="upper left", fontsize=7)

    ax = axes[2]
    reads = g["secondary_reads"]
    shown = False
    for name in g["secondary_instances"]:
        col = f"AuroraReplicaLag.{name}"
        if col in ts:
            ax.plot(t, ts[col], lw=1.0, label=f"AuroraReplicaLag {name} (end to end)")
            shown = True
    ax.set_ylabel("lag (ms)")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("simulated time (s)")
    ax.set_title(
        f"Reads in {regions[1]}: {reads['stale_reads']} of {reads['reads']} stale, "
        f"{reads['read_your_writes_violations']} read-your-writes violations"
    )
    _decorate(ax, events, summary, label=False)
    if shown:
        ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path, dpi=110)


def _plan_cost_ms(plan: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """The plan's mean CPU per execution (ms) at ``rows``, from its start value and its cost per row."""
    per_row_ms = plan["cost_per_row_us"] / 1000.0
    if plan["access"] == "index":
        return plan["mean_cpu_ms_start"] + per_row_ms * (np.log2(rows) - np.log2(plan["rows_start"]))
    return plan["mean_cpu_ms_start"] + per_row_ms * (rows - plan["rows_start"])


def query_plans(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Per query with a plan: p95 latency per interval against its table's rows, beside the plan's mean CPU
    per execution, with the rows at which the instance saturates (theory.plans) marked."""
    plans = {name: q["plan"] for name, q in summary["by_query"].items() if "plan" in q}
    theory_plans = summary.get("theory", {}).get("plans", {})
    fig, axes = _subplots(
        len(plans), 1, figsize=(11, 2.9 * len(plans) + 0.8), constrained_layout=True, squeeze=False
    )
    fig.suptitle(
        f"{summary['scenario']} — query plans: p95 latency as the tables grow (seed {summary['seed']})"
    )
    warmup = summary.get("warmup_s") or 0.0
    for ax, (name, plan) in zip(axes[:, 0], plans.items(), strict=True):
        grows = plan["rows_end"] > plan["rows_start"]
        x = ts[f"PlanRows.{name}"] if grows else ts["time_s"]
        ax.plot(
            x, ts[f"LatencyP95.{name}"], marker="o", ms=2.5, lw=1.0, label="p95 latency per interval (ms)"
        )
        rows = ts[f"PlanRows.{name}"].to_numpy()
        ax.plot(
            x,
            _plan_cost_ms(plan, rows),
            color="0.3",
            ls="--",
            lw=1.0,
            label="mean CPU per execution (plan, ms)",
        )
        if warmup:
            edge = plan["rows_start"] + plan["growth_per_s"] * warmup if grows else warmup
            ax.axvspan(
                plan["rows_start"] if grows else 0, edge, color="0.9", zorder=0, label="warm-up (excluded)"
            )
        th = theory_plans.get(name, {})
        sat, when, instance = th.get("saturation_rows"), th.get("saturation_s"), th.get("instance")
        if sat is None:
            verdict = f"its own growth never saturates {instance or 'its instance'}"
        else:
            verdict = f"{instance} saturates at {sat:,.0f} rows" + (
                f" (t = {when:.0f} s)" if when is not None else " (not reached in this run)"
            )
        # the first time any plan's growth saturates this query's instance, on this query's axis
        first = min(
            (
                (p["saturation_s"], other)
                for other, p in theory_plans.items()
                if p.get("instance") == instance and p.get("saturation_s") is not None
            ),
            default=None,
        )
        if first is not None:
            t_sat, by = first
            at = plan["rows_start"] + plan["growth_per_s"] * t_sat if grows else t_sat
            what = f"{sat:,.0f} rows" if by == name and sat is not None else f"t = {t_sat:.0f} s, by {by}"
            ax.axvline(
                at,
                color="tab:red",
                ls="-.",
                lw=1.3,
                label=f"failure threshold: {instance} saturates ({what})",
            )
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms, log)")
        ax.set_xlabel(f"{name}: table rows" if grows else "simulated time (s)")
        ax.xaxis.set_major_formatter(EngFormatter() if grows else ScalarFormatter())
        ax.set_title(
            f"{name}: {plan['access']}, {plan['rows_start']:,.0f} → {plan['rows_end']:,.0f} rows; {verdict}",
            fontsize=10,
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path, dpi=110)


def has_wait_load(ts: pd.DataFrame) -> bool:
    """The run had lock waits or sessions idle in transactions: DB load has more than CPU and commits."""
    return any(col in ts and (ts[col] > 0).any() for col in ("DBLoad.wait.Lock", "DBLoad.wait.Client"))


def db_load(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """DB load (average active sessions) stacked by wait class, against the vCPUs; query classes by load."""
    t = ts["time_s"]
    db = summary["db_load"]
    fig, ax = _subplots(1, 1, figsize=(11, 5.5), constrained_layout=True)
    fig.suptitle(f"{summary['scenario']} — DB load by wait class (seed {summary['seed']})")
    waits = list(WAIT_COLORS)
    ax.stackplot(
        t,
        [ts[f"DBLoad.wait.{w}"] for w in waits],
        colors=[WAIT_COLORS[w] for w in waits],
        labels=[f"{WAIT_LABELS[w]}: mean {db['by_wait'][w]:.2f}" for w in waits],
        alpha=0.8,
        step="post",
    )
    vcpus = sum(db["vcpus"].values())
    ax.axhline(vcpus, color="0.2", ls="-.", lw=1.2, label=f"vCPUs, all instances ({vcpus})")
    top = list(db["by_query"].items())[:3]
    shares = ", ".join(f"{name} {load:.2f}" for name, load in top)
    ax.set_title(f"DBLoad mean {db['mean']:.2f}, peak {db['peak']:.2f} sessions; by query class: {shares}")
    ax.set_ylabel("DBLoad (average active sessions)")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylim(bottom=0)
    _decorate(ax, events, summary, label=True)
    _event_labels(ax, events)
    ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path, dpi=110)


def write_all(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], folder: Path) -> list[Path]:
    """Every plot that applies: the four standard ones, plus proxy.png, lambda.png, serverless.png,
    restore.png, global.png and query_plans.png when the run has them, and db_load.png when it had lock
    waits or sessions idle in transactions."""
    folder.mkdir(parents=True, exist_ok=True)
    out = [
        folder / "timeline.png",
        folder / "connections.png",
        folder / "stale_reads.png",
        folder / "downtime.png",
    ]
    timeline(ts, events, summary, out[0])
    connections(ts, events, summary, out[1])
    stale_reads(ts, events, summary, out[2])
    downtime(ts, events, summary, out[3])
    if "ClientConnections" in ts:
        out.append(folder / "proxy.png")
        proxy(ts, events, summary, out[-1])
    if "ConcurrentExecutions" in ts:
        out.append(folder / "lambda.png")
        lambdas(ts, events, summary, out[-1])
    if "ServerlessDatabaseCapacity" in ts:
        out.append(folder / "serverless.png")
        serverless(ts, events, summary, out[-1])
    if summary.get("restore", {}).get("restores"):
        out.append(folder / "restore.png")
        restore(ts, events, summary, out[-1])
    if "AuroraGlobalDBReplicationLag" in ts:
        out.append(folder / "global.png")
        global_db(ts, events, summary, out[-1])
    if any(col.startswith("PlanRows.") for col in ts.columns):
        out.append(folder / "query_plans.png")
        query_plans(ts, events, summary, out[-1])
    if "db_load" in summary and has_wait_load(ts):
        out.append(folder / "db_load.png")
        db_load(ts, events, summary, out[-1])
    return out


def sweep_plots(sweep: Any, folder: Path) -> list[Path]:
    """Per swept parameter: each key metric (that is not 0 everywhere) against it, mean with its 95% CI band,
    one line per combination of the other parameters."""
    from .sweeps import PLOT_METRICS

    folder.mkdir(parents=True, exist_ok=True)
    summary = sweep.summary
    params = [p for p, _ in sweep.grid]
    metrics = [
        m
        for m in PLOT_METRICS
        if m in set(summary["metric"]) and summary.loc[summary["metric"] == m, "mean"].any()
    ]
    metrics = metrics or [m for m in ("latency_ms.p99", "requests.ok") if m in set(summary["metric"])]
    written = []
    for param in params:
        others = [p for p in params if p != param]
        fig, axes = _subplots(
            len(metrics),
            1,
            figsize=(9, 2.6 * len(metrics) + 0.6),
            sharex=True,
            constrained_layout=True,
            squeeze=False,
        )
        n = int(summary["n"].max()) if len(summary) else 0
        fig.suptitle(f"sweep over {param} (mean and 95% CI over {n} replications)")
        values = list(dict.fromkeys(summary[param]))
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        for ax, metric in zip(axes[:, 0], metrics, strict=True):
            rows = summary[summary["metric"] == metric]
            groups = rows.groupby(others, sort=False) if others else [((), rows)]
            for key, g in groups:
                g = g.sort_values(param) if numeric else g
                x = g[param] if numeric else [values.index(v) for v in g[param]]
                label = ", ".join(
                    f"{o}={k}" for o, k in zip(others, key if isinstance(key, tuple) else (key,), strict=True)
                )
                ax.plot(x, g["mean"], marker="o", lw=1.3, label=label or None)
                ax.fill_between(x, g["ci_lo"], g["ci_hi"], alpha=0.2)
            ax.set_ylabel(metric, fontsize=8)
            ax.grid(True, alpha=0.3)
            if others:
                ax.legend(fontsize=7)
        last = axes[-1, 0]
        last.set_xlabel(param)
        if not numeric:
            last.set_xticks(range(len(values)), [str(v) for v in values])
        path = folder / f"sweep_{param.replace('.', '_')}.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    return written
