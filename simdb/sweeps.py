"""Parameter sweeps: a cartesian grid of overrides × replications, run on local processes or a Dask cluster.

Every grid point uses the same seeds (seed, seed+1, ...), so points differ only by their parameters
(common random numbers), and a result never depends on which worker ran it. With ``analytic=True`` the
grid is first evaluated by theory alone (:func:`analytic`), and only the points theory finds feasible run.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from . import report, theory
from .analysis.replications import flatten, interval
from .api import prepare, summary_for_seed, write_folder
from .catalog import SERVERLESS_CLASS
from .engine import Sim
from .errors import ScenarioError, SimdbError
from .parallel import Workers
from .scenario import Scenario, apply_override, from_raw, resolved

PLOT_METRICS = (
    "requests.failed",
    "latency_ms.p99",
    "pool.acquire_wait_ms.p99",
    "connections.peak_db",
    "connections.rejected",
    "availability.write_downtime_s",
    "replication.stale_reads",
    "replication.read_your_writes_violations",
    "restore.rto_s",
)


def parse_grid(specs: list[str]) -> list[tuple[str, list[Any]]]:
    """``path=v1,v2`` (or ``path=[v1, v2]``) into (path, values); each value parsed as YAML."""
    grid = []
    for spec in specs:
        path, sep, text = spec.partition("=")
        if not sep or not path.strip() or not text.strip():
            raise ScenarioError(
                f"--grid {spec!r}: expected path=v1,v2,... e.g. services.api.pool.max_size=5,10,20"
            )
        text = text.strip()
        try:
            values = (
                yaml.safe_load(text) if text.startswith("[") else [yaml.safe_load(v) for v in text.split(",")]
            )
        except yaml.YAMLError as exc:
            raise ScenarioError(f"--grid {spec!r}: values are not YAML ({exc.problem or exc})") from None
        if not isinstance(values, list) or not values:
            raise ScenarioError(f"--grid {spec!r}: no values")
        grid.append((path.strip(), values))
    return grid


def _point_summary(data: dict[str, Any], seed: int) -> dict[str, float]:
    """One grid point and replication: the summary's numbers (runs on a worker)."""
    return flatten(summary_for_seed(data, seed))


@dataclass
class Analytic:
    """A grid evaluated by theory alone, one row per point: `point`, the swept fields, `feasible`, `reason`
    (why not), then the summary's `theory.*` numbers and the `analytic.*` screening numbers."""

    grid: list[tuple[str, list[Any]]]
    table: pd.DataFrame
    vectorised: list[str]  # swept fields mapped straight onto theory inputs, all points at once
    per_combination: list[str]  # the others: the scenario is resolved once per combination of their values
    seconds: float = 0.0  # wall time of the evaluation

    @property
    def screened_out(self) -> pd.DataFrame:
        return self.table[~self.table["feasible"]]

    def doc(self) -> dict[str, Any]:
        """sweep.json's `analytic` entry: how the grid was evaluated and every point screened out, with why."""
        params = [p for p, _ in self.grid]
        out = self.screened_out
        return {
            "points": len(self.table),
            "feasible": int(self.table["feasible"].sum()),
            "vectorised": self.vectorised,
            "resolved_per_combination": self.per_combination,
            "screened_out": [
                {"point": int(row[0]), **dict(zip(params, row[1:-1], strict=True)), "reason": row[-1]}
                for row in out[["point", *params, "reason"]].itertuples(index=False, name=None)
            ],
        }


