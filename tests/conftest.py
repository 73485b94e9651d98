"""Shared builders for small scenarios."""

from __future__ import annotations

from typing import Any

import pytest


def single_instance(
    *,
    vcpu: int,
    rate: float,
    cpu_s: float = 0.001,
    duration_s: float = 100.0,
    warmup_s: float = 5.0,
    pool: int = 200,
    seed: int = 1,
    **query: Any,
) -> dict[str, Any]:
    """One instance with ``vcpu`` vCPUs, one task whose pool never binds, one Poisson query class."""
    return {
        "name": "single",
        "seed": seed,
        "duration": duration_s,
        "warmup": warmup_s,
        "timeseries_interval": 1.0,
        "cluster": {
            "topology": "single-az",
            "engine": "postgres",
            "writer": {"class": "db.r6g.large", "vcpu": vcpu},
            "parameters": {"max_connections": 5000},
        },
        "services": [
            {
                "name": "api",
                "tasks": 1,
                "pool": {"max_size": pool, "max_lifetime": 0},
                "workload": [{"query": "q", "rate": rate, "cpu": cpu_s, **query}],
            }
        ],
    }


@pytest.fixture
def make_single():
    return single_instance
