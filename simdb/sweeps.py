"""Parameter sweeps: a cartesian grid of overrides × replications, run on local processes or a Dask cluster.

Every grid point uses the same seeds (seed, seed+1, ...), so points differ only by their parameters
(common random numbers), and a result never depends on which worker ran it.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .analysis.replications import flatten, interval
from .api import prepare, summary_for_seed, write_folder
from .errors import ScenarioError, SimdbError
from .parallel import Workers
from .scenario import Scenario, resolved

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
class Sweep:
    grid: list[tuple[str, list[Any]]]
    seeds: list[int]
    table: pd.DataFrame  # one row per point and replication
    summary: pd.DataFrame  # one row per point and metric: mean, ci_lo, ci_hi, n
    out_dir: Path | None = None

    def save(self, out: str | Path, plots: bool = True) -> Path:
        """sweep.parquet, sweep.csv, sweep_summary.csv, sweep.json and plots; complete or not at all."""
        self.out_dir = write_folder(out, lambda tmp: self._write(tmp, plots), marker="sweep.json")
        return self.out_dir

    def _write(self, folder: Path, plots: bool) -> None:
        self.table.to_parquet(folder / "sweep.parquet", index=False)
        self.table.to_csv(folder / "sweep.csv", index=False, float_format="%.9g")
        self.summary.to_csv(folder / "sweep_summary.csv", index=False, float_format="%.9g")
        doc = {
            "grid": {p: v for p, v in self.grid},
            "seeds": self.seeds,
            "points": int(self.table["point"].nunique()),
        }
        (folder / "sweep.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
        if plots:
            from .plots import sweep_plots

            sweep_plots(self, folder / "plots")


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
) -> Sweep:
    """Run every grid point ``replications`` times. ``scheduler``: a Dask scheduler address to run on."""
    if replications < 1:
        raise SimdbError("replications: at least 1")
    axes = list(grid.items()) if isinstance(grid, dict) else parse_grid(grid)
    base = prepare(scenario, seed=seed, overrides=overrides, duration=duration)
    seeds = [base.seed + r for r in range(replications)]
    points: list[dict[str, Any]] = []
    datas = []
    for combo in itertools.product(*(values for _, values in axes)):
        assignment = {path: value for (path, _), value in zip(axes, combo, strict=True)}
        point = prepare(base, overrides=assignment)  # a bad value fails here, before anything runs
        points.append(assignment)
        datas.append(resolved(point))
    jobs = [(p, r) for p in range(len(points)) for r in range(replications)]
    if scheduler is not None:
        rows = _run_dask(scheduler, [datas[p] for p, _ in jobs], [seeds[r] for _, r in jobs], progress)
    else:
        n_workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        with Workers(n_workers) as pool:
            rows = pool.map(
                _point_summary,
                [(datas[p], seeds[r]) for p, r in jobs],
                progress=None if progress is None else lambda done, total: progress(done / total),
            )
    table = pd.DataFrame(
        [
            {
                "point": p,
                "replication": r,
                "seed": seeds[r],
                **{path: _cell(points[p][path]) for path, _ in axes},
                **row,
            }
            for (p, r), row in zip(jobs, rows, strict=True)
        ]
    )
    result = Sweep(axes, seeds, table, _aggregate(table, [path for path, _ in axes]))
    if out is not None:
        result.save(out, plots=plots)
    return result


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
