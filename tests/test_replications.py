"""Replications: independent seeds, t-intervals, identical results whatever the number of workers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import single_instance
from test_cli import simdb_process

import simdb
from simdb import api, theory
from simdb.analysis.replications import aggregate, interval, t975


def test_t_quantiles_match_the_table_and_the_normal_limit() -> None:
    assert t975(1) == 12.706 and t975(9) == 2.262 and t975(30) == 2.042
    assert t975(40) == pytest.approx(2.021, abs=5e-4)
    assert t975(120) == pytest.approx(1.980, abs=5e-4)
    assert t975(10**6) == pytest.approx(1.95996, abs=1e-4)


def test_interval_is_the_t_interval_on_the_mean() -> None:
    values = [3.0, 5.0, 4.0, 6.0, 2.0]  # mean 4, sd sqrt(2.5)
    got = interval(values)
    half = 2.776 * math.sqrt(2.5) / math.sqrt(5)
    assert got["mean"] == 4.0 and got["n"] == 5
    assert got["ci95"] == pytest.approx([4.0 - half, 4.0 + half])
    agg = aggregate([{"a": {"b": 1, "flag": True}}, {"a": {"b": 3, "flag": False}}])
    assert agg["a"]["b"]["mean"] == 2.0 and agg["a"]["flag"]["mean"] == 0.5


def _mmc(duration_s: float = 60.0) -> dict:
    """M/M/4 at rho = 0.8 with a pool that never binds."""
    raw = single_instance(vcpu=4, rate=3200, duration_s=duration_s, warmup_s=5, pool=300, seed=100)
    raw["expect"] = ["latency_ms.p50 > 0"]
    return raw


def test_each_replication_is_the_run_with_its_seed_and_workers_do_not_matter() -> None:
    one = api.run_replications(_mmc(20), 4, workers=1)
    three = api.run_replications(_mmc(20), 4, workers=3)
    assert json.dumps(one.summary, sort_keys=True) == json.dumps(three.summary, sort_keys=True)
    table = one.replications
    assert list(table["seed"]) == [100, 101, 102, 103]
    single = simdb.run(_mmc(20), seed=102, plots=False).summary
    assert table.loc[2, "latency_ms.p99"] == single["latency_ms"]["p99"]
    assert one.summary["latency_ms"]["p99"]["mean"] == pytest.approx(table["latency_ms.p99"].mean())
    assert one.summary["expect"][0]["passed"]


def test_the_mean_cpu_wait_agrees_with_erlang_c() -> None:
    result = api.run_replications(_mmc(), 8)
    sim = result.summary["theory"]["queueing"]["simulated"]["wq_ms"]
    want = theory.mmc(3200, 0.001, 4)["wq_s"] * 1000
    se = (sim["ci95"][1] - sim["mean"]) / t975(7)
    assert abs(sim["mean"] - want) < 3 * se, (sim, want)
    assert se / want < 0.05, "replications too short for a useful comparison"


def test_cli_replications_write_the_table_and_intervals(tmp_path: Path) -> None:
    path = tmp_path / "mmc.yaml"
    path.write_text(json.dumps(_mmc(10)))
    out = tmp_path / "reps"
    proc = simdb_process("run", path, "--replications", "3", "--workers", "2", "--out", out, "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert "3 replications, seeds 100-102" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["requests"]["ok"]) == {"mean", "ci95", "n"}
    assert summary["replications"] == {"n": 3, "seeds": [100, 101, 102]}
    assert len(pd.read_csv(out / "replications.csv")) == 3
    assert (out / "timeseries.csv").is_file()


def test_precision_adds_replications_until_the_interval_is_narrow_enough() -> None:
    result = api.run_replications(
        _mmc(10), 3, precision=0.05, metrics=["latency_ms.p99"], max_replications=40, workers=2
    )
    reps = result.summary["replications"]
    assert reps["precision"]["reached"]
    assert reps["n"] > 3 and reps["seeds"] == list(range(100, 100 + reps["n"]))
    p99 = result.summary["latency_ms"]["p99"]
    assert (p99["ci95"][1] - p99["ci95"][0]) / 2 <= 0.05 * p99["mean"]
    again = api.run_replications(
        _mmc(10), 3, precision=0.05, metrics=["latency_ms.p99"], max_replications=40, workers=1
    )
    assert json.dumps(again.summary, sort_keys=True) == json.dumps(result.summary, sort_keys=True)


def test_an_unreachable_precision_stops_at_the_cap_and_says_so() -> None:
    result = api.run_replications(
        _mmc(8), 2, precision=0.0001, metrics=["latency_ms.max"], max_replications=6
    )
    reps = result.summary["replications"]
    assert reps["n"] == 6 and not reps["precision"]["reached"]


def test_precision_metrics_must_be_numbers_of_the_summary() -> None:
    with pytest.raises(simdb.SimdbError, match=r"--metric latency_ms\.p98: summary\.json has no such number"):
        api.run_replications(_mmc(8), 2, precision=0.05, metrics=["latency_ms.p98"])


def test_95_percent_intervals_cover_erlang_c_about_95_percent_of_the_time() -> None:
    # 200 intervals, each from 5 replications of M/M/2 at rho = 0.5: the count covering the Erlang C wait
    # is binomial(200, 0.95) if the intervals are right: 90-99% is within 3 standard deviations
    from simdb.analysis.metrics import Analysis
    from simdb.engine import simulate
    from simdb.scenario import from_raw

    base = from_raw(single_instance(vcpu=2, rate=200, cpu_s=0.005, duration_s=22, warmup_s=2, pool=200))
    want = theory.mmc(200, 0.005, 2)["wq_s"] * 1000
    covered = 0
    for i in range(200):
        waits = [
            Analysis(simulate(base.model_copy(update={"seed": 1000 + 5 * i + k}))).summary()["theory"][
                "queueing"
            ]["simulated"]["wq_ms"]
            for k in range(5)
        ]
        lo, hi = interval(waits)["ci95"]
        covered += lo <= want <= hi
    assert 180 <= covered <= 198, covered
