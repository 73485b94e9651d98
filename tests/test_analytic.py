"""The analytic fast path: vectorised theory equals the scalar functions, the grid evaluation equals each
point's own summary `theory` block, and `sweep --analytic` simulates only the points theory finds feasible."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_cli import one_error_line, simdb_process
from test_sweep import _small

import simdb
from simdb import sweeps, theory
from simdb.analysis.metrics import Analysis
from simdb.analysis.replications import flatten
from simdb.api import prepare
from simdb.catalog import INSTANCE_CLASSES, default_max_connections
from simdb.engine import Sim

REL = 1e-12


def _close(vec: np.ndarray, scalar: list[float]) -> None:
    expected = np.array(scalar, dtype=np.float64)
    both_inf = np.isinf(vec) & np.isinf(expected)
    assert np.array_equal(np.isinf(vec), np.isinf(expected))
    with np.errstate(invalid="ignore"):  # inf − inf where both are inf
        diff = np.abs(vec - expected)
    assert np.all(both_inf | (diff <= REL * np.abs(expected))), np.max(diff[~both_inf])


# ------------------------------------------------------------------------------------ vectorised == scalar


def test_erlang_c_and_mmc_vectorised_equal_the_scalar_functions() -> None:
    rng = np.random.default_rng(7)
    c = rng.integers(1, 400, 3000)
    a = c * rng.uniform(0.0, 1.3, c.size)  # some unstable points (a >= c)
    a[:5] = [0.0, 1.0, 2.0, 3.0, 4.0]
    c[:5] = [1, 1, 2, 3, 4]  # a == c exactly: unstable
    _close(
        theory.erlang_c_vec(c, a), [theory.erlang_c(int(ci), float(ai)) for ci, ai in zip(c, a, strict=True)]
    )
    service = rng.uniform(1e-4, 0.05, c.size)
    lam = a / service
    vec = theory.mmc_vec(lam, service, c)
    scalar = [theory.mmc(float(x), float(s), int(ci)) for x, s, ci in zip(lam, service, c, strict=True)]
    for key in ("utilization", "p_wait", "wq_s", "w_s"):
        _close(vec[key], [m[key] for m in scalar])
    for q in (0.5, 0.9, 0.99, 0.999):
        _close(
            theory.mmc_wait_quantile_vec(lam, service, c, q),
            [
                theory.mmc_wait_quantile(float(x), float(s), int(ci), q)
                for x, s, ci in zip(lam, service, c, strict=True)
            ],
        )


def test_wait_quantile_is_the_exponential_tail_of_erlang_c() -> None:
    # M/M/c: P(Wq > t) = C·exp(−(cμ − λ)t); at the quantile the tail is 1 − q
    lam, s, c = 15_000.0, 0.001, 20
    m = theory.mmc(lam, s, c)
    t = theory.mmc_wait_quantile(lam, s, c, 0.99)
    assert m["p_wait"] * math.exp(-(c / s - lam) * t) == pytest.approx(0.01, rel=1e-12)
    assert theory.mmc_wait_quantile(lam, s, c, 1.0 - m["p_wait"] - 0.01) == 0.0  # most requests do not wait


def test_quorum_availability_vectorised_equals_the_scalar_functions() -> None:
    rng = np.random.default_rng(11)
    p_copy = np.concatenate([rng.uniform(0.5, 1.0, 500), [1.0, 0.0, 0.999999]])
    p_az = np.concatenate([rng.uniform(0.5, 1.0, 500), [1.0, 1.0, 0.9999]])
    for k in (3, 4):
        _close(
            theory.quorum_availability_vec(6, k, p_copy),
            [theory.quorum_availability(6, k, float(p)) for p in p_copy],
        )
        _close(
            theory.az_quorum_availability_vec(3, 2, k, p_copy, p_az),
            [
                theory.az_quorum_availability(3, 2, k, float(p), float(z))
                for p, z in zip(p_copy, p_az, strict=True)
            ],
        )


def _log_space_erlang_c(c: int, a: float) -> float:
    """Erlang C from log-terms k·ln a − ln k! summed by log-sum-exp: an independent check."""
    terms = np.array([k * math.log(a) - math.lgamma(k + 1) for k in range(c + 1)])
    top = terms.max()
    b = math.exp(terms[-1] - top) / np.exp(terms - top).sum()
    rho = a / c
    return b / (1.0 - rho + rho * b)


@pytest.mark.parametrize("c", [1000, 2500, 5000])
def test_erlang_c_is_stable_for_thousands_of_servers(c: int) -> None:
    with pytest.raises(OverflowError):
        float(math.factorial(c))  # the textbook formula's c! is out of range
    rhos = np.array([0.5, 0.9, 0.99, 0.999])
    vec = theory.erlang_c_vec(np.full(rhos.size, c), rhos * c)
    assert np.all(np.isfinite(vec)) and np.all((vec >= 0) & (vec <= 1))
    for rho, p in zip(rhos, vec, strict=True):
        assert p == pytest.approx(_log_space_erlang_c(c, rho * c), rel=1e-9)
        assert p == theory.erlang_c(c, rho * c)
    assert vec[0] < 1e-80 and vec[-1] > 0.85  # half-loaded: nobody waits; 99.9%: most wait
    assert np.all(np.diff(vec) > 0)


def test_erlang_c_worked_value() -> None:
    # FACTS: theory.erlang_c — c = 20, ρ = 0.8: C = 0.2561, Wq = 0.0640/μ
    assert round(float(theory.erlang_c_vec(20, 16.0)), 4) == 0.2561
    assert round(float(theory.mmc_vec(16.0, 1.0, 20)["wq_s"]), 4) == 0.0640


# --------------------------------------------------------------------- the grid == each point's summary


def _summary_theory(base, assignment: dict) -> dict[str, float]:
    point = prepare(base, overrides=assignment)
    theory_block = Analysis(Sim(point).snapshot()).summary()["theory"]
    return {
        k: v
        for k, v in flatten(theory_block, "theory.").items()
        if ".simulated." not in k and not k.startswith("theory.replication.")
    }


CASES = [
    (
        "connection-budget-overlap",
        {},
        [
            "services.api.pool.max_size=1,7,20,35",
            "services.api.tasks=1,13,40",
            "cluster.parameters.max_connections=600,5000",
        ],
        set(),  # the deploy is an event: no steady state, no queueing block
    ),
    (
        "quickstart",
        {"events": [], "services.api.workload.read_order.route": "writer"},
        [
            "services.api.workload.read_order.rate=200,900,2000",
            "services.api.workload.place_order.cpu=1ms,3ms",
            "cluster.writer.vcpu=2,4,16",
            "services.api.pool.max_size=10,200",
        ],
        {"queueing"},
    ),
    (
        # one task, one vCPU: whether the pool can bind turns on its size (theory.queueing's 4σ margin)
        "quickstart",
        {"events": [], "services.api.workload.read_order.route": "writer", "services.api.tasks": 1},
        [
            "services.api.pool.max_size=" + ",".join(str(v) for v in range(8, 31)),
            "services.api.workload.read_order.rate=100,200",
            "cluster.writer.vcpu=1",
        ],
        {"queueing"},
    ),
    (
        "az-outage-aurora",
        {"events": []},
        [
            "cluster.storage.failures.segment_mtbf=null,1h,2d",
            "cluster.storage.failures.az_mtbf=null,30d",
            "cluster.storage.failures.segment_mttr=null,5min",
        ],
        {"storage"},
    ),
    (
        "lambda-burst-proxy",
        {},
        ["cluster.parameters.max_connections=100,1000", "cluster.proxy.max_connections_percent=50,90"],
        set(),
    ),
    (
        "quickstart",
        {},
        ["cluster.writer.class=db.r6g.large,db.r6g.2xlarge", "services.api.tasks=5,40"],
        set(),
    ),
]


@pytest.mark.parametrize(
    ("name", "overrides", "grid", "expect_blocks"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_grid_equals_each_points_summary_theory(
    name: str, overrides: dict, grid: list[str], expect_blocks: set[str]
) -> None:
    base = prepare(name, overrides=overrides)
    result = sweeps.analytic(base, grid)
    axes = sweeps.parse_grid(grid)
    table = result.table
    assert len(table) == math.prod(len(v) for _, v in axes)
    theory_cols = [c for c in table.columns if c.startswith("theory.")]
    blocks = {c.split(".")[1] for c in theory_cols}
    assert blocks == {"connection_budget", *expect_blocks}
    combos = list(itertools.product(*(values for _, values in axes)))  # the sweep's order
    for p in range(len(table)):
        row = table.iloc[p]
        assignment = dict(zip([path for path, _ in axes], combos[p], strict=True))
        expected = _summary_theory(base, assignment)
        assert set(expected) == {c for c in theory_cols if not math.isnan(row[c])}, assignment
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-6), (assignment, key)
    if "queueing" in expect_blocks:  # some points have no steady-state block: the rule is exercised
        assert 0 < table["theory.queueing.utilization"].isna().sum() < len(table)


def test_fields_theory_does_not_know_are_resolved_per_combination() -> None:
    grid = [
        "cluster.writer.class=db.r6g.large,db.r6g.2xlarge",
        "services.api.tasks=5,40",
        "services.api.sessions=10,20",
    ]
    result = sweeps.analytic("quickstart", grid)
    assert result.vectorised == ["services.api.tasks"]
    assert result.per_combination == ["cluster.writer.class", "services.api.sessions"]
    # unsetting a fast field (back to its default) also needs the whole scenario
    unset = sweeps.analytic("connection-budget-overlap", ["cluster.parameters.max_connections=null,100"])
    assert unset.per_combination == ["cluster.parameters.max_connections"]
    default = default_max_connections(
        "aurora-postgresql", "db.r6g.xlarge", INSTANCE_CLASSES["db.r6g.xlarge"].memory_gib
    )
    assert unset.table["theory.connection_budget.max_connections"].tolist() == [default, 100]


# ----------------------------------------------------------------------------------------- the screen


@pytest.mark.parametrize("events", [True, False])
def test_budget_grid_marks_exactly_the_points_over_the_budget(events: bool) -> None:
    pools, tasks = range(1, 41), range(1, 61)
    grid = [
        f"services.api.pool.max_size={','.join(map(str, pools))}",
        f"services.api.tasks={','.join(map(str, tasks))}",
    ]
    result = sweeps.analytic("connection-budget-overlap", grid, overrides=None if events else {"events": []})
    t = result.table
    # two overlapping deploy waves run the old and the new fleet together: 2 x tasks x pool connections
    demand = (2 if events else 1) * t["services.api.tasks"] * t["services.api.pool.max_size"]
    assert (t["theory.connection_budget.peak_demand"] == demand).all()
    assert (t["theory.connection_budget.fits"] == (demand <= 600)).all()
    assert (t["feasible"] == (demand <= 600)).all()  # CPU is 0.4 of the writer at every point
    assert 0 < (~t["feasible"]).sum() < len(t)
    first = t[~t["feasible"]].iloc[0]
    want = f"writer peak connection demand {demand[first.name]} > max_connections 600"
    assert first["reason"] == want
    assert (t.loc[t["feasible"], "reason"] == "").all()


def test_offered_cpu_screens_points_at_or_above_one() -> None:
    # quickstart's writer: place_order rate x 3 ms on 2 vCPUs; its reader: read_order 1200/s x 1 ms on 2
    result = sweeps.analytic("quickstart", ["services.api.workload.place_order.rate=100,600,700"])
    t = result.table
    assert t["analytic.cpu_utilization.writer"].tolist() == pytest.approx([0.15, 0.9, 1.05])
    assert t["analytic.cpu_utilization.reader-1"].tolist() == pytest.approx([0.6] * 3)
    assert t["feasible"].tolist() == [True, True, False]
    assert t["reason"].iloc[2] == "writer CPU utilisation 1.05 >= 1"


GRID = ["services.api.pool.max_size=5,20", "services.api.tasks=20,40"]


def test_screened_sweep_simulates_only_the_feasible_points(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = sweeps.sweep(_small(), GRID, analytic=True, workers=2, out=out, plots=False)
    # point 3 is pool 20 x 40 tasks = 800 connections > 600
    assert sorted(result.table["point"]) == [0, 1, 2]
    combos = set(
        zip(result.table["services.api.pool.max_size"], result.table["services.api.tasks"], strict=True)
    )
    assert combos == {(5, 20), (5, 40), (20, 20)}
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["points"] == 3
    assert doc["analytic"]["screened_out"] == [
        {
            "point": 3,
            "services.api.pool.max_size": 20,
            "services.api.tasks": 40,
            "reason": "writer peak connection demand 800 > max_connections 600",
        }
    ]
    analytic = pd.read_csv(out / "analytic.csv")
    assert analytic["feasible"].tolist() == [True, True, True, False]
    # a simulated point is the plain run of its values, and its summary's theory block is the analytic row
    single = simdb.run(
        _small(), overrides={"services.api.pool.max_size": 5, "services.api.tasks": 40}, plots=False
    )
    row = result.table[result.table["point"] == 1].iloc[0]
    assert row["latency_ms.p99"] == single.summary["latency_ms"]["p99"]
    for col in [c for c in analytic.columns if c.startswith("theory.")]:
        assert analytic.loc[1, col] == pytest.approx(row[col], rel=1e-6, abs=1e-6), col


def test_screened_sweep_keeps_the_plain_sweeps_rows() -> None:
    plain = sweeps.sweep(_small(), ["services.api.tasks=20,40"], workers=2)
    screened = sweeps.sweep(_small(), ["services.api.tasks=20,40"], analytic=True, workers=2)
    assert screened.analytic is not None and plain.analytic is None
    assert screened.analytic.screened_out["point"].tolist() == [1]
    pd.testing.assert_frame_equal(screened.table, plain.table[plain.table["point"] == 0])


def test_analytic_only_simulates_nothing_and_bad_values_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_small()))
    out = tmp_path / "sweep"
    proc = simdb_process("sweep", path, "--grid", GRID[0], "--grid", GRID[1], "--out", out, "--analytic-only")
    assert proc.returncode == 0, proc.stderr
    assert "4 points by theory" in proc.stdout and "1 infeasible, 3 feasible" in proc.stdout
    assert "writer peak connection demand 800 > max_connections 600" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["analytic.csv", "report.html", "sweep.json"]
    assert "Analytic screen" in (out / "report.html").read_text()
    assert json.loads((out / "sweep.json").read_text())["points"] == 0
    line = one_error_line(
        simdb_process(
            "sweep",
            path,
            "--grid",
            "services.api.pool.max_size=5,0",
            "--out",
            tmp_path / "x",
            "--analytic-only",
        )
    )
    assert "services[0].pool.max_size" in line
    assert not (tmp_path / "x").exists()
