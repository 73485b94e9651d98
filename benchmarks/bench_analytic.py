"""Analytic screen benchmark: ``simdb.sweeps.analytic`` on 10,000-point grids, no simulation.

Run from the repository root::

    python benchmarks/bench_analytic.py                # best of 3
    python benchmarks/bench_analytic.py --repeats 1 --json analytic.json

Cases (every time is end to end: loading the scenario, checking each swept value, theory over all points,
the screen and the table; writing analytic.csv is not included):

- budget: ``connection-budget-overlap``, ``services.api.pool.max_size=1..100`` x ``services.api.tasks=1..100``:
  the connection budget through the two overlapping deploy waves (peak 2 x tasks x pool against 600).
- erlang: ``quickstart`` made an M/M/c queue on the writer (no events, reads on the writer, both queries
  1 ms exponential, pools of 150), ``read_order.rate=100..10000/s`` x ``cluster.writer.vcpu=1..100``.
- per combination: the same budget grid over a field the fast path does not know
  (``services.api.pool.min_idle``), which resolves the scenario once per value: the cost of the slow path.
- kernel: ``theory.erlang_c_vec`` on 10,000 random (c, a) with c up to 3,000, against the scalar loop.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# measure the checkout this script lives in, whatever simdb is installed
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from simdb import sweeps, theory  # noqa: E402

SEED = 20240601
BUDGET_GRID = [
    "services.api.pool.max_size=" + ",".join(str(v) for v in range(1, 101)),
    "services.api.tasks=" + ",".join(str(v) for v in range(1, 101)),
]
ERLANG_OVERRIDES = {
    "events": [],
    "services.api.workload.read_order.route": "writer",
    "services.api.workload.place_order.cpu": "1ms",
    "services.api.pool.max_size": 150,
}
ERLANG_GRID = [
    "services.api.workload.read_order.rate=" + ",".join(str(100 * v) for v in range(1, 101)),
    "cluster.writer.vcpu=" + ",".join(str(v) for v in range(1, 101)),
]
SLOW_GRID = [
    "services.api.pool.min_idle=" + ",".join(str(v) for v in range(1, 51)),
    "services.api.tasks=20,40",
]


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, list[float]]:
    walls, out = [], None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - started)
    return out, walls


def run(repeats: int) -> dict[str, Any]:
    res: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "repeats": repeats,
            "statistic": "best of repeats (shortest wall time); median also given",
        }
    }
    budget, walls = timed(lambda: sweeps.analytic("connection-budget-overlap", BUDGET_GRID), repeats)
    t = budget.table
    arithmetic = 2 * t["services.api.tasks"] * t["services.api.pool.max_size"] > 600
    res["budget"] = {
        "points": len(t),
        "walls_s": walls,
        "vectorised": budget.vectorised,
        "infeasible": int((~t["feasible"]).sum()),
        "agrees_with_arithmetic": bool(((~t["feasible"]) == arithmetic).all()),
    }
    erlang, walls = timed(
        lambda: sweeps.analytic("quickstart", ERLANG_GRID, overrides=ERLANG_OVERRIDES), repeats
    )
    t = erlang.table
    rho = t["services.api.workload.read_order.rate"].to_numpy() * 0.001 + 0.15  # + place_order 150/s x 1 ms
    res["erlang"] = {
        "points": len(t),
        "walls_s": walls,
        "vectorised": erlang.vectorised,
        "with_erlang_c": int(t["theory.queueing.p_wait"].notna().sum()),
        "infeasible": int((~t["feasible"]).sum()),
        "writer_over_1": int((rho / t["cluster.writer.vcpu"].to_numpy() >= 1.0).sum()),
    }
    slow, walls = timed(lambda: sweeps.analytic("connection-budget-overlap", SLOW_GRID), 1)
    res["per_combination"] = {
        "points": len(slow.table),
        "combinations": 50,
        "walls_s": walls,
        "per_combination": slow.per_combination,
    }
    rng = np.random.default_rng(SEED)
    c = rng.integers(1, 3001, 10_000)
    a = c * rng.uniform(0.5, 0.999, c.size)
    vec, walls = timed(lambda: theory.erlang_c_vec(c, a), repeats)
    started = time.perf_counter()
    scalar = np.array([theory.erlang_c(int(ci), float(ai)) for ci, ai in zip(c, a, strict=True)])
    res["kernel"] = {
        "points": int(c.size),
        "walls_s": walls,
        "scalar_s": time.perf_counter() - started,
        "max_rel_diff": float(np.max(np.abs(vec - scalar) / scalar)),
    }
    return res


def report(res: dict[str, Any]) -> str:
    m = res["meta"]
    load = m["loadavg_start"]

    def times(walls: list[float]) -> str:
        return f"{min(walls):.3f} s best of {len(walls)} (median {statistics.median(walls):.3f} s)"

    b, e, s, k = res["budget"], res["erlang"], res["per_combination"], res["kernel"]
    return "\n".join(
        [
            f"simdb analytic benchmark: Python {m['python']}, numpy {m['numpy']}, {m['cpus']} CPUs"
            + (f", load average {load:.2f} at start" if load is not None else ""),
            "",
            f"budget    connection-budget-overlap, {b['points']:,} points (pool x tasks): {times(b['walls_s'])}",
            f"          {b['infeasible']:,} infeasible; same as 2 x tasks x pool > 600: {b['agrees_with_arithmetic']}",
            f"erlang    quickstart as M/M/c, {e['points']:,} points (rate x vcpu): {times(e['walls_s'])}",
            f"          Erlang C at {e['with_erlang_c']:,} points (elsewhere pools may bind); "
            f"{e['infeasible']:,} infeasible, {e['writer_over_1']:,} with writer load >= 1 by arithmetic",
            f"slow path {s['points']} points, {s['combinations']} combinations of {', '.join(s['per_combination'])}: "
            f"{min(s['walls_s']):.3f} s = {1000 * min(s['walls_s']) / s['combinations']:.1f} ms per combination",
            f"kernel    erlang_c_vec, {k['points']:,} points, c up to 3,000: {times(k['walls_s'])}; "
            f"scalar loop {k['scalar_s']:.2f} s; max relative difference {k['max_rel_diff']:.1e}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="timed calls per case (default 3)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = p.parse_args(argv)
    res = run(max(1, args.repeats))
    print(report(res))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
