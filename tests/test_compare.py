"""Paired comparisons: common random numbers make unchanged parts cancel exactly; B - A with a CI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_cli import one_error_line, simdb_process

import simdb

ROUTE_TO_WRITER = ["services.shop.workload.confirm_order.route=writer"]


@pytest.fixture(scope="module")
def routed() -> simdb.Comparison:
    return simdb.compare("replica-lag-stale-reads", against=ROUTE_TO_WRITER, replications=4, duration="45s")


def _row(result: simdb.Comparison, metric: str) -> pd.Series:
    return result.table.set_index("metric").loc[metric]


def test_common_random_numbers_cancel_what_the_change_does_not_touch(routed) -> None:
    # the same seeds give both variants the same arrivals, keys and sessions: only routing differs
    total = _row(routed, "requests.total")
    assert total["a_mean"] > 20_000 and total["diff_lo"] == total["diff_hi"] == 0.0
    per_rep = routed.replications
    a = per_rep[per_rep["variant"] == "A"]["requests.total"].to_numpy()
    b = per_rep[per_rep["variant"] == "B"]["requests.total"].to_numpy()
    assert (a == b).all() and len(set(a)) > 1, "replications differ from each other, variants do not"


def test_the_fix_shows_as_a_difference_whose_interval_excludes_zero(routed) -> None:
    ryw = _row(routed, "replication.read_your_writes_violations")
    assert ryw["b_mean"] == 0 and ryw["a_mean"] > 1000
    assert ryw["diff_mean"] == pytest.approx(-ryw["a_mean"])
    assert ryw["differs"] and ryw["diff_hi"] < 0
    writes = _row(routed, "by_query.place_order.ok")
    assert writes["diff_lo"] == writes["diff_hi"] == 0.0 and not writes["differs"]


def test_two_scenario_files_and_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = simdb_process(
        "compare",
        "replica-lag-stale-reads",
        "replica-lag-routed",
        "--replications",
        "2",
        "--duration",
        "40s",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    assert "paired     2 replications, seeds 7-8 (common random numbers)" in proc.stdout
    assert "replication.read_your_writes_violations" in proc.stdout and "differs" in proc.stdout
    doc = json.loads((out / "compare.json").read_text())
    assert doc["a"] == "replica-lag-stale-reads" and doc["b"] == "replica-lag-routed"
    assert doc["metrics"]["replication.read_your_writes_violations"]["diff"]["mean"] < 0
    assert len(pd.read_csv(out / "replications.csv")) == 4


def test_compare_needs_a_b_side() -> None:
    line = one_error_line(simdb_process("compare", "quickstart", "--set", "services.api.tasks=3"))
    assert "give B as a second scenario or as --against --set" in line


def test_identical_variants_differ_by_nothing_and_pairing_beats_an_unpaired_interval() -> None:
    same = simdb.compare("quickstart", against={"services.api.tasks": 10}, replications=4, duration="40s")
    p99 = _row(same, "latency_ms.p99")
    assert p99["diff_lo"] <= 0.0 <= p99["diff_hi"]
    per_rep = same.replications
    a = per_rep[per_rep["variant"] == "A"]["latency_ms.p99"]
    b = per_rep[per_rep["variant"] == "B"]["latency_ms.p99"]
    unpaired_half = 3.182 * ((a.var(ddof=1) + b.var(ddof=1)) / 4) ** 0.5  # t(3), Welch-style
    assert unpaired_half > 0 and (p99["diff_hi"] - p99["diff_lo"]) / 2 < unpaired_half
