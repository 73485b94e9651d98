"""simdb: a discrete-event simulator of Amazon RDS and Aurora behaviour under load.

>>> import simdb
>>> s = simdb.load_scenario("quickstart")
>>> s.cluster.topology
'aurora'
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import Comparison, Result, bundled, compare, find_scenario, run, run_replications
from .errors import ScenarioError, SimdbError
from .scenario import Scenario


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
]
