"""Workload generators and routing against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import single_instance

import simdb
from simdb.engine import simulate
from simdb.record import CONN_OPENED
from simdb.scenario import from_raw


def test_closed_loop_users_follow_the_interactive_response_time_law() -> None:
    """N users with think time Z and response time R complete X = N / (Z + R) requests per second."""
    raw = single_instance(vcpu=2, rate=1, duration_s=400, warmup_s=20, pool=50)
    raw["services"][0]["workload"] = [{"query": "q", "users": 40, "think": "50ms", "cpu": "2ms"}]
    run = simulate(from_raw(raw))
    c = run.recorder.requests()
    window = c["t_arrive"] >= 20
    measured = 380.0
    throughput = window.sum() / measured
    response = (c["t_end"] - c["t_arrive"])[window].mean()
    assert throughput == pytest.approx(40 / (0.050 + response), rel=0.02)
    # closed loop: never more requests in flight than users
    assert run.samples["DBLoad.writer"].max() <= 40


def test_schedule_bursts_and_write_spikes_shape_the_rate() -> None:
    raw = single_instance(vcpu=16, rate=1, duration_s=300, warmup_s=0, pool=100, seed=8)
    raw["services"][0]["workload"] = [
        {
            "query": "r",
            "schedule": [{"at": "0s", "rate": "100/s"}, {"at": "100s", "rate": "400/s"}],
            "bursts": [{"at": "200s", "rate": "1000/s", "for": "20s"}],
            "cpu": "0.1ms",
        },
        {"query": "w", "kind": "write", "rate": "50/s", "cpu": "0.1ms"},
    ]
    raw["events"] = [{"at": "250s", "action": "write_spike", "service": "api", "factor": 4, "for": "30s"}]
    result = simdb.run(raw)
    req = result.requests

    def count(query: str, start: float, end: float) -> int:
        t = req.loc[req["query"] == query, "t_arrive"]
        return int(((t >= start) & (t < end)).sum())

    # Poisson counts: mean = rate × length; 4 standard deviations of slack
    for query, start, end, rate in [
        ("r", 0, 100, 100),
        ("r", 100, 200, 400),
        ("r", 200, 220, 1400),
        ("r", 220, 300, 400),
        ("w", 0, 250, 50),
        ("w", 250, 280, 200),
        ("w", 280, 300, 50),
    ]:
        mean = rate * (end - start)
        assert abs(count(query, start, end) - mean) < 4 * np.sqrt(mean), (query, start, end)
    kinds = result.events["kind"].tolist()
    assert kinds == ["write_spike", "write_spike_end"]


def test_reader_endpoint_spreads_connections_over_readers() -> None:
    raw = {
        "name": "readers",
        "duration": "20s",
        "cluster": {"writer": {"class": "db.r6g.large"}, "readers": [{}, {}, {}]},
        "services": [
            {
                "name": "api",
                "tasks": 30,
                "pool": {"max_size": 10},
                "connect_via": "reader",
                "workload": [{"query": "q", "rate": "300/s"}],
            }
        ],
    }
    run = simulate(from_raw(raw))
    log = run.recorder.connections()
    per_instance = np.bincount(log["instance"][log["kind"] == CONN_OPENED], minlength=4)
    assert per_instance[0] == 0, "reads on the reader endpoint never reach the writer"
    # 300 connections over 3 readers at random: each within 4 sd of 100
    assert all(abs(n - 100) < 4 * np.sqrt(300 * (1 / 3) * (2 / 3)) for n in per_instance[1:])


def test_custom_endpoint_reaches_only_its_members() -> None:
    raw = {
        "name": "custom",
        "duration": "10s",
        "cluster": {
            "writer": {"class": "db.r6g.large"},
            "readers": [{"class": "db.r6g.large"}, {"class": "db.r6g.2xlarge", "endpoint": "reporting"}],
        },
        "services": [
            {
                "name": "bi",
                "tasks": 2,
                "workload": [{"query": "report", "route": "custom:reporting", "rate": "20/s", "cpu": "20ms"}],
            }
        ],
    }
    result = simdb.run(raw)
    assert set(result.requests["instance"].astype(str)) == {"reader-2"}
    assert result.summary["replication"]["reads_on_replicas"] == result.summary["requests"]["ok"]


def test_scale_service_changes_the_fleet_and_its_connections() -> None:
    raw = single_instance(vcpu=4, rate=200, duration_s=60, warmup_s=0, pool=5)
    raw["services"][0]["tasks"] = 4
    raw["events"] = [
        {"at": "20s", "action": "scale_service", "service": "api", "tasks": 10},
        {"at": "40s", "action": "scale_service", "service": "api", "tasks": 0},
    ]
    result = simdb.run(raw)
    ts = result.timeseries.set_index("time_s")
    assert ts.loc[10, "Tasks.api"] == 4 and ts.loc[30, "Tasks.api"] == 10 and ts.loc[50, "Tasks.api"] == 0
    assert ts.loc[15, "DatabaseConnections.writer"] == pytest.approx(20)
    assert ts.loc[30, "DatabaseConnections.writer"] == pytest.approx(50)
    assert ts.loc[50, "DatabaseConnections.writer"] == 0
    errors = result.summary["requests"]["errors"]
    assert errors["service_unavailable"] == pytest.approx(200 * 20, rel=0.1)
