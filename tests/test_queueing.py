"""The DB instance's vCPU queue against queueing theory: Erlang C (M/M/c) and Little's law."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import single_instance

from simdb.analysis.metrics import Analysis
from simdb.engine import simulate
from simdb.scenario import from_raw
from simdb.theory import mmc

MEAN_CPU_S = 0.001


def _run(c: int, rho: float, requests: int, seed: int):
    rate = rho * c / MEAN_CPU_S
    warmup = 5.0
    scenario = from_raw(
        single_instance(
            vcpu=c,
            rate=rate,
            cpu_s=MEAN_CPU_S,
            duration_s=warmup + math.ceil(requests / rate),
            warmup_s=warmup,
            seed=seed,
        )
    )
    raw = simulate(scenario)
    cols = raw.recorder.requests()
    window = (cols["t_arrive"] >= warmup) & (cols["code"] == 0)
    return raw, cols, window, rate


REPLICATIONS = 4
BATCHES_PER_REPLICATION = 10


@pytest.mark.parametrize(
    ("c", "rho", "requests"),
    [
        (1, 0.5, 600_000),
        (1, 0.8, 1_200_000),
        (16, 0.5, 6_000_000),
        (16, 0.8, 2_000_000),
    ],
)
def test_mean_cpu_wait_matches_erlang_c(c: int, rho: float, requests: int) -> None:
    """Mean wait for a vCPU and P(wait) within ±5% of Erlang C.

    The work is split over independent replications (seeds 11-14) so the verdict does not rest on one
    sample path; batch means over all of them must put ±5% at two standard errors or more.
    """
    batch_means, waited = [], []
    for seed in range(11, 11 + REPLICATIONS):
        _, cols, window, rate = _run(c, rho, requests // REPLICATIONS, seed=seed)
        waits = (cols["t_start"] - cols["t_acquired"])[window]
        size = waits.size // BATCHES_PER_REPLICATION
        batch_means.extend(
            waits[: size * BATCHES_PER_REPLICATION].reshape(BATCHES_PER_REPLICATION, -1).mean(axis=1)
        )
        waited.append((waits > 0).mean())
    expected = mmc(rate, MEAN_CPU_S, c)
    batch = np.asarray(batch_means)
    mean_wait = batch.mean()
    rel_se = batch.std(ddof=1) / np.sqrt(batch.size) / mean_wait
    assert rel_se < 0.025, f"too little work for a ±5% comparison: relative SE {rel_se:.3f}"
    assert mean_wait == pytest.approx(expected["wq_s"], rel=0.05)
    assert np.mean(waited) == pytest.approx(expected["p_wait"], rel=0.05)


@pytest.mark.parametrize(("c", "rho"), [(1, 0.8), (16, 0.8)])
def test_littles_law_in_the_instance(c: int, rho: float) -> None:
    """Time-average sessions in the DB (DBLoad, integrated in the model) = throughput × time in the DB."""
    raw, cols, window, rate = _run(c, rho, 400_000, seed=5)
    warmup = raw.scenario.warmup
    measured = raw.scenario.duration - warmup
    load = raw.samples["DBLoad.writer"][int(warmup) :].mean()
    time_in_db = (cols["t_end"] - cols["t_acquired"])[window]
    assert load == pytest.approx(window.sum() / measured * time_in_db.mean(), rel=0.02)
    # and both agree with the M/M/c value L = λW
    assert load == pytest.approx(rate * mmc(rate, MEAN_CPU_S, c)["w_s"], rel=0.05)


def test_summary_theory_block_reports_erlang_c_beside_simulation() -> None:
    scenario = from_raw(single_instance(vcpu=4, rate=3200, duration_s=60))
    summary = Analysis(simulate(scenario)).summary()
    q = summary["theory"]["queueing"]
    assert q["model"] == "M/M/c (Erlang C)"
    assert q["servers"] == 4
    assert q["utilization"] == pytest.approx(0.8)
    assert q["wq_ms"] == pytest.approx(mmc(3200, 0.001, 4)["wq_s"] * 1000, rel=1e-6)
    assert q["simulated"]["utilization"] == pytest.approx(0.8, rel=0.03)


def test_mixed_service_times_use_the_allen_cunneen_approximation() -> None:
    raw = single_instance(vcpu=2, rate=500, duration_s=30)
    raw["services"][0]["workload"].append({"query": "slow", "rate": 100, "cpu": 0.005})
    summary = Analysis(simulate(from_raw(raw))).summary()
    assert summary["theory"]["queueing"]["model"].startswith("M/G/c")
    assert summary["theory"]["queueing"]["p_wait"] is None
