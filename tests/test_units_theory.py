"""Unit parsing, the theory helpers and the public modules' doctests."""

from __future__ import annotations

import doctest
import math

import pytest

import simdb.rng
import simdb.theory
import simdb.units
from simdb.catalog import INSTANCE_CLASSES, default_max_connections
from simdb.theory import erlang_c, mmc, peak_of_steps
from simdb.units import format_duration, parse_duration, parse_rate, parse_size


@pytest.mark.parametrize("module", [simdb.units, simdb.rng, simdb.theory])
def test_doctests(module) -> None:
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5.0),
        ("10min", 600.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        (3, 3.0),
        ("1.5 s", 1.5),
        ("20us", 2e-5),
    ],
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["-5s", "5 parsecs", "fast", "", True, None, [], "inf s", float("nan")])
def test_bad_durations(bad) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_rates_and_sizes() -> None:
    assert parse_rate("2000/s") == 2000
    assert parse_rate("120/min") == 2
    assert parse_rate("36/h") == pytest.approx(0.01)
    assert parse_size("500GiB") == 500 * 2**30
    assert parse_size("1TB") == 10**12
    with pytest.raises(ValueError):
        parse_rate("5/fortnight")


def test_format_duration_round_trips() -> None:
    for seconds in (0.0, 0.25, 5.0, 90.0, 600.0, 3600.0, 1.2345):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_erlang_c_known_values() -> None:
    # M/M/1: P(wait) = rho. M/M/2 at a = 1: C = 1/3 (textbook value)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # FACTS theory.mmc_variance cites C(20, 16) = 0.256 for M/M/20 at rho 0.8
    assert erlang_c(20, 16.0) == pytest.approx(0.256, abs=0.001)
    assert erlang_c(4, 4.0) == 1.0
    assert math.isinf(mmc(1000, 0.001, 1)["wq_s"])


def test_peak_of_steps_applies_simultaneous_changes_together() -> None:
    # a wave starting exactly when the previous one's old tasks stop is not a peak
    steps = [(0.0, 40), (60.0, 10), (90.0, -10), (90.0, 10), (120.0, -10)]
    assert peak_of_steps(steps) == 50


def test_max_connections_defaults_follow_published_tables() -> None:
    def mc(engine, cls):
        return default_max_connections(engine, cls, INSTANCE_CLASSES[cls].memory_gib)

    assert mc("aurora-postgresql", "db.r6g.large") == 1722
    assert mc("aurora-postgresql", "db.r6g.xlarge") == 3479
    assert mc("aurora-postgresql", "db.r6g.4xlarge") == 5000
    assert mc("aurora-postgresql", "db.t4g.medium") == 405
    assert mc("aurora-mysql", "db.r6g.large") == 1000
    assert mc("aurora-mysql", "db.t4g.large") == 135
    # RDS MySQL on 16 GiB comes out around 1,300 (AWS's own example)
    assert 1250 <= mc("mysql", "db.r6g.large") <= 1350
    # the PostgreSQL formula caps at 5000
    assert mc("postgres", "db.r6g.16xlarge") == 5000
