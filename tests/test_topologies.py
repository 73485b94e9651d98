"""Topology shapes: impossible clusters are exit 2 with one line naming file, line and field; the
possible ones build the instances, endpoints and commit path their AWS counterparts have."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import one_error_line, simdb_process

import simdb

SERVICE = """
services:
  - name: api
    workload:
      - {query: q, rate: 10/s, route: ROUTE}
"""


def _file(tmp_path: Path, cluster: str, route: str = "writer", events: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: topo\nduration: 10s\ncluster:\n" + cluster + SERVICE.replace("ROUTE", route) + events
    )
    return path


READER = "    - {class: db.r6g.large, az: b}\n"

CASES = {
    "cluster-with-3-readers": (
        "  engine: postgres\n  topology: multi-az-cluster\n  writer: {az: a}\n  readers:\n"
        "    - {az: b}\n    - {az: c}\n    - {az: d}\n",
        "writer",
        "",
        ":7: cluster.readers: multi-az-cluster has exactly 2 readers (its readable standbys), not 3",
    ),
    "cluster-in-2-azs": (
        "  engine: mysql\n  topology: multi-az-cluster\n  writer: {az: a}\n  readers:\n    - {az: b}\n    - {az: b}\n",
        "writer",
        "",
        "cluster.readers: multi-az-cluster puts the writer and its 2 standbys in 3 different AZs, got a, b, b",
    ),
    "16-aurora-readers": (
        "  readers:\n" + READER * 16,
        "writer",
        "",
        ":4: cluster.readers: List should have at most 15 items",
    ),
    "aurora-reader-apply-rate": (
        "  readers:\n    - {az: b, apply_rate: 500/s}\n",
        "writer",
        "",
        ":5: cluster.readers[0].apply_rate: Aurora readers share the cluster volume",
    ),
    "standby-in-writer-az": (
        "  engine: postgres\n  topology: multi-az-instance\n  writer: {az: b}\n  standby_az: b\n",
        "writer",
        "",
        ":7: cluster.standby_az: the standby must be in another AZ than the writer (b)",
    ),
    "rds-reader-route-without-replicas": (
        "  engine: mysql\n  topology: single-az\n",
        "reader",
        "",
        "route: single-az has no readers, so no reader route",
    ),
    "node-failure-on-ebs": (
        "  engine: postgres\n  topology: multi-az-instance\n",
        "writer",
        "events:\n  - {at: 1s, action: storage_node_failure}\n",
        "events[0].action: storage_node_failure applies to Aurora's 6-copy volume",
    ),
    "outage-of-an-unused-az": (
        "  readers:\n" + READER,
        "writer",
        "events:\n  - {at: 1s, action: az_outage, az: f, for: 2s}\n",
        "events[0].az: AZ 'f' holds nothing of this cluster; its AZs: a, b, c",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_impossible_shapes_are_one_line_exit_2(tmp_path: Path, case: str) -> None:
    cluster, route, events, message = CASES[case]
    path = _file(tmp_path, cluster, route, events)
    line = one_error_line(simdb_process("validate", path))
    assert line.startswith(f"simdb: {path}:"), line
    assert message in line, line


def test_follows_must_name_another_query_of_the_service(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        "name: f\nduration: 10s\nservices:\n  - name: api\n    workload:\n"
        "      - {query: place_order, kind: write, rate: 10/s}\n"
        "      - {query: confirm, follows: place_ordr}\n"
    )
    line = one_error_line(simdb_process("validate", path))
    assert ":7: services[0].workload[1].follows: follows 'place_ordr'" in line
    assert "did you mean 'place_order'?" in line


@pytest.mark.parametrize(
    ("topology", "engine", "readers", "endpoints", "commit"),
    [
        ("single-az", "postgres", [], ["writer"], "ebs"),
        ("single-az", "mysql", [{"az": "b"}], ["writer", "reader"], "ebs"),
        ("multi-az-instance", "postgres", [{"az": "c"}], ["writer", "reader"], "ebs"),
        ("multi-az-cluster", "postgres", [{"az": "b"}, {"az": "c"}], ["writer", "reader"], "ebs"),
        ("aurora", "aurora-mysql", [], ["writer", "reader"], "aurora"),
    ],
)
def test_each_topology_builds(topology, engine, readers, endpoints, commit) -> None:
    raw = {
        "name": "t",
        "duration": "5s",
        "cluster": {"engine": engine, "topology": topology, "writer": {"az": "a"}, "readers": readers},
        "services": [{"name": "api", "workload": [{"query": "w", "kind": "write", "rate": "50/s"}]}],
    }
    result = simdb.run(raw, plots=False)
    assert result.summary["storage"]["kind"] == commit
    assert result.summary["storage"]["commit_ms"]["mean"] > 0
    kinds = {"aurora": "aurora", "multi-az-cluster": "semisync"}
    assert result.summary["replication"]["kind"] == (kinds.get(topology, "async") if readers else "none")
    from simdb.engine import Sim

    assert list(Sim(simdb.api.prepare(raw)).endpoints) == endpoints
