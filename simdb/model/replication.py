"""Replication: when each committed write becomes visible on each reader.

Readers never change what a query returns in the simulation (a stale row is still a row), so apply
times are computed once, after the run, from the commit log, vectorised:

- Aurora readers (FACTS: replication.aurora_lag) share the volume and apply the writer's redo stream to
  cached pages. Lag = (base + per_1000_writes x write rate / 1000) x (1 + load_factor x reader CPU
  utilisation), a line fitted to the Aurora paper's Table 4 and scaled by the reader's own load.
- RDS read replicas (FACTS: replication.rds_async) apply changes one at a time at ``apply_rate`` after a
  network delay: a FIFO queue with deterministic service, D_i = max(D_{i-1}, a_i) + 1/rate, which is
  D_i = (i+1)/rate + max_{j<=i}(a_j - j/rate), a cumulative maximum. While writes outpace the apply
  rate the lag grows by (rate_w - rate)/rate seconds per second, and drains afterwards.
- Multi-AZ cluster standbys (FACTS: multi_az_cluster) already hold the change when the writer commits
  (semisync); they apply it with the same queue at ``apply_rate``, no network delay.

- Aurora Global Database (FACTS: global.lag): the primary Region's volume ships each change to the
  secondary Region's volume a lag later (lognormal, a new draw every ``lag_step``); the volume takes them in
  commit order, so arrival times are a cumulative maximum, and shipping waits while either Region is out.
  A reader in the other Region shows a change at its arrival plus its own redo apply (AWS: end-to-end lag is
  AuroraGlobalDBProgressLag + AuroraReplicaLag). Each role change starts an *epoch* with the new primary
  as the source; an unplanned failover *cuts* its epoch: changes that had not arrived by the cut are lost
  (infinite arrival, never visible in the other Region).

Every reader applies changes in commit order, so each reader's apply times are non-decreasing (lost writes
of a global failover aside: they stay invisible while later writes arrive), which the staleness analysis
relies on. Changes committed while a reader is down reach it when it is back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..scenario import Cluster


@dataclass(frozen=True)
class ReplicaInfo:
    name: str
    instance: int  # index into the run's instances
    kind: str  # aurora | async | semisync
    down: tuple[tuple[float, float], ...] = ()  # windows the replica was down
    region: str = ""  # aurora-global: the replica's Region

    def lag_counts(self, write_t: np.ndarray, apply_t: np.ndarray) -> np.ndarray:
        """Which writes' lag describes replication: not those an Aurora reader missed while down (it
        rereads the shared volume when it restarts), but all for RDS replicas (they replay the backlog);
        never the writes a global failover lost (they have no apply time)."""
        keep = np.isfinite(apply_t)
        if self.kind == "aurora":
            for _, end in self.down:
                keep &= (write_t >= end) | (apply_t < end)
        return keep


@dataclass
class ReplicationLog:
    """Committed writes in commit order and, per replica, when each became visible there."""

    write_t: np.ndarray
    write_key: np.ndarray
    write_session: np.ndarray
    write_query: np.ndarray
    replicas: list[ReplicaInfo]
    apply_t: np.ndarray  # (writes, replicas)
    # aurora-global: per write, the instance that committed it, when it reached the other Region's volume
    # (inf: lost by a global failover) and its epoch (index into GlobalPlan.epochs); empty otherwise
    write_instance: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    global_arrival: np.ndarray = field(default_factory=lambda: np.empty(0))
    global_epoch: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


@dataclass(frozen=True)
class Epoch:
    """aurora-global: a stretch of the run with one primary Region, from ``start`` (the first epoch at 0, then
    each promotion); ``cut``: when an unplanned failover stopped its replication (None: it was not cut)."""

    start: float
    source: str
    target: str
    cut: float | None = None


@dataclass(frozen=True)
class GlobalPlan:
    """What the run decided about cross-Region replication; apply times follow from it and the commits."""

    lag_s: np.ndarray  # the lag in force during each lag_step
    lag_step: float
    epochs: tuple[Epoch, ...]
    outages: dict[str, tuple[tuple[float, float], ...]]  # Region -> (start, end) windows; inf: not back
    instance_region: tuple[str, ...]  # per instance index

    def lag_at(self, t: np.ndarray) -> np.ndarray:
        step = np.minimum((t / self.lag_step).astype(np.int64), self.lag_s.size - 1)
        return self.lag_s[step]

    def epoch_of(self, write_t: np.ndarray) -> np.ndarray:
        starts = np.array([e.start for e in self.epochs])
        return np.searchsorted(starts, write_t, side="right") - 1

    def arrivals(self, write_t: np.ndarray, epoch: Epoch) -> np.ndarray:
        """When writes committed at ``write_t`` (sorted) in ``epoch`` reach the other Region's volume."""
        if write_t.size == 0:
            return write_t.copy()
        arrive = write_t + self.lag_at(write_t)
        # shipping waits while the source or the target Region is out
        for region in (epoch.source, epoch.target):
            arrive = _after_downtime(arrive, list(self.outages.get(region, ())))
        arrive = np.maximum.accumulate(arrive)
        if epoch.cut is not None:
            arrive[arrive > epoch.cut] = np.inf  # not in the other Region when replication stopped: lost
        return arrive

    def all_arrivals(self, write_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(arrival, epoch index) of every write committed at ``write_t`` (sorted)."""
        epoch = self.epoch_of(write_t)
        arrive = np.empty(write_t.size)
        for k, ep in enumerate(self.epochs):
            sel = epoch == k
            arrive[sel] = self.arrivals(write_t[sel], ep)
        return arrive, epoch


def lindley_fifo(arrive: np.ndarray, service_s: float) -> np.ndarray:
    """Departure times of a FIFO single server with constant service, arrivals in order."""
    idx = np.arange(arrive.size, dtype=np.float64)
    return (idx + 1.0) * service_s + np.maximum.accumulate(arrive - idx * service_s)


def aurora_lag_s(
    write_t: np.ndarray,
    cluster: Cluster,
    cpu_utilisation: np.ndarray,
    interval: float,
    duration: float,
) -> np.ndarray:
    """Each write's Aurora reader lag from the write rate around it and the reader's CPU load."""
    spec = cluster.replication.aurora
    n_seconds = max(1, int(np.ceil(duration)))
    second = np.minimum(write_t.astype(np.int64), n_seconds - 1)
    write_rate = np.bincount(second, minlength=n_seconds)[second].astype(np.float64)
    if cpu_utilisation.size:
        row = np.minimum((write_t / interval).astype(np.int64), cpu_utilisation.size - 1)
        load = np.clip(cpu_utilisation[row], 0.0, 1.0)
    else:
        load = np.zeros_like(write_t)
    return (spec.base + spec.per_1000_writes * write_rate / 1000.0) * (1.0 + spec.load_factor * load)


def _after_downtime(t: np.ndarray, down: list[tuple[float, float]]) -> np.ndarray:
    """Times falling in a down window move to its end."""
    for start, end in down:
        t = np.where((t >= start) & (t < end), end, t)
    return t


def apply_times(
    cluster: Cluster,
    replicas: list[ReplicaInfo],
    write_t: np.ndarray,
    cpu_utilisation: dict[str, np.ndarray],
    downtime: dict[str, list[tuple[float, float]]],
    interval: float,
    duration: float,
    write_instance: np.ndarray | None = None,
    plan: GlobalPlan | None = None,
    arrival: np.ndarray | None = None,
) -> np.ndarray:
    """(writes, replicas) visibility times for writes committed at ``write_t`` (sorted). aurora-global also
    gives each write's committing instance, the plan and the cross-Region ``arrival`` times."""
    out = np.empty((write_t.size, len(replicas)))
    readers = {r.name: r for r in cluster.readers}
    for j, replica in enumerate(replicas):
        down = downtime.get(replica.name, [])
        if replica.kind == "aurora":
            lag = aurora_lag_s(
                write_t, cluster, cpu_utilisation.get(replica.name, np.empty(0)), interval, duration
            )
            if plan is None or write_instance is None or arrival is None:
                visible = _after_downtime(write_t + lag, down)
                out[:, j] = np.maximum.accumulate(visible) if visible.size else visible
                continue
            local = np.array([r == replica.region for r in plan.instance_region], dtype=bool)[write_instance]
            # from its own Region's volume after the redo apply; from the other Region once the change
            # has arrived there; a promoted reader sees its own commits at once
            visible = np.where(local, write_t, arrival) + lag
            own = write_instance == replica.instance
            visible[own] = write_t[own]
            visible = _after_downtime(visible, down)
            shown = np.isfinite(visible)  # lost writes stay invisible; the rest in commit order
            visible[shown] = np.maximum.accumulate(visible[shown]) if shown.any() else visible[shown]
            out[:, j] = visible
        else:
            delay = cluster.replication.network_delay if replica.kind == "async" else 0.0
            rate = readers[replica.name].apply_rate
            assert rate is not None  # resolved when the scenario is loaded
            arrive = _after_downtime(write_t + delay, down)
            out[:, j] = lindley_fifo(arrive, 1.0 / rate) if arrive.size else arrive
    return out
