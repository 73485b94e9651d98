"""Pictures of a run, drawn from analysis output only (timeseries, events, summary).

Every figure has a title, axis labels with units, the warm-up shaded and timed events marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from .record import ERROR_CODES

ERROR_COLORS = dict(zip(ERROR_CODES, plt.get_cmap("tab10").colors, strict=False))
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
    fig, axes = plt.subplots(
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
    plt.close(fig)


def connections(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Per instance: connections vs max_connections, connection attempts and rejections per second."""
    names = list(summary["connections"]["max_connections"])
    t = ts["time_s"]
    fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True, constrained_layout=True)
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
    plt.close(fig)


def stale_reads(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Stale-read fraction and read-your-writes violations above replica lag and the write rate."""
    t = ts["time_s"]
    rep = summary["replication"]
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
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
    plt.close(fig)


# failover phases, shaded in downtime.png: (summary key where it starts, key where it ends, label, colour)
PHASES = (
    ("start_s", "detected_s", "detection", "tab:red"),
    ("detected_s", "writer_available_s", "promotion", "tab:orange"),
    ("writer_available_s", "dns_updated_s", "DNS update", "gold"),
    ("dns_updated_s", "dns_visible_s", "DNS TTL (resolver caches)", "tab:olive"),
    ("dns_visible_s", "clients_recovered_s", "client DNS caches / stale connections", "tab:cyan"),
)


def _failover_phases(ax: Any, summary: dict[str, Any], label: bool) -> None:
    """Shade each writer outage's phases; the legend entries come from the first outage only."""
    for f in summary["failovers"]:
        visible = None if f["dns_updated_s"] is None else f["dns_updated_s"] + f["dns_ttl_s"]
        times = {**f, "dns_visible_s": visible}
        for start_key, end_key, name, color in PHASES:
            a, b = times[start_key], times[end_key]
            if b is None and end_key == "clients_recovered_s" and a is not None:
                b = summary["duration_s"]  # some clients never recovered
            if a is None or b is None or b <= a:
                continue
            ax.axvspan(a, b, color=color, alpha=0.18, zorder=0, label=name if label else None)
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
    fig, axes = plt.subplots(
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
    plt.close(fig)


def proxy(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """RDS Proxy: client and DB connections against the cap, borrow latency and borrow timeouts."""
    t = ts["time_s"]
    fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True, constrained_layout=True)
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
    plt.close(fig)


def lambdas(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """Lambda: concurrency and environments, invocations and throttles, and what they do to the DB."""
    t = ts["time_s"]
    functions = summary["lambda"]["functions"]
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
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
    plt.close(fig)


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
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
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
    plt.close(fig)


def has_wait_load(ts: pd.DataFrame) -> bool:
    """The run had lock waits or sessions idle in transactions: DB load has more than CPU and commits."""
    return any(col in ts and (ts[col] > 0).any() for col in ("DBLoad.wait.Lock", "DBLoad.wait.Client"))


def db_load(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    """DB load (average active sessions) stacked by wait class, against the vCPUs; query classes by load."""
    t = ts["time_s"]
    db = summary["db_load"]
    fig, ax = plt.subplots(1, 1, figsize=(11, 5.5), constrained_layout=True)
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
    plt.close(fig)


def write_all(ts: pd.DataFrame, events: pd.DataFrame, summary: dict[str, Any], folder: Path) -> list[Path]:
    """Every plot that applies: the four standard ones, plus proxy.png, lambda.png and serverless.png when the
    run has them, and db_load.png when it had lock waits or sessions idle in transactions."""
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
        fig, axes = plt.subplots(
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
        plt.close(fig)
        written.append(path)
    return written
