"""Cross-field rules and override conveniences of the scenario loader."""

from __future__ import annotations

import pytest

import simdb
from simdb.errors import ScenarioError
from simdb.scenario import from_raw


def _base(**cluster) -> dict:
    return {
        "name": "rules",
        "duration": "60s",
        "cluster": {"writer": {"class": "db.r6g.large"}, **cluster},
        "services": [{"name": "api", "workload": [{"query": "q", "rate": "10/s"}]}],
        "events": [{"at": "50s", "action": "scale_service", "service": "api", "tasks": 2}],
    }


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"engine": "postgres", "topology": "aurora"}, "topology aurora runs on engine aurora-postgresql"),
        (
            {"engine": "aurora-mysql", "topology": "single-az"},
            "topology single-az runs on engine postgres, mysql",
        ),
        ({"writer": {"class": "db.m6g.large"}}, "not offered for Aurora"),
    ],
)
def test_impossible_clusters_are_rejected(cluster, message) -> None:
    with pytest.raises(ScenarioError, match=message):
        from_raw(_base(**cluster))


def test_duration_must_be_whole_intervals() -> None:
    raw = _base()
    raw["timeseries_interval"] = "7s"
    with pytest.raises(ScenarioError, match="whole number of intervals"):
        from_raw(raw)


def test_closed_loop_needs_a_positive_think_time() -> None:
    raw = _base()
    raw["services"][0]["workload"] = [{"query": "q", "users": 3, "think": "0s"}]
    with pytest.raises(ScenarioError, match="think"):
        from_raw(raw)


def test_a_shorter_duration_override_leaves_later_events_out() -> None:
    assert len(from_raw(_base(), duration="40s").events) == 0
    assert len(from_raw(_base(), duration="55s").events) == 1
    with pytest.raises(ScenarioError, match="not before the end"):
        raw = _base()
        raw["duration"] = "40s"
        from_raw(raw)  # in the file itself it is a mistake


def test_set_reaches_readers_by_their_default_names() -> None:
    raw = _base(readers=[{}, {"class": "db.r6g.xlarge"}])
    s = from_raw(raw, overrides=["cluster.readers.reader-2.class=db.r6g.2xlarge"])
    assert [r.class_ for r in s.cluster.readers] == ["db.r6g.large", "db.r6g.2xlarge"]


def test_min_idle_above_max_size_means_max_size_as_in_hikaricp() -> None:
    s = simdb.load_scenario("quickstart", overrides={"services.api.pool.max_size": 5})
    assert s.services[0].pool.min_idle == 5


def test_names_cannot_contain_dots() -> None:
    raw = _base()
    raw["services"][0]["name"] = "api.v2"
    with pytest.raises(ScenarioError, match=r"services\[0\]\.name"):
        from_raw(raw)


def test_a_mistyped_expect_path_fails_before_the_run_with_its_line(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nduration: 10s\ncluster: {writer: {class: db.r6g.large}}\n"
        "services:\n  - name: api\n    workload:\n      - {query: q, rate: 10/s}\n"
        "expect:\n  - 'requests.ok > 0'\n  - 'request.failed == 0'\n  - 'by_query.q > 0'\n"
    )
    s = simdb.load_scenario(str(path))
    with pytest.raises(ScenarioError) as err:
        simdb.run(s)
    assert str(err.value).startswith(f"{path}:10: expect[1]: summary.json has no 'request.failed'")
    assert "did you mean 'requests.failed'?" in str(err.value)
    fixed = simdb.load_scenario(str(path), overrides=["expect.1='requests.failed == 0'"])
    with pytest.raises(ScenarioError, match=r"expect\[2\]: 'by_query.q' in summary.json is not a number"):
        simdb.api.check_expectations(fixed)
