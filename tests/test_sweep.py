"""Sweeps: the grid × replications table, identical on local processes and on a real Dask cluster."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_cli import one_error_line, simdb_process

import simdb
from simdb import sweeps
from simdb.errors import ScenarioError

GRID = ["services.api.pool.max_size=5,20", "services.api.tasks=20,40"]


def _small() -> dict:
    return {
        "name": "budget",
        "seed": 11,
        "duration": "20s",
        "cluster": {"parameters": {"max_connections": 600}},
        "services": [
            {
                "name": "api",
                "tasks": 40,
                "pool": {"max_size": 20},
                "workload": [{"query": "q", "rate": 400, "cpu": "1ms"}],
            }
        ],
    }


@pytest.fixture(scope="module")
def local() -> sweeps.Sweep:
    return sweeps.sweep(_small(), GRID, replications=2, workers=2)


def test_the_grid_is_the_cartesian_product_with_shared_seeds(local) -> None:
    table = local.table
    assert len(table) == 4 * 2
    assert list(table["seed"]) == [11, 12] * 4
    combos = set(zip(table["services.api.pool.max_size"], table["services.api.tasks"], strict=True))
    assert combos == {(5, 20), (5, 40), (20, 20), (20, 40)}
    # the connection budget: tasks x pool, capped by max_connections 600
    peak = table.groupby(["services.api.pool.max_size", "services.api.tasks"])["connections.peak_db"].max()
    assert peak[(5, 20)] == 100 and peak[(20, 20)] == 400 and peak[(20, 40)] == 600
    rejected = table.groupby(["services.api.pool.max_size", "services.api.tasks"])[
        "connections.rejected"
    ].sum()
    assert rejected[(20, 40)] > 0 and rejected[(5, 40)] == 0


def test_a_point_equals_the_single_run_with_its_values(local) -> None:
    single = simdb.run(
        _small(), seed=12, overrides={"services.api.pool.max_size": 5, "services.api.tasks": 40}, plots=False
    ).summary
    row = local.table[
        (local.table["services.api.pool.max_size"] == 5)
        & (local.table["services.api.tasks"] == 40)
        & (local.table["seed"] == 12)
    ].iloc[0]
    assert row["latency_ms.p99"] == single["latency_ms"]["p99"]
    agg = local.summary
    mean = agg[(agg["point"] == row["point"]) & (agg["metric"] == "latency_ms.p99")]["mean"].iloc[0]
    pair = local.table[local.table["point"] == row["point"]]["latency_ms.p99"]
    assert mean == pytest.approx(pair.mean())


def test_dask_cluster_gives_the_same_table(local) -> None:
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        on_dask = sweeps.sweep(_small(), GRID, replications=2, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(on_dask.table, local.table)
    pd.testing.assert_frame_equal(on_dask.summary, local.summary)


def test_cli_writes_the_tables_and_one_plot_per_parameter(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(_small()))
    out = tmp_path / "sweep"
    proc = simdb_process("sweep", path, "--grid", GRID[0], "--grid", GRID[1], "--out", out, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "4 points x 1 replications (seeds 11-11) on local processes" in proc.stdout
    assert len(pd.read_parquet(out / "sweep.parquet")) == 4
    assert {"point", "metric", "mean", "ci_lo", "ci_hi", "n"} <= set(
        pd.read_csv(out / "sweep_summary.csv").columns
    )
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "sweep_services_api_pool_max_size.png",
        "sweep_services_api_tasks.png",
    ]


def test_bad_grids_are_scenario_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="expected path=v1,v2"):
        sweeps.parse_grid(["services.api.tasks"])
    line = one_error_line(
        simdb_process(
            "sweep", "quickstart", "--grid", "services.api.pool.max_size=5,0", "--out", tmp_path / "x"
        )
    )
    assert "services[0].pool.max_size" in line


def test_a_killed_dask_worker_s_point_is_retried_not_lost(local) -> None:
    distributed = pytest.importorskip("dask.distributed")
    import os
    import signal
    import threading
    import time

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster) as observer,
    ):
        done: dict[str, sweeps.Sweep] = {}
        worker = threading.Thread(
            target=lambda: done.setdefault(
                "sweep", sweeps.sweep(_small(), GRID, replications=2, scheduler=cluster.scheduler_address)
            )
        )
        worker.start()
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and worker.is_alive():
            busy = {addr: keys for addr, keys in observer.processing().items() if keys}
            if busy:
                addr = sorted(busy)[0]
                pid = observer.run(os.getpid, workers=[addr])[addr]
                os.kill(pid, signal.SIGKILL)
                killed = (addr, pid, list(busy[addr]))
            else:
                time.sleep(0.05)
        worker.join(timeout=300)
        assert killed is not None, "no point was ever processing on a worker"
        # the point in the killed worker's hands was sent to a worker again
        story = cluster.scheduler.story(killed[2][0])
        assert sum(1 for entry in story if entry[2] == "processing") >= 2, story
    pd.testing.assert_frame_equal(done["sweep"].table, local.table)
