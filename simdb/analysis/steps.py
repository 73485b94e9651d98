"""Step functions and per-interval binning, shared by the analysis modules.

A step function is given by change times and sizes (a connection opened +1, closed -1); its level is the
running sum. Per interval k covers [k·interval, (k+1)·interval).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..record import CONN_CLOSED, CONN_OPENED


def rnd(x: Any, digits: int = 6) -> Any:
    """JSON-safe rounding: floats to ``digits`` decimals, NaN/inf to None, numpy scalars to Python."""
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(x, digits)


def step_levels(t: np.ndarray, delta: np.ndarray, initial: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A step function from change times and sizes (time-sorted): (distinct times, level after them).

    Changes at the same instant are applied together, so a stop and a start at one time do not
    count as a momentary peak.
    """
    if t.size == 0:
        return t, np.asarray([], dtype=np.float64)
    level = initial + np.cumsum(delta, dtype=np.float64)
    last_of_time = np.flatnonzero(np.r_[t[1:] != t[:-1], True])
    return t[last_of_time], level[last_of_time]


def peak_in(times: np.ndarray, levels: np.ndarray, start: float, end: float, initial: float = 0.0) -> float:
    """Highest level of a step function on [start, end]."""
    before = np.searchsorted(times, start, side="right") - 1
    at_start = levels[before] if before >= 0 else initial
    inside = levels[(times > start) & (times <= end)]
    return float(max(at_start, inside.max())) if inside.size else float(at_start)


def level_at(times: np.ndarray, levels: np.ndarray, at: np.ndarray, initial: float = 0.0) -> np.ndarray:
    idx = np.searchsorted(times, at, side="right") - 1
    out = np.where(idx >= 0, levels[np.clip(idx, 0, None)] if levels.size else initial, initial)
    return out.astype(np.float64)


def sorted_levels(t: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`step_levels` of changes in any order (logs merged from several sources)."""
    if t.size > 1 and np.any(t[1:] < t[:-1]):
        order = np.argsort(t, kind="stable")
        t, delta = t[order], delta[order]
    return step_levels(t, delta)


def connection_delta(kind: np.ndarray) -> np.ndarray:
    """Connection-log kinds as changes in open connections: opened +1, closed -1, attempts 0."""
    return np.where(kind == CONN_OPENED, 1, np.where(kind == CONN_CLOSED, -1, 0))


def mean_per_bin(t: np.ndarray, delta: np.ndarray, n: int, interval: float) -> np.ndarray:
    """Time average of a step function over each interval."""
    if t.size == 0:
        return np.zeros(n)
    t, lv = sorted_levels(t, delta)
    # area up to each change: the level before it times the time since the previous change
    area_at = np.cumsum(np.r_[0.0, lv[:-1]] * np.diff(np.r_[t[0], t]))
    edges = np.arange(n + 1) * interval
    idx = np.searchsorted(t, edges, side="right") - 1
    at = np.clip(idx, 0, None)
    # before the first change the level is 0, and so is the area
    area = np.where(idx >= 0, area_at[at] + lv[at] * (edges - t[at]), 0.0)
    return np.diff(area) / interval


def max_per_bin(t: np.ndarray, delta: np.ndarray, n: int, interval: float) -> np.ndarray:
    """Highest level of a step function within each interval (changes at one instant applied together)."""
    if t.size == 0:
        return np.zeros(n)
    t, lv = sorted_levels(t, delta)
    out = level_at(t, lv, np.arange(n) * interval)
    bins = (t / interval).astype(np.int64)
    inside = (bins >= 0) & (bins < n)
    np.maximum.at(out, bins[inside], lv[inside])
    return out


def count_per_bin(t: np.ndarray, n: int, interval: float) -> np.ndarray:
    """How many of the times ``t`` fall in each interval."""
    bins = (t / interval).astype(np.int64)
    bins = bins[(bins >= 0) & (bins < n)]
    return np.bincount(bins, minlength=n)[:n].astype(np.float64)


def mean_by_bin(t: np.ndarray, values: np.ndarray, n: int, interval: float) -> np.ndarray:
    """Mean of ``values`` by the interval their time ``t`` falls in; NaN where none does."""
    bins = (t / interval).astype(np.int64)
    keep = (bins >= 0) & (bins < n)
    count = np.bincount(bins[keep], minlength=n)[:n]
    total = np.bincount(bins[keep], weights=values[keep], minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count
