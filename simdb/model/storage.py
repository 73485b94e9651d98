"""Commit paths: Aurora's quorum volume and EBS storage (single-AZ, Multi-AZ instance, Multi-AZ cluster).

A write's commit latency is drawn from per-copy latency distributions in numpy blocks (one block of
draws serves thousands of commits), recomputed from the remaining draws when the set of reachable
copies changes, so a commit costs one list index in the hot path.

- Aurora (FACTS: storage.copies, storage.quorum): one protection group, 6 copies, 2 in each of 3 AZs.
  A commit is acknowledged by the 4th-fastest of the reachable copies: each copy's latency is the node's
  ack time plus the network round trip from the writer's AZ. With fewer than 4 reachable copies there
  is no write quorum; with fewer than 3, no read quorum (the volume cannot be read consistently).
- EBS: the commit is the local EBS write. Multi-AZ instance (FACTS: multi_az_instance) then copies the
  block to the standby across AZs and waits for its EBS write; a Multi-AZ cluster (FACTS: multi_az_cluster)
  waits, in parallel with its local write, for the first of its two standbys to acknowledge. An
  unreachable standby is dropped from the commit path.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING, Any

import numpy as np

from .instance import NORMAL

if TYPE_CHECKING:
    from ..engine import Sim
    from ..scenario import LatencyDist, Storage

BLOCK = 4096
WRITE_QUORUM = 4  # FACTS: storage.quorum
READ_QUORUM = 3  # FACTS: storage.quorum
COPIES_PER_AZ = 2  # FACTS: storage.copies
Z99 = 2.3263478740408408  # standard normal 99th percentile


class _QuorumDeadline:
    """A commit's wait for the write quorum to return; cleared when the commit proceeds."""

    __slots__ = ("callbacks", "req")
    _ok = True

    def __init__(self, callbacks: tuple, req: Any) -> None:
        self.callbacks = callbacks
        self.req = req


