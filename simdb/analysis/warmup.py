"""Warm-up detection by MSER-5 (White 1997; Hoad, Robinson and Davies 2010 recommend it).

The output series is cut into batches of 5 observations; the truncation point d (in batches, at most
half the series) minimises the marginal standard error of the remaining batch means,
MSER(d) = Σ_{j≥d} (Z_j − Z̄_d)² / (m − d)². The cut is where the initial transient ends.

>>> series = [9.0, 7.0, 5.0, 3.0, 1.0] * 1 + [1.0] * 45      # a transient, then a flat series
>>> mser5_cut(series)
5
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BATCH = 5


def mser5_cut(series: Sequence[float] | np.ndarray) -> int:
    """How many leading observations of ``series`` to drop (a multiple of 5; NaNs are left out first)."""
    y = np.asarray(series, dtype=np.float64)
    y = y[np.isfinite(y)]
    m = y.size // BATCH
    if m < 2:
        return 0
    z = y[: m * BATCH].reshape(m, BATCH).mean(axis=1)
    # sums over the batches kept after dropping d, for every d at once
    s1 = np.cumsum(z[::-1])[::-1]
    s2 = np.cumsum((z * z)[::-1])[::-1]
    kept = np.arange(m, 0, -1, dtype=np.float64)
    mser = (s2 - s1 * s1 / kept) / (kept * kept)
    d = int(np.argmin(mser[: m // 2 + 1]))
    return d * BATCH
