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

Every reader applies changes in commit order, so each reader's apply times are non-decreasing, which
the staleness analysis relies on. Changes committed while a reader is down reach it when it is back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scenario import Cluster


@dataclass(frozen=True)
class ReplicaInfo:
    name: str
    instance: int  # index into the run's instances
    kind: str  # aurora | async | semisync
    down: tuple[tuple[float, float], ...] = ()  # windows the replica was down

    def lag_counts(self, write_t: np.ndarray, apply_t: np.ndarray) -> np.ndarray:
        """Which writes' lag describes replication: not those an Aurora reader missed while down (it
        rereads the shared volume when it restarts), but all for RDS replicas (they replay the backlog)."""
        keep = np.ones(write_t.size, dtype=bool)
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
) -> np.ndarray:
    """(writes, replicas) visibility times for writes committed at ``write_t`` (sorted)."""
    out = np.empty((write_t.size, len(replicas)))
    readers = {r.name: r for r in cluster.readers}
    for j, replica in enumerate(replicas):
        down = downtime.get(replica.name, [])
        if replica.kind == "aurora":
            lag = aurora_lag_s(
                write_t, cluster, cpu_utilisation.get(replica.name, np.empty(0)), interval, duration
            )
            visible = _after_downtime(write_t + lag, down)
            out[:, j] = np.maximum.accumulate(visible) if visible.size else visible
        else:
            delay = cluster.replication.network_delay if replica.kind == "async" else 0.0
            rate = readers[replica.name].apply_rate
            assert rate is not None  # resolved when the scenario is loaded
            arrive = _after_downtime(write_t + delay, down)
            out[:, j] = lindley_fifo(arrive, 1.0 / rate) if arrive.size else arrive
    return out
