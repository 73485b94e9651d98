"""Instance classes and the engines' max_connections defaults.

Figures are carried in docs/facts.md with their sources (keys `instance.classes`,
`max_connections.postgres`, `max_connections.mysql`, `instance.class_memory`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class InstanceClass:
    name: str
    vcpu: int
    memory_gib: float


def _family(prefix: str, sizes: dict[str, tuple[int, float]]) -> dict[str, InstanceClass]:
    return {f"{prefix}.{s}": InstanceClass(f"{prefix}.{s}", v, m) for s, (v, m) in sizes.items()}


# FACTS: instance.classes (AWS "DB instance classes", hardware specifications)
_MEMORY_OPTIMIZED = {
    "large": (2, 16),
    "xlarge": (4, 32),
    "2xlarge": (8, 64),
    "4xlarge": (16, 128),
    "8xlarge": (32, 256),
    "12xlarge": (48, 384),
    "16xlarge": (64, 512),
}
_GENERAL = {
    "large": (2, 8),
    "xlarge": (4, 16),
    "2xlarge": (8, 32),
    "4xlarge": (16, 64),
    "8xlarge": (32, 128),
    "12xlarge": (48, 192),
    "16xlarge": (64, 256),
}
_BURSTABLE = {
    "micro": (2, 1),
    "small": (2, 2),
    "medium": (2, 4),
    "large": (2, 8),
    "xlarge": (4, 16),
    "2xlarge": (8, 32),
}

INSTANCE_CLASSES: dict[str, InstanceClass] = {
    **_family("db.r6g", _MEMORY_OPTIMIZED),
    **_family("db.r7g", _MEMORY_OPTIMIZED),
    **_family("db.r5", {**_MEMORY_OPTIMIZED, "24xlarge": (96, 768)}),
    **_family("db.m6g", _GENERAL),
    **_family("db.t4g", _BURSTABLE),
}

ENGINES = ("aurora-postgresql", "aurora-mysql", "postgres", "mysql")

# assumed: DBInstanceClassMemory (class memory less what the OS and RDS processes reserve) is 95.5% of the
# class memory. That reproduces the published Aurora PostgreSQL defaults for db.r6g; published defaults
# imply 89-96.5% across families (FACTS: instance.class_memory). Used where no table is published.
CLASS_MEMORY_FRACTION = 0.955


def instance_class_memory(memory_gib: float) -> float:
    """DBInstanceClassMemory in bytes for a class with ``memory_gib`` of nominal memory."""
    return memory_gib * GIB * CLASS_MEMORY_FRACTION


def _by_size(values: dict[str, int], families: tuple[str, ...]) -> dict[str, int]:
    return {f"{family}.{size}": v for family in families for size, v in values.items()}


_BIG = ("2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")

# FACTS: max_connections.postgres — Aurora PostgreSQL's published defaults (db.r7g assumed equal to db.r6g,
# which the table does not list yet)
AURORA_POSTGRES_DEFAULTS: dict[str, int] = {
    **_by_size({"large": 1722, "xlarge": 3479, **dict.fromkeys(_BIG, 5000)}, ("db.r6g", "db.r7g")),
    **_by_size({"large": 1600, "xlarge": 3300, **dict.fromkeys(_BIG, 5000)}, ("db.r5",)),
    "db.t4g.medium": 405,
    "db.t4g.large": 844,
}

# FACTS: max_connections.mysql — Aurora MySQL's published per-class defaults
AURORA_MYSQL_DEFAULTS: dict[str, int] = {
    **_by_size(
        {
            "large": 1000,
            "xlarge": 2000,
            "2xlarge": 3000,
            "4xlarge": 4000,
            "8xlarge": 5000,
            "12xlarge": 6000,
            "16xlarge": 6000,
        },
        ("db.r5", "db.r6g", "db.r7g"),
    ),
    "db.r5.24xlarge": 7000,
    "db.t4g.medium": 90,
    "db.t4g.large": 135,
}

# Aurora runs on these classes only (no db.m6g, and of db.t4g only medium and large)
AURORA_CLASSES = frozenset(AURORA_POSTGRES_DEFAULTS)


def default_max_connections(engine: str, instance_class: str, memory_gib: float) -> int:
    """The engine's default max_connections for an instance class (memory may be overridden)."""
    published = {"aurora-postgresql": AURORA_POSTGRES_DEFAULTS, "aurora-mysql": AURORA_MYSQL_DEFAULTS}.get(
        engine, {}
    )
    nominal = INSTANCE_CLASSES.get(instance_class)
    if instance_class in published and nominal is not None and nominal.memory_gib == memory_gib:
        return published[instance_class]
    memory = instance_class_memory(memory_gib)
    if engine in ("aurora-postgresql", "postgres"):
        # FACTS: max_connections.postgres — LEAST({DBInstanceClassMemory/9531392}, 5000)
        return max(1, min(int(memory // 9531392), 5000))
    if engine == "mysql":
        # FACTS: max_connections.mysql — {DBInstanceClassMemory/12582880}
        return max(1, int(memory // 12582880))
    if engine == "aurora-mysql":
        # assumed: off the table (a memory override), follow its +1000 per doubling of memory from 1000 at
        # 16 GiB, capped at 16000, the settable maximum
        if memory_gib < 16:
            return 90 if memory_gib <= 4 else 135  # the t4g.medium / t4g.large values
        return min(16000, int(1000 * (1 + math.log2(memory_gib / 16))))
    raise ValueError(f"unknown engine {engine!r}")


SERVERLESS_CLASS = "db.serverless"  # Aurora Serverless v2's instance class
GIB_PER_ACU = 2.0  # FACTS: acu.memory
ACU_STEP = 0.5  # FACTS: acu.range

# FACTS: acu.max_connections — Aurora PostgreSQL's Serverless v2 defaults by maximum ACU: 189 at 1, 823 at 4,
# 1,669 at 8, 3,360 at 16 (a straight line in the maximum ACU), 5,000 from 32 up
_SERVERLESS_PG_POINTS = ((1.0, 189), (16.0, 3360))
SERVERLESS_PG_LOW_MIN_CAP = 2000  # FACTS: acu.max_connections — with a minimum of 0 or 0.5 ACU


def serverless_max_connections(engine: str, min_acu: float, max_acu: float) -> int:
    """The default max_connections of a Serverless v2 instance: set by the maximum ACU, not the current one."""
    if engine == "aurora-mysql":
        # the published Serverless v2 values are those of the provisioned class with the same memory
        # (1 ACU = 2 GiB): 90 at 1 ACU, 135 at 4, then +1000 per doubling (FACTS: acu.max_connections)
        return default_max_connections("aurora-mysql", "", GIB_PER_ACU * max_acu)
    (a0, c0), (a1, c1) = _SERVERLESS_PG_POINTS
    value = min(5000, round(c0 + (max_acu - a0) * (c1 - c0) / (a1 - a0)))
    if min_acu <= 0.5:
        value = min(value, SERVERLESS_PG_LOW_MIN_CAP)
    return max(1, value)
