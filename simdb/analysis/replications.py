"""Independent replications of a run: every number of summary.json as a mean with a 95% t-interval.

>>> agg = aggregate([{"p99": 10.0, "name": "x"}, {"p99": 12.0, "name": "x"}, {"p99": 11.0, "name": "x"}])
>>> agg["p99"]["mean"], agg["p99"]["n"], agg["name"]
(11.0, 3, 'x')
>>> [round(v, 3) for v in agg["p99"]["ci95"]]
[8.516, 13.484]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Student t 97.5% quantiles, 1-30 degrees of freedom (any statistics table)
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959963984540054


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom.

    Beyond the table, the Cornish-Fisher expansion in 1/df (error < 1e-4 from df 30 on).

    >>> round(t975(60), 3), round(t975(120), 3)
    (2.0, 1.98)
    """
    if df < 1:
        raise ValueError("a t-interval needs at least 2 replications")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def interval(values: list[float]) -> dict[str, Any]:
    """{mean, ci95: [lo, hi], n} of independent replications' values (t-interval on the mean)."""
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "ci95": None, "n": n}
    half = t975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": n}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not (isinstance(value, float) and not math.isfinite(value))


def aggregate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary tree: numbers become intervals (booleans: the share of replications where true);
    text equal in every replication stays as it is; anything else becomes the list of per-replication values.
    """
    first = summaries[0]
    if isinstance(first, dict) and all(isinstance(s, dict) and s.keys() == first.keys() for s in summaries):
        return {k: aggregate([s[k] for s in summaries]) for k in first}
    if all(_is_number(s) for s in summaries):
        return interval([float(s) for s in summaries])
    if all(s == first for s in summaries) and not isinstance(first, list | dict):
        return first
    return {"replications": summaries}


def means(tree: Any) -> Any:
    """The aggregated tree with each interval replaced by its mean (for `expect:` checks)."""
    if isinstance(tree, dict):
        if set(tree) == {"mean", "ci95", "n"}:
            return tree["mean"]
        return {k: means(v) for k, v in tree.items()}
    return tree


def flatten(tree: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of one summary as dotted keys (a row of replications.csv)."""
    out: dict[str, float] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif _is_number(tree):
        out[prefix[:-1]] = float(tree)
    return out
