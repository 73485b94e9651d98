"""simdb: a discrete-event simulator of Amazon RDS and Aurora behaviour under load.

>>> import simdb
>>> s = simdb.load_scenario("quickstart")
>>> s.cluster.topology
'aurora'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from .api import Comparison, Result, bundled, compare, find_scenario, run, run_replications
from .errors import ScenarioError, SimdbError
from .scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd


def sweep(scenario: object, grid: object, **kwargs: object) -> pd.DataFrame:
    """A parameter sweep's tidy table: one row per grid point and replication (see :func:`simdb.sweeps.sweep`,
    which also returns the aggregated table with confidence intervals and writes the results folder)."""
    from .sweeps import sweep as run_sweep

    return run_sweep(scenario, grid, **kwargs).table  # type: ignore[arg-type]


def load_scenario(name_or_path: str, **kwargs: object) -> Scenario:
    """Load and validate a scenario file or bundled scenario by name (keyword args as in :func:`run`)."""
    from .api import prepare

    return prepare(name_or_path, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "Comparison",
    "Result",
    "Scenario",
    "ScenarioError",
    "SimdbError",
    "__version__",
    "bundled",
    "compare",
    "find_scenario",
    "load_scenario",
    "run",
    "run_replications",
    "sweep",
]
