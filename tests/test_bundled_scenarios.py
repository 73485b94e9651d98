"""Every bundled scenario validates and its `expect:` lines hold; the connection-budget pair in detail."""

from __future__ import annotations

import pytest

import simdb

NAMES = sorted(simdb.bundled())


@pytest.fixture(scope="module")
def results() -> dict[str, simdb.Result]:
    return {name: simdb.run(name) for name in NAMES}


def test_the_three_foundation_scenarios_are_bundled() -> None:
    assert {"quickstart", "connection-budget-overlap", "connection-budget-fixed"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_expectations_hold(results, name) -> None:
    result = results[name]
    assert result.summary["expect"], f"{name} has no expect: lines"
    failed = [e for e in result.summary["expect"] if not e["passed"]]
    assert not failed, failed


def test_overlap_demands_1600_against_600_and_is_rejected(results) -> None:
    s = results["connection-budget-overlap"].summary
    conn = s["connections"]
    assert conn["peak_demand"] == 40 * 20 * 2
    assert conn["max_connections"]["writer"] == 600
    assert conn["peak_db"] == 600, "the server never holds more than max_connections"
    assert conn["rejected"] > 0
    assert s["requests"]["errors"]["too_many_connections"] > 0
    budget = s["theory"]["connection_budget"]
    assert budget["peak_demand"] == 1600 and budget["fits"] is False


def test_fixed_configuration_fits_with_no_rejections(results) -> None:
    s = results["connection-budget-fixed"].summary
    conn = s["connections"]
    assert conn["peak_demand"] == s["theory"]["connection_budget"]["peak_demand"] == 500
    assert conn["peak_db"] <= 500
    assert conn["rejected"] == 0
    assert s["requests"]["failed"] == 0
    assert s["theory"]["connection_budget"]["fits"] is True


def test_deploy_keeps_the_same_load_and_fleet_size(results) -> None:
    for name in ("connection-budget-overlap", "connection-budget-fixed"):
        ts = results[name].timeseries
        assert ts["Tasks.api"].iloc[0] == 40 and ts["Tasks.api"].iloc[-1] == 40
        events = results[name].events
        assert (events["kind"] == "deploy_wave").sum() == (2 if "overlap" in name else 4)


def test_every_broken_case_scenario_has_a_fixed_one_that_names_it() -> None:
    cases = {name: simdb.load_scenario(path).case for name, path in simdb.bundled().items()}
    broken = {name: c for name, c in cases.items() if c is not None and c.role == "broken"}
    fixed = {name: c for name, c in cases.items() if c is not None and c.role == "fixed"}
    assert broken and fixed
    for name, c in fixed.items():
        assert c.fixes in broken, f"{name} fixes {c.fixes!r}, not a broken bundled scenario"
        assert broken[c.fixes].id == c.id, f"{name} and {c.fixes} belong to different cases"
    assert {c.fixes for c in fixed.values()} == set(broken), "a broken scenario without its fix"


def test_every_course_failure_case_has_a_broken_and_a_fixed_scenario() -> None:
    from simdb.cases import CASES

    cases = [simdb.load_scenario(path).case for path in simdb.bundled().values()]
    for case_id in CASES:
        roles = {c.role for c in cases if c is not None and c.id == case_id}
        assert roles == {"broken", "fixed"}, f"{case_id}: {sorted(roles)}"
