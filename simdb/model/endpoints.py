"""Cluster endpoints: which instance a new connection lands on.

The writer endpoint names the writer. The reader endpoint spreads new connections over the readers
(Aurora's reader endpoint balances connections, not queries) and falls back to the writer when the
cluster has no reader. A custom endpoint spreads over its member readers.
"""

from __future__ import annotations

from collections.abc import Iterator

from .instance import Instance


class Endpoint:
    def __init__(self, index: int, name: str, members: list[Instance]) -> None:
        self.index = index
        self.name = name
        self.members = members

    def resolve(self, pick: Iterator[float]) -> Instance:
        """The instance a new connection reaches; ``pick`` is the client's uniform random stream."""
        members = self.members
        if len(members) == 1:
            return members[0]
        # an instance that is down has left the endpoint's DNS answers (its connection attempts would fail)
        up = [m for m in members if m.up]
        if up and len(up) < len(members):
            members = up
        return members[int(next(pick) * len(members))]