def lognormal_params(dist: LatencyDist) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with the given median and 99th percentile."""
    return math.log(dist.p50), math.log(dist.p99 / dist.p50) / Z99


def draw_lognormal(rng: np.random.Generator, dist: LatencyDist, shape: tuple[int, ...]) -> np.ndarray:
    mu, sigma = lognormal_params(dist)
    return rng.lognormal(mu, sigma, size=shape)


class StorageModel:
    """Base: commit latency draws in blocks, a log of commits and of reachability changes."""

    kind = "ebs"
    region = ""  # aurora-global: the Region whose volume takes the commits now

    def __init__(self, sim: Sim, spec: Storage, columns: int) -> None:
        self.sim = sim
        self.spec = spec
        self.rng = sim.stream("cluster.storage")
        self.columns = columns
        self.down_azs: set[str] = set()
        self.read_ok = True
        self.write_ok = True
        self.data_loss = False
        self._raw = np.empty((0, columns))
        self._lat: list[float] = []
        self._i = 0
        # commits: completion-independent log of (time drawn, latency) for the summary
        self.commit_t = array("d")
        self.commit_s = array("d")
        # reachable copies over time (Aurora); EBS logs its single state
        self.state_t = array("d", [0.0])
        self.state_reachable = array("b", [self.total_copies()])
        self.waiters: list[Any] = []
        self._deadline_callbacks = (self._quorum_timeout,)

    def total_copies(self) -> int:
        return 1

    def reachable(self) -> int:
        return 1

    def _combine(self, raw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def commit_latency(self) -> float:
        """Seconds until the commit is durable, or -1.0 when there is no write quorum now."""
        i = self._i
        lat = self._lat
        if i >= len(lat):
            self._raw = self._draw(BLOCK)
            lat = self._lat = self._combine(self._raw).tolist()
            i = 0
        self._i = i + 1
        value = lat[i]
        if value >= 0.0:
            self.commit_t.append(self.sim.env._now)
            self.commit_s.append(value)
        return value

    def _draw(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def changed(self) -> None:
        """Reachability changed: recompute the rest of the block for the new set of copies."""
        rest = self._raw[self._i :]
        self._raw = rest
        self._lat = self._combine(rest).tolist()
        self._i = 0
        n = self.reachable()
        self.read_ok = n >= self.read_quorum()
        self.write_ok = n >= self.write_quorum()
        self.state_t.append(self.sim.env.now)
        self.state_reachable.append(n)
        if self.write_ok and self.waiters:
            self._resume_waiters()

    def no_quorum(self, req: Any, query: Any) -> None:
        """A commit found no write quorum: fail it now, or let it wait up to write_quorum_timeout."""
        timeout = self.spec.write_quorum_timeout
        if timeout <= 0.0:
            query.commit_failed(req)
            return
        req.waiting = True
        req.deadline = deadline = _QuorumDeadline(self._deadline_callbacks, req)
        self.sim.env.schedule(deadline, NORMAL, timeout)
        self.waiters.append(req)

    def _quorum_timeout(self, deadline: _QuorumDeadline) -> None:
        req = deadline.req
        if req is not None and req.waiting:
            req.waiting = False
            req.query.commit_failed(req)

    def _resume_waiters(self) -> None:
        waiters, self.waiters = self.waiters, []
        for req in waiters:
            if req.waiting:
                req.waiting = False
                req.deadline.req = None
                req.query.commit_resumed(req)

    def read_quorum(self) -> int:
        return 1

    def write_quorum(self) -> int:
        return 1

    def az_down(self, az: str) -> None:
        """Copies in ``az`` become unreachable."""
        self.down_azs.add(az)
        self.changed()

    def az_up(self, az: str) -> None:
        """Copies in ``az`` are reachable again."""
        self.down_azs.discard(az)
        self.changed()


class AuroraVolume(StorageModel):
    """One protection group of the cluster volume: 6 copies, 2 per AZ; 4/6 write and 3/6 read quorum."""

    kind = "aurora"

    def __init__(self, sim: Sim, spec: Storage, writer_az: str) -> None:
        self.azs = [az for az in spec.azs for _ in range(COPIES_PER_AZ)]
        self.node_down = [False] * len(self.azs)
        self.writer_az = writer_az
        super().__init__(sim, spec, len(self.azs))

    def total_copies(self) -> int:
        return len(self.azs)

    def read_quorum(self) -> int:
        return READ_QUORUM

    def write_quorum(self) -> int:
        return WRITE_QUORUM

    def up_mask(self) -> np.ndarray:
        return np.array(
            [not down and az not in self.down_azs for az, down in zip(self.azs, self.node_down, strict=True)]
        )

    def reachable(self) -> int:
        return int(self.up_mask().sum())

    def rtts(self) -> np.ndarray:
        spec = self.spec
        return np.array([spec.same_az_rtt if az == self.writer_az else spec.cross_az_rtt for az in self.azs])

    def _draw(self, n: int) -> np.ndarray:
        return draw_lognormal(self.rng, self.spec.segment_latency, (n, self.columns))

    def _combine(self, raw: np.ndarray) -> np.ndarray:
        return quorum_latency(raw, self.rtts(), self.up_mask(), WRITE_QUORUM)

    def fail_copies(self, copies: list[int]) -> None:
        for c in copies:
            self.node_down[c] = True
        # every copy's node lost at once: nothing is left to repair from (an AZ outage loses no data)
        if all(self.node_down):
            self.data_loss = True
        self.changed()

    def repair_copies(self, copies: list[int]) -> None:
        for c in copies:
            self.node_down[c] = False
        self.changed()

    def set_writer_az(self, az: str) -> None:
        self.writer_az = az
        self.changed()

    def move(self, region: str, azs: list[str], writer_az: str, down_azs: set[str]) -> None:
        """aurora-global: commits now go to ``region``'s volume (the same shape, its own AZs); its copies
        start healthy (node failures of the old primary's volume stay there)."""
        self.region = region
        self.azs = azs
        self.node_down = [False] * len(azs)
        self.down_azs = set(down_azs)
        self.writer_az = writer_az
        self.changed()


def quorum_latency(raw: np.ndarray, rtts: np.ndarray, up: np.ndarray, quorum: int) -> np.ndarray:
    """Per row: the ``quorum``-th fastest ack among reachable copies (ack time + round trip); -1 without quorum."""
    if raw.shape[0] == 0:
        return np.empty(0)
    if int(up.sum()) < quorum:
        return np.full(raw.shape[0], -1.0)
    acks = raw[:, up] + rtts[up]
    return np.partition(acks, quorum - 1, axis=1)[:, quorum - 1]


class EbsStorage(StorageModel):
    """The writer's EBS volume, plus standby copies the commit waits for (all of them, or the first)."""

    def __init__(
        self, sim: Sim, spec: Storage, writer_az: str, standby_azs: list[str], wait_for: str
    ) -> None:
        self.writer_az = writer_az
        self.standby_azs = standby_azs
        self.wait_for = wait_for  # "all" (Multi-AZ instance) or "first" (Multi-AZ cluster, semisync)
        self.missing: set[str] = set()  # standby AZs whose standby is down or not yet rebuilt
        super().__init__(sim, spec, 1 + len(standby_azs))

    def set_writer(self, writer_az: str, standby_azs: list[str], missing: set[str]) -> None:
        """After a failover: the writer's AZ, the standbys' AZs, and which of those do not answer yet."""
        self.writer_az = writer_az
        self.standby_azs = standby_azs
        self.missing = missing
        self.changed()

    def _draw(self, n: int) -> np.ndarray:
        local = draw_lognormal(self.rng, self.spec.ebs_latency, (n, 1))
        # Multi-AZ instance: the standby writes its EBS copy; Multi-AZ cluster: a standby acknowledges once
        # the change is in its log
        remote = self.spec.ebs_latency if self.wait_for == "all" else self.spec.standby_ack_latency
        return np.hstack([local, draw_lognormal(self.rng, remote, (n, self.columns - 1))])

    def _combine(self, raw: np.ndarray) -> np.ndarray:
        local = raw[:, 0]
        up = [
            i
            for i, az in enumerate(self.standby_azs, start=1)
            if az not in self.down_azs and az not in self.missing
        ]
        if not up:
            return local.copy()
        remote = raw[:, up] + self.spec.cross_az_rtt
        if self.wait_for == "all":
            # mirrored EBS: the primary's write, then the block-level copy to the standby and its write, one
            # after the other (FACTS: multi_az_instance)
            return local + remote.max(axis=1)
        # semisynchronous: the local write and the first standby's acknowledgement, in parallel
        return np.maximum(local, remote.min(axis=1))
