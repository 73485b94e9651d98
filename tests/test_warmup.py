"""warmup: auto finds where the initial transient ends (MSER-5)."""

from __future__ import annotations

import numpy as np
from conftest import single_instance

import simdb
from simdb.analysis.warmup import mser5_cut


def test_mser5_drops_a_decaying_start_and_nothing_from_a_stationary_series() -> None:
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 1.0, 2000)
    assert mser5_cut(noise) < 100
    transient = noise + 20.0 * np.exp(-np.arange(2000) / 100.0)
    cut = mser5_cut(transient)
    assert 250 <= cut <= 700  # the bias is below one noise sd after 100·ln(20) ≈ 300 observations


def _overload_then_relief(warmup: object) -> dict:
    # 4 vCPUs of 1 ms: 4800/s for 60 s builds a backlog of ~48,000 queries; at 2000/s it drains in ~24 s
    raw = single_instance(vcpu=4, rate=4800, duration_s=300, warmup_s=0, pool=4000, seed=3)
    raw["warmup"] = warmup
    raw["services"][0]["pool"]["connection_timeout"] = "10min"
    query = raw["services"][0]["workload"][0]
    del query["rate"]
    query["schedule"] = [{"at": "0s", "rate": 4800}, {"at": "60s", "rate": 2000}]
    return raw


def test_auto_warmup_cuts_after_the_backlog_drains() -> None:
    auto = simdb.run(_overload_then_relief("auto"), plots=False).summary
    cut = auto["warmup_s"]
    assert auto["warmup_auto"]["cut_s"] == cut
    assert 80 <= cut <= 130, cut
    fixed = simdb.run(_overload_then_relief(0), plots=False).summary
    assert "warmup_auto" not in fixed
    # after the cut the latency is the stationary M/M/4 at rho = 0.5, not the overload's seconds
    assert auto["latency_ms"]["p99"] < 10 < fixed["latency_ms"]["p99"]
