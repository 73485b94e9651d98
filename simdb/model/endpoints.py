"""Cluster endpoints as DNS names: which address a new connection reaches (FACTS: dns.ttl, dns.jvm_cache).

Each endpoint has a DNS record whose answer changes when a failover moves the writer or a reader joins
or leaves the reader endpoint. A client resolves through two caches:

- the shared resolver, which may hand out an answer up to the record's TTL old (the age of its cached
  answer is uniform in 0..TTL);
- the task's own cache (``services[].dns_cache``; the JVM keeps answers 30 s), in :class:`Resolver`.

The reader endpoint's answer lists all its members and a client spreads new connections over them; it
falls back to the writer when the cluster has no reader. A custom endpoint spreads over its member readers.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .instance import Address, Instance

if TYPE_CHECKING:
    from ..engine import Sim


class Endpoint:
    is_proxy = False

    def __init__(self, sim: Sim, index: int, name: str, members: list[Instance]) -> None:
        self.sim = sim
        self.index = index
        self.name = name
        self.ttl = sim.scenario.cluster.dns.ttl
        # the record's history: answer i holds from change_t[i] on
        self.change_t: list[float] = [-math.inf]
        self.answers: list[tuple[Address, ...]] = [tuple(m.address for m in members)]

    @property
    def members(self) -> list[Instance]:
        """The instances the record names now."""
        return [a.instance for a in self.answers[-1]]

    def update(self, members: list[Instance], detail: str = "") -> None:
        """The DNS record now names ``members`` (their current addresses)."""
        answer = tuple(m.address for m in members)
        if answer == self.answers[-1]:
            return
        now = self.sim.env.now
        self.change_t.append(now)
        self.answers.append(answer)
        names = ", ".join(m.name for m in members) or "nothing"
        self.sim.rec.event(now, "dns_updated", self.name, f"-> {names}" + (f"; {detail}" if detail else ""))

    def lookup(self, now: float, age: Iterator[float]) -> tuple[Address, ...]:
        """What the shared resolver answers at ``now``: the record as it was up to a TTL ago."""
        if now - self.ttl >= self.change_t[-1]:
            return self.answers[-1]
        seen_at = now - self.ttl * next(age)
        return self.answers[bisect_right(self.change_t, seen_at) - 1]


class Resolver:
    """One task's DNS cache for one endpoint."""

    __slots__ = ("_age", "answer", "cache_s", "endpoint", "expires")

    def __init__(self, endpoint: Endpoint, cache_s: float, age: Iterator[float]) -> None:
        self.endpoint = endpoint
        self.cache_s = cache_s
        self._age = age
        self.answer: tuple[Address, ...] = ()
        self.expires = -math.inf

    def resolve(self, now: float, pick: Iterator[float]) -> Address:
        """The address a new connection goes to; ``pick`` is the client's uniform stream."""
        if now >= self.expires:
            self.answer = self.endpoint.lookup(now, self._age)
            self.expires = now + self.cache_s
        answer = self.answer
        if len(answer) == 1:
            return answer[0]
        return answer[int(next(pick) * len(answer))]
