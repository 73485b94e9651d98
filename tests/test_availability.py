"""Vectorised analysis against slow references: downtime windows, per-interval percentiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simdb.analysis import metrics
from simdb.analysis.metrics import binned_percentiles, downtime_windows


def _reference(
    t_end: list[float], ok: list[bool], start: float, end: float, min_window: float = 0.0
) -> list[tuple[float, float]]:
    windows = []
    open_at = None
    for t, good in sorted(zip(t_end, ok, strict=True), key=lambda x: x[0]):
        if not good and open_at is None:
            open_at = t
        elif good and open_at is not None:
            windows.append((open_at, t))
            open_at = None
    if open_at is not None:
        windows.append((open_at, end))
    clipped = [(min(max(a, start), end), min(max(b, start), end)) for a, b in windows]
    return [(a, b) for a, b in clipped if b > a and b - a >= min_window]


@settings(derandomize=True, max_examples=300)
@given(
    st.lists(st.tuples(st.integers(0, 1000), st.booleans()), max_size=60),
    st.integers(0, 300),
    st.integers(301, 1200),
    st.sampled_from([0.0, 1.0, 50.0]),
)
def test_matches_slow_reference(rows, start, end, min_window) -> None:
    # distinct completion times, as a continuous-time simulation produces
    t_end = [t + i * 1e-6 for i, (t, _) in enumerate(rows)]
    ok = [good for _, good in rows]
    got = downtime_windows(
        np.asarray(t_end, dtype=float), np.asarray(ok, dtype=bool), float(start), float(end)
    )
    want = _reference(t_end, ok, float(start), float(end))
    assert len(got) == len(want)
    np.testing.assert_allclose(np.asarray(got).reshape(-1, 2), np.asarray(want).reshape(-1, 2))


def test_one_success_anywhere_ends_a_window() -> None:
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    ok = np.array([True, False, False, True, False])
    assert downtime_windows(t, ok, 0.0, 10.0) == [(2.0, 4.0), (5.0, 10.0)]


def test_short_windows_are_partial_outages_not_downtime() -> None:
    t = np.array([1.0, 1.2, 1.5, 3.0, 6.0])
    ok = np.array([True, False, True, False, True])
    assert downtime_windows(t, ok, 0.0, 10.0, min_window_s=1.0) == [(3.0, 6.0)]


@settings(derandomize=True, max_examples=100)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.floats(0, 1e4, allow_nan=False)), max_size=200),
    st.booleans(),
    st.sampled_from([0, 200_000]),
)
def test_binned_percentiles_match_pandas(rows, bins_in_order, per_bin_limit) -> None:
    # both paths: sorting bin by bin (bins in order or not) and the single argsort for very many bins
    if bins_in_order:
        rows = sorted(rows, key=lambda r: r[0])
    bins = np.asarray([b for b, _ in rows], dtype=np.int64)
    values = np.asarray([v for _, v in rows], dtype=np.float64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metrics, "PER_BIN_SORT_LIMIT", per_bin_limit)
        p50, p99 = binned_percentiles(bins, values, 10, (0.5, 0.99))
    want = pd.Series(values).groupby(bins).quantile([0.5, 0.99]).unstack() if rows else None
    for b in range(10):
        if want is None or b not in want.index:
            assert np.isnan(p50[b]) and np.isnan(p99[b])
        else:
            assert p50[b] == pytest.approx(want.loc[b, 0.5])
            assert p99[b] == pytest.approx(want.loc[b, 0.99])
