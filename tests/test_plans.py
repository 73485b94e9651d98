"""Query plans: CPU per execution against the plan's cost formula, utilisation against λ·cost(rows)/vCPUs,
the saturation point against its arithmetic and the simulated queue, and the scenario-error contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import single_instance
from test_scenario_errors import BASE_TEXT, assert_one_line_error, edit, line_of, validate_cli

import simdb
from simdb import theory
from simdb.analysis.metrics import Analysis
from simdb.engine import Sim, simulate
from simdb.scenario import from_raw


def _cpu_per_request(raw) -> tuple[np.ndarray, np.ndarray]:
    """(arrival time, CPU seconds) of every successful request: for a read without a transaction the
    request ends the instant its CPU burst does, so t_end - t_start is exactly the CPU it drew."""
    c = raw.recorder.requests()
    ok = c["code"] == 0
    return c["t_arrive"][ok], (c["t_end"] - c["t_start"])[ok]


# the plan's cost, written out here rather than taken from simdb.theory
def _index_cost(base: float, per_row: float, rows: float, growth: float, t: np.ndarray) -> np.ndarray:
    return base + per_row * np.log2(rows + growth * t)


def _scan_cost(base: float, per_row: float, rows: float, growth: float, t: np.ndarray) -> np.ndarray:
    return base + per_row * (rows + growth * t)


COST = {"index": _index_cost, "scan": _scan_cost}
PLANS = {
    # index: a table from 1 to 5 M rows, so log2(rows) moves from 0 to 22.3
    "index": {
        "cpu": 0.0001,
        "plan": {"access": "index", "rows": 1, "growth": 100_000, "cost_per_row": 2e-4},
    },
    # scan: 1 M to 6 M rows at 1 ns a row, so the mean moves from 2 ms to 7 ms
    "scan": {
        "cpu": 0.001,
        "plan": {"access": "scan", "rows": 1_000_000, "growth": 100_000, "cost_per_row": 1e-9},
    },
}


@pytest.mark.parametrize("access", ["index", "scan"])
def test_mean_cpu_per_execution_follows_the_plan_as_the_table_grows(access: str) -> None:
    """In five 10-s windows of arrivals (20,000 requests each), the mean CPU per execution is within ±5% of
    the formula's mean over the same arrival instants. Exponential CPU times have a standard deviation
    equal to their mean, so the relative standard error is 1/sqrt(20,000) = 0.7%: ±5% is about 7 of them."""
    spec = PLANS[access]
    raw = simulate(
        from_raw(
            single_instance(
                vcpu=32, rate=2000, duration_s=50, warmup_s=0, cpu_s=spec["cpu"], plan=spec["plan"]
            )
        )
    )
    t, cpu = _cpu_per_request(raw)
    p = spec["plan"]
    expected = COST[access](spec["cpu"], p["cost_per_row"], p["rows"], p["growth"], t)
    means = []
    for start in range(0, 50, 10):
        mine = (t >= start) & (t < start + 10)
        n = int(mine.sum())
        rel_se = cpu[mine].std(ddof=1) / math.sqrt(n) / cpu[mine].mean()
        assert rel_se < 0.025, f"too few requests for a ±5% comparison: relative SE {rel_se:.3f}"
        assert cpu[mine].mean() == pytest.approx(expected[mine].mean(), rel=0.05), (access, start)
        means.append(expected[mine].mean())
    # the comparison can tell: a cost that ignored the table's growth would miss the last window by far
    # more than ±5%
    assert means[-1] > 1.15 * means[0]


@pytest.mark.parametrize("access", ["index", "scan"])
def test_constant_cpu_is_the_formula_at_the_arrival_instant(access: str) -> None:
    spec = PLANS[access]
    raw = simulate(
        from_raw(
            single_instance(
                vcpu=32,
                rate=500,
                duration_s=20,
                warmup_s=0,
                cpu_s=spec["cpu"],
                cpu_distribution="constant",
                plan=spec["plan"],
            )
        )
    )
    t, cpu = _cpu_per_request(raw)
    p = spec["plan"]
    assert t.size > 5000
    # t_end - t_start is rounded by the subtraction of two times near 20 s: ~4e-15 s
    np.testing.assert_allclose(
        cpu, COST[access](spec["cpu"], p["cost_per_row"], p["rows"], p["growth"], t), rtol=0, atol=1e-12
    )


def test_measured_utilisation_follows_rate_times_cost_per_window() -> None:
    """CPUUtilization per 20-s window against λ·cost(rows at the window's middle)/vCPUs, within ±5%.

    The busy time in a window is a compound Poisson sum: its variance is λ·w·E[S²] = 2·λ·w·E[S]² for
    exponential CPU times, so its relative standard error is sqrt(2/(λ·w)) = sqrt(2/10,000) = 1.4%; ±5% is
    3.5 of them. The cost is linear in time, so its mean over a window is its value at the middle."""
    rate, vcpu, base, per_row, rows, growth = 500.0, 4, 0.001, 1e-9, 1_000_000.0, 20_000.0
    raw_s = single_instance(
        vcpu=vcpu,
        rate=rate,
        duration_s=200,
        warmup_s=0,
        cpu_s=base,
        plan={"access": "scan", "rows": rows, "growth": growth, "cost_per_row": per_row},
    )
    raw = simulate(from_raw(raw_s))
    util = raw.samples["CPUUtilization.writer"] / 100.0  # 1-s intervals
    window = 20
    for start in range(0, 200, window):
        measured = util[start : start + window].mean()
        mid = np.array([start + window / 2])
        expected = rate * _scan_cost(base, per_row, rows, growth, mid)[0] / vcpu
        assert measured == pytest.approx(expected, rel=0.05), start
    # the theory block states the same line at the run's ends
    plans = Analysis(raw).summary()["theory"]["plans"]["q"]
    assert plans["utilization_start"] == pytest.approx(rate * (base + per_row * rows) / vcpu, rel=1e-6)
    assert plans["utilization_end"] == pytest.approx(
        rate * (base + per_row * (rows + growth * 200)) / vcpu, rel=1e-6
    )
    assert util[-window:].mean() > 2 * util[:window].mean()


SAT_RATE, SAT_BASE, SAT_PER_ROW, SAT_ROWS, SAT_GROWTH = 50.0, 0.001, 1e-7, 100_000.0, 2000.0
OTHER_RATE, OTHER_CPU, SAT_VCPU = 500.0, 0.001, 2


def _saturating_run(duration_s: float = 150.0, seed: int = 4):
    raw = single_instance(
        vcpu=SAT_VCPU,
        rate=SAT_RATE,
        duration_s=duration_s,
        warmup_s=0,
        seed=seed,
        cpu_s=SAT_BASE,
        plan={"access": "scan", "rows": SAT_ROWS, "growth": SAT_GROWTH, "cost_per_row": SAT_PER_ROW},
    )
    raw["services"][0]["workload"].append({"query": "lookup", "rate": OTHER_RATE, "cpu": OTHER_CPU})
    return simulate(from_raw(raw))


def test_saturation_rows_and_time_match_the_formula_and_the_queue_grows_after_them() -> None:
    """The scan saturates the 2 vCPUs when 50/s x (1 ms + 0.1 µs x rows) + 500/s x 1 ms = 2, at 290,000
    rows; growing from 100,000 at 2,000 rows/s the table gets there at 95 s. Before it the CPU queue stays
    short; after it the queue and the latency grow without bound (until the pools' 200 connections fill)."""
    raw = _saturating_run()
    summary = Analysis(raw).summary()
    th = summary["theory"]["plans"]["q"]
    other = OTHER_RATE * OTHER_CPU
    rows_sat = ((SAT_VCPU - other) / SAT_RATE - SAT_BASE) / SAT_PER_ROW
    t_sat = (rows_sat - SAT_ROWS) / SAT_GROWTH
    assert rows_sat == pytest.approx(290_000)
    assert th["instance"] == "writer"
    assert th["other_load_vcpu"] == pytest.approx(other, rel=1e-9)
    assert th["saturation_rows"] == pytest.approx(rows_sat, rel=1e-9)
    assert th["saturation_s"] == pytest.approx(t_sat, rel=1e-9)
    assert th["utilization_start"] < 1 < th["utilization_end"]
    # the lookup has no plan: no entry; the plan query's summary reports its table and cost
    assert set(summary["theory"]["plans"]) == {"q"}
    plan = summary["by_query"]["q"]["plan"]
    assert plan["rows_start"] == SAT_ROWS and plan["rows_end"] == pytest.approx(SAT_ROWS + SAT_GROWTH * 150)
    assert plan["mean_cpu_ms_start"] == pytest.approx((SAT_BASE + SAT_PER_ROW * SAT_ROWS) * 1000)

    load = raw.samples["DBLoad.writer"]  # sessions running or queued for a vCPU, per second
    early = slice(int(t_sat) - 65, int(t_sat) - 35)  # utilisation 0.68-0.83
    late = slice(int(t_sat) + 25, int(t_sat) + 50)
    assert load[late].mean() > 5 * load[early].mean()
    c = raw.recorder.requests()
    latency = c["t_end"] - c["t_arrive"]

    def arrived(start: float, end: float) -> np.ndarray:
        return latency[(c["t_arrive"] >= t_sat + start) & (c["t_arrive"] < t_sat + end)]

    assert np.percentile(arrived(25, 50), 95) > 20 * np.percentile(arrived(-65, -35), 95)
    # past the threshold the backlog keeps growing (in the pools, once the 200 connections are busy)
    assert arrived(45, 55).mean() > 1.5 * arrived(20, 30).mean()


def test_latency_p95_and_plan_rows_per_interval() -> None:
    raw = _saturating_run()
    analysis = Analysis(raw)
    ts = analysis.timeseries()
    interval = raw.scenario.timeseries_interval
    np.testing.assert_allclose(ts["PlanRows.q"], SAT_ROWS + SAT_GROWTH * (ts["time_s"] + interval / 2))
    c = raw.recorder.requests()
    mine = (c["query"] == 0) & (c["code"] == 0)
    for b in (10, 60, 120):
        in_bin = mine & (c["t_end"] >= b) & (c["t_end"] < b + interval)
        expected = np.percentile((c["t_end"] - c["t_arrive"])[in_bin] * 1000.0, 95)
        assert ts["LatencyP95.q"][b] == pytest.approx(expected, rel=1e-12)
    assert "LatencyP95.lookup" not in ts and "PlanRows.lookup" not in ts


def test_a_plan_that_adds_a_constant_changes_nothing_else() -> None:
    """A plan whose table adds exactly 1 ms (one row at 1 ms, no growth) runs the same requests as a plain
    query of 2 ms: the plan takes no random numbers and leaves other components alone. The summary differs
    only by the plan's own entries."""
    plain = single_instance(vcpu=4, rate=1500, duration_s=30, cpu_s=0.002)
    plain["services"][0]["workload"].append({"query": "other", "rate": 300, "cpu": 0.001})
    planned = single_instance(
        vcpu=4,
        rate=1500,
        duration_s=30,
        cpu_s=0.001,
        plan={"access": "scan", "rows": 1, "cost_per_row": 0.001},
    )
    planned["services"][0]["workload"].append({"query": "other", "rate": 300, "cpu": 0.001})
    a, b = simdb.run(plain, plots=False), simdb.run(planned, plots=False)
    assert a.requests.equals(b.requests)
    sa, sb = a.summary, b.summary
    assert sb["by_query"]["q"].pop("plan")["mean_cpu_ms_end"] == 2.0
    assert sb["theory"].pop("plans")["q"]["saturation_s"] is None
    assert sa == sb
    assert a.timeseries.equals(b.timeseries.drop(columns=["LatencyP95.q", "PlanRows.q"]))


def test_queries_without_a_plan_have_no_plan_output() -> None:
    result = simdb.run("quickstart", duration="40s", plots=False)
    assert "plans" not in result.summary["theory"]
    assert not any("plan" in q for q in result.summary["by_query"].values())
    assert not any(col.startswith(("LatencyP95", "PlanRows")) for col in result.timeseries.columns)


def test_same_seed_same_summary() -> None:
    first = simdb.run("query-plan-review", duration="60s", plots=False)
    second = simdb.run("query-plan-review", duration="60s", plots=False)
    assert first.summary_json() == second.summary_json()
    assert first.timeseries.equals(second.timeseries)
    assert (
        simdb.run("query-plan-review", duration="60s", seed=4, plots=False).summary_json()
        != first.summary_json()
    )


def test_queueing_theory_takes_a_fixed_plan_and_leaves_a_growing_one() -> None:
    fixed = from_raw(
        single_instance(
            vcpu=4, rate=1000, cpu_s=0.001, plan={"access": "scan", "rows": 10_000, "cost_per_row": 1e-7}
        )
    )
    q = theory.queueing(fixed, 4)
    assert q is not None and q["mean_service_ms"] == pytest.approx(2.0)
    growing = from_raw(
        single_instance(
            vcpu=4,
            rate=1000,
            cpu_s=0.001,
            plan={"access": "scan", "rows": 10_000, "growth": 1, "cost_per_row": 1e-7},
        )
    )
    assert theory.queueing(growing, 4) is None
    # the analytic screen charges a growing scan its mean over the run: its cost at the middle
    sim = Sim(growing)
    instances = sim.snapshot().instances
    cols = theory.evaluate_points(growing, instances, theory.PointInputs.of(growing, instances, 1))
    mid = 0.001 + 1e-7 * (10_000 + 1 * growing.duration / 2)
    assert cols["analytic.cpu_utilization.writer"][0] == pytest.approx(1000 * mid / 4, rel=1e-12)
    assert "theory.queueing.utilization" not in cols


def test_index_saturation_rows_are_a_power_of_two() -> None:
    """log2(rows) = budget / cost_per_row: 100/s x (0 + 1 ms x log2(rows)) = 2 vCPUs at 2^20 rows."""
    assert theory.plan_saturation_rows("index", 0.0, 1e-3, 100.0, 2.0, 0.0) == 2.0**20
    assert theory.plan_saturation_rows("scan", 0.001, 1e-7, 2.0, 4.0, 4.0) == 0.0  # saturated at any size
    assert theory.plan_saturation_rows("index", 0.0, 1e-9, 1.0, 2.0, 0.0) is None  # 2^(2e9): never


def test_query_plans_plot_is_drawn(tmp_path: Path) -> None:
    raw = single_instance(
        vcpu=SAT_VCPU,
        rate=SAT_RATE,
        duration_s=60,
        cpu_s=SAT_BASE,
        plan={"access": "scan", "rows": SAT_ROWS, "growth": SAT_GROWTH, "cost_per_row": SAT_PER_ROW},
    )
    raw["services"][0]["workload"].append(
        {"query": "lookup", "rate": 100, "cpu": "1ms", "plan": {"access": "index", "rows": 1000}}
    )
    simdb.run(raw, out=tmp_path / "r")
    png = tmp_path / "r" / "plots" / "query_plans.png"
    assert png.stat().st_size > 20_000
    assert "query_plans.png" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------- scenario errors

WITH_PLAN = edit(
    BASE_TEXT, "        cpu: 1ms\n", "        cpu: 1ms\n        plan: {access: index, rows: 1000000}\n"
)


@pytest.mark.parametrize(
    ("old", "new", "field", "fragments"),
    [
        ("access: index", "access: btree", "access", ["'btree'", "index", "scan"]),
        ("rows: 1000000", "rows: 0", "rows", ["greater than or equal to 1"]),
        ("rows: 1000000", "rows: 1000000, growth: -5/s", "growth", ["'-5/s'", "2000/s, 120/min"]),
        ("rows: 1000000", "rows: 1000000, cost_per_row: 0", "cost_per_row", ["greater than 0"]),
        (
            "rows: 1000000",
            "row: 1000000",
            "row",
            ["unknown field 'row'", "did you mean 'rows'?", "allowed: access"],
        ),
        ("access: index, ", "", "", ["access", "required"]),
    ],
    ids=["access", "rows", "growth", "cost_per_row", "unknown-field", "missing-access"],
)
def test_bad_plan_fields_print_one_line_and_exit_2(
    old: str, new: str, field: str, fragments: list[str], tmp_path: Path
) -> None:
    text = edit(WITH_PLAN, old, new)
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    line = assert_one_line_error(validate_cli(str(path)))
    assert line.startswith(f"simdb: {path}:{line_of(text, 'plan:')}: services[0].workload[0].plan"), line
    if field:
        assert f"services[0].workload[0].plan.{field}: " in line, line
    for fragment in fragments:
        assert fragment in line, (fragment, line)


def test_the_plan_file_itself_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(WITH_PLAN, encoding="utf-8")
    outcome = validate_cli(str(path))
    assert outcome.code == 0, outcome.stderr