@dataclass
class Sweep:
    grid: list[tuple[str, list[Any]]]
    seeds: list[int]
    table: pd.DataFrame  # one row per point and replication
    summary: pd.DataFrame  # one row per point and metric: mean, ci_lo, ci_hi, n
    out_dir: Path | None = None
    analytic: Analytic | None = None  # the screen, when the sweep had one

    def save(self, out: str | Path, plots: bool = True) -> Path:
        """sweep.parquet, sweep.csv, sweep_summary.csv, sweep.json and plots (analytic.csv with a screen;
        without the simulation's files when nothing was simulated); complete or not at all."""
        self.out_dir = write_folder(out, lambda tmp: self._write(tmp, plots), marker="sweep.json")
        return self.out_dir

    def _write(self, folder: Path, plots: bool) -> None:
        simulated = len(self.table) > 0 or self.analytic is None
        if simulated:
            self.table.to_parquet(folder / "sweep.parquet", index=False)
            self.table.to_csv(folder / "sweep.csv", index=False, float_format="%.9g")
            self.summary.to_csv(folder / "sweep_summary.csv", index=False, float_format="%.9g")
        doc: dict[str, Any] = {
            "grid": {p: v for p, v in self.grid},
            "seeds": self.seeds,
            "points": int(self.table["point"].nunique()) if simulated else 0,
        }
        if self.analytic is not None:
            self.analytic.table.to_csv(folder / "analytic.csv", index=False, float_format="%.9g")
            doc["analytic"] = self.analytic.doc()
        (folder / "sweep.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
        if plots and simulated:
            from .plots import sweep_plots

            sweep_plots(self, folder / "plots")
        report.write_sweep(self, folder)  # after the plots, which it embeds


def sweep(
    scenario: str | Path | Scenario | dict,
    grid: list[str] | dict[str, list[Any]],
    *,
    replications: int = 1,
    seed: int | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    duration: float | str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    plots: bool = True,
    progress: Callable[[float], None] | None = None,
    analytic: bool = False,
    analytic_only: bool = False,
    on_analytic: Callable[[Analytic], None] | None = None,
) -> Sweep:
    """Run every grid point ``replications`` times. ``scheduler``: a Dask scheduler address to run on.

    ``analytic``: evaluate the grid by theory first (:func:`analytic`) and simulate only the points it finds
    feasible; ``analytic_only``: simulate nothing. Either way ``Sweep.analytic`` holds the evaluation, also
    passed to ``on_analytic`` before anything is simulated.
    """
    if replications < 1:
        raise SimdbError("replications: at least 1")
    axes = list(grid.items()) if isinstance(grid, dict) else parse_grid(grid)
    base = prepare(scenario, seed=seed, overrides=overrides, duration=duration)
    seeds = [base.seed + r for r in range(replications)]
    screen = _analytic(base, axes) if analytic or analytic_only else None
    if screen is not None and on_analytic is not None:
        on_analytic(screen)
    combos = list(itertools.product(*(values for _, values in axes)))
    if screen is None:
        ids = list(range(len(combos)))
    else:
        ids = [] if analytic_only else screen.table.loc[screen.table["feasible"], "point"].tolist()
    points: list[dict[str, Any]] = []
    datas = []
    for combo in (combos[i] for i in ids):
        assignment = {path: value for (path, _), value in zip(axes, combo, strict=True)}
        point = prepare(base, overrides=assignment)  # a bad value fails here, before anything runs
        points.append(assignment)
        datas.append(resolved(point))
    jobs = [(p, r) for p in range(len(points)) for r in range(replications)]
    if not jobs:
        rows = []
    elif scheduler is not None:
        rows = _run_dask(scheduler, [datas[p] for p, _ in jobs], [seeds[r] for _, r in jobs], progress)
    else:
        n_workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        with Workers(n_workers) as pool:
            rows = pool.map(
                _point_summary,
                [(datas[p], seeds[r]) for p, r in jobs],
                progress=None if progress is None else lambda done, total: progress(done / total),
            )
    params = [path for path, _ in axes]
    table = pd.DataFrame(
        [
            {
                "point": ids[p],
                "replication": r,
                "seed": seeds[r],
                **{path: _cell(points[p][path]) for path, _ in axes},
                **row,
            }
            for (p, r), row in zip(jobs, rows, strict=True)
        ],
        columns=None if jobs else ["point", "replication", "seed", *params],
    )
    summary = (
        _aggregate(table, params)
        if jobs
        else pd.DataFrame(columns=["point", *params, "metric", "mean", "ci_lo", "ci_hi", "n"])
    )
    result = Sweep(axes, seeds, table, summary, analytic=screen)
    if out is not None:
        result.save(out, plots=plots)
    return result


# ----------------------------------------------------------------------------------------- analytic screen

# Swept fields the analytic fast path maps straight onto theory inputs (theory.PointInputs), by their path
# with list items as indexes. Any other swept field makes the scenario be resolved once per combination
# of that field's values.
_STORAGE_FAILURES = ("segment_mtbf", "segment_mttr", "az_mtbf", "az_mttr")


def _fast_kind(loc: tuple) -> tuple | None:
    match loc:
        case ("services", int(i), "tasks"):
            return ("tasks", i)
        case ("services", int(i), "pool", "max_size"):
            return ("pool", i)
        case ("services", int(i), "workload", int(j), "rate" | "cpu" as name):
            return (name, i, j)
        case ("cluster", "parameters", "max_connections"):
            return ("max_connections",)
        case ("cluster", "writer", "vcpu"):
            return ("vcpu", 0)
        case ("cluster", "readers", int(k), "vcpu"):
            return ("vcpu", k + 1)
        case ("cluster", "storage", "failures", name) if name in _STORAGE_FAILURES:
            return ("storage", name)
        case ("cluster", "storage", "segment_repair"):
            return ("storage", "segment_repair")
    return None


def _fast_value(kind: tuple, s: Scenario) -> float | None:
    """The parsed value a validated point holds for a fast field; None when the fast path cannot use it
    (it unsets the field, so the value then depends on other fields)."""
    match kind:
        case ("tasks", i):
            return s.services[i].tasks
        case ("pool", i):
            return s.services[i].pool.max_size
        case ("rate", i, j):
            return s.services[i].workload[j].rate
        case ("cpu", i, j):
            return s.services[i].workload[j].cpu
        case ("max_connections",):
            return s.cluster.parameters.max_connections
        case ("vcpu", k):
            return (s.cluster.writer if k == 0 else s.cluster.readers[k - 1]).vcpu
        case ("storage", "segment_repair"):
            return s.cluster.storage.segment_repair
        case ("storage", name):
            value = getattr(s.cluster.storage.failures, name)
            return math.nan if value is None else value  # unset is a value here: no failures of that kind
    return None


def _set_fast(inputs: theory.PointInputs, kind: tuple, values: np.ndarray, instances: list[Any]) -> None:
    match kind:
        case ("tasks", i):
            inputs.tasks[i] = values.astype(np.int64)
        case ("pool", i):
            inputs.pool_max_size[i] = values.astype(np.int64)
        case ("rate", i, j):
            inputs.rate[i][j] = values
        case ("cpu", i, j):
            inputs.cpu[i][j] = values
        case ("max_connections",):
            for inst in instances:
                inputs.max_connections[inst.name] = values.astype(np.int64)
        case ("vcpu", k) if instances[k].instance_class != SERVERLESS_CLASS:
            # a Serverless v2 instance's CPU follows its capacity range, not `vcpu`, as in the engine
            inputs.vcpu[instances[k].name] = values
        case ("storage", name):
            setattr(inputs, name, values)


def analytic(
    scenario: str | Path | Scenario | dict,
    grid: list[str] | dict[str, list[Any]],
    *,
    seed: int | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    duration: float | str | None = None,
) -> Analytic:
    """Evaluate every point of a sweep's grid by theory alone (Erlang C on the writer, the connection budget,
    storage quorum, offered CPU per instance), without simulating; the same points as :func:`sweep`.

    Swept fields the fast path knows (ECS tasks, pool max_size, a query's rate or cpu, max_connections, an
    instance's vcpu, storage failure rates) are validated once per value and enter the formulas as arrays
    over all points. For any other swept field the scenario is resolved once per combination of those
    fields' values (a few milliseconds each). A fast value is validated at one grid point holding it, not
    in every combination; :func:`sweep` validates each point it simulates in full.
    """
    axes = list(grid.items()) if isinstance(grid, dict) else parse_grid(grid)
    return _analytic(prepare(scenario, seed=seed, overrides=overrides, duration=duration), axes)


def _analytic(base: Scenario, axes: list[tuple[str, list[Any]]]) -> Analytic:
    started = time.perf_counter()
    raw = resolved(base)
    locs = [apply_override(json.loads(json.dumps(raw)), f"{path}=0") for path, _ in axes]
    kinds = [_fast_kind(loc) for loc in locs]
    fast = [k for k, kind in enumerate(kinds) if kind is not None]
    numbers: dict[int, list[float | None]] = {k: [] for k in fast}
    # check the fast fields' values a grid point at a time, all fields at once: point (i, i, ...) for
    # i = 0, 1, ... (the last value of a shorter axis repeated). A bad value fails here, naming the field.
    for i in range(max((len(axes[k][1]) for k in fast), default=0)):
        point = _point(raw, [(locs[k], axes[k][1][min(i, len(axes[k][1]) - 1)]) for k in fast])
        for k in fast:
            if i < len(axes[k][1]):
                numbers[k].append(_fast_value(kinds[k], point))  # type: ignore[arg-type]
    parsed: list[np.ndarray | None] = [None] * len(axes)
    for k in fast:
        if any(x is None for x in numbers[k]):
            kinds[k] = None
        else:
            parsed[k] = np.array(numbers[k], dtype=np.float64)

    shape = [len(v) for _, v in axes]
    n = math.prod(shape)
    idx = np.indices(shape).reshape(len(shape), n)
    slow = [k for k, kind in enumerate(kinds) if kind is None]
    if slow:
        # group the points by their values of the slow fields: one resolved scenario per group
        key = np.ravel_multi_index([idx[k] for k in slow], [shape[k] for k in slow])
        order = np.argsort(key, kind="stable")
        cuts = np.flatnonzero(np.diff(key[order])) + 1
        groups = np.split(order, cuts)
    else:
        groups = [np.arange(n)]
    columns: dict[str, np.ndarray] = {}
    for rows in groups:
        point = _point(raw, [(locs[k], axes[k][1][idx[k][rows[0]]]) for k in slow]) if slow else base
        instances = Sim(point).snapshot().instances
        inputs = theory.PointInputs.of(point, instances, len(rows))
        for k, kind in enumerate(kinds):
            if kind is not None:
                _set_fast(inputs, kind, parsed[k][idx[k][rows]], instances)  # type: ignore[index]
        for name, values in theory.evaluate_points(point, instances, inputs).items():
            columns.setdefault(name, np.full(n, np.nan))[rows] = values
    # a block the summary would have at no point (storage theory without random failures) is left out
    columns = {
        name: col for name, col in columns.items() if not (name.startswith("theory.") and np.isnan(col).all())
    }
    feasible, reasons = _screen(columns, n)
    table = pd.DataFrame(
        {
            "point": np.arange(n),
            **{path: _column(values, idx[k]) for k, (path, values) in enumerate(axes)},
            "feasible": feasible,
            "reason": reasons,
            **columns,
        }
    )
    return Analytic(
        axes,
        table,
        vectorised=[axes[k][0] for k, kind in enumerate(kinds) if kind is not None],
        per_combination=[axes[k][0] for k in slow],
        seconds=time.perf_counter() - started,
    )


def _point(raw: dict[str, Any], values: list[tuple[tuple, Any]]) -> Scenario:
    """The resolved scenario ``raw`` with a value at each path (list items as indexes), validated: what
    ``prepare(base, overrides=...)`` gives, without writing each value as YAML and reading it back."""
    data = json.loads(json.dumps(raw))
    for loc, value in values:
        node = data
        for part in loc[:-1]:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[part]
        node[loc[-1]] = value
    return from_raw(data)


def _column(values: list[Any], index: np.ndarray) -> list[Any]:
    cells = [_cell(v) for v in values]
    return [cells[i] for i in index.tolist()]


def _screen(columns: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, list[str]]:
    """Infeasible by theory: an instance offered CPU utilisation ≥ 1, or peak connection demand above its
    max_connections. The reason names each."""
    checks = []
    for name, col in columns.items():
        if name.startswith("analytic.cpu_utilization."):
            instance = name.removeprefix("analytic.cpu_utilization.")
            checks.append((col >= 1.0, lambda p, i=instance, c=col: f"{i} CPU utilisation {c[p]:.3g} >= 1"))
        elif name.startswith("theory.connection_budget.instances.") and name.endswith(".fits"):
            instance = name.removeprefix("theory.connection_budget.instances.").removesuffix(".fits")
            demand = columns[f"theory.connection_budget.instances.{instance}.peak_demand"]
            limit = columns[f"theory.connection_budget.instances.{instance}.max_connections"]
            checks.append(
                (
                    col == 0.0,
                    lambda p, i=instance, d=demand, m=limit: (
                        f"{i} peak connection demand {d[p]:g} > max_connections {m[p]:g}"
                    ),
                )
            )
    bad = np.zeros(n, dtype=bool)
    for failed, _ in checks:
        bad |= failed
    reasons = [""] * n
    for p in np.flatnonzero(bad).tolist():
        reasons[p] = "; ".join(say(p) for failed, say in checks if failed[p])
    return ~bad, reasons


def _cell(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) else json.dumps(value)


def _run_dask(
    address: str, datas: list[dict], seeds: list[int], progress: Callable[[float], None] | None
) -> list:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise SimdbError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise SimdbError(f"--scheduler {address}: cannot connect ({exc})") from None
    with client:
        # pure=False: equal inputs at two points must still run twice under their own keys
        futures = client.map(_point_summary, datas, seeds, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        rows: list[Any] = [None] * len(futures)
        for done, future in enumerate(as_completed(futures), start=1):
            rows[index[future.key]] = future.result()
            if progress is not None:
                progress(done / len(futures))
    return rows


def _aggregate(table: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    fixed = {"point", "replication", "seed", *params}
    metrics = [c for c in table.columns if c not in fixed]
    out = []
    for point, rows in table.groupby("point", sort=True):
        for m in metrics:
            values = rows[m].dropna()
            if values.empty:
                continue
            ci = interval(list(values))
            lo, hi = ci["ci95"] if ci["ci95"] is not None else (ci["mean"], ci["mean"])
            out.append(
                {
                    "point": point,
                    **{p: rows[p].iloc[0] for p in params},
                    "metric": m,
                    "mean": ci["mean"],
                    "ci_lo": lo,
                    "ci_hi": hi,
                    "n": ci["n"],
                }
            )
    return pd.DataFrame(out)
