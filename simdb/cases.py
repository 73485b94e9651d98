"""The course's failure cases that bundled scenarios reproduce, broken and fixed (`case:` in a scenario).

Each case is one production failure with its Why / Detect / Fix; a scenario marked `role: broken` shows
the Detect signal in its `expect:` lines, one marked `role: fixed` shows the Fix's effect. `simdb list`
groups the bundled scenarios by these cases.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    source: str  # where the course describes it


CASES: dict[str, Case] = {
    c.id: c
    for c in (
        Case(
            "failover-dns-caching",
            "Failover takes longer than expected: cached DNS answers and stale connections",
            "course 000 case 1; course 004 §14.4",
        ),
        Case(
            "serverless-not-scaling-down",
            "Serverless v2 stays near max ACU: sessions idle in a transaction",
            "course 000 case 2",
        ),
        Case(
            "proxy-lambda-burst",
            "RDS Proxy max connections under a Lambda burst",
            "course 000 case 3",
        ),
        Case(
            "replica-lag-stale-reads",
            "Replica lag causes stale reads",
            "course 000 case 4; course 004 §14.3",
        ),
        Case(
            "connection-storm",
            "Connection storm: deploys, bursts, reconnects and pool lifetimes",
            "course 004 §14.1",
        ),
        Case("lock-contention", "Lock contention: hot rows held across slow work", "course 004 §14.2"),
        Case("restore-failure", "Restore failure: a backup nobody restored", "course 004 §14.5"),
    )
}
ROLES = ("broken", "fixed")
