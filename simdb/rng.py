"""One random stream per component, derived from the run seed and the component's dotted path.

The stream of ``services.api.workload.read_order.arrivals`` depends only on the seed and that path, never
on which other components exist or in what order they were built: adding a service leaves every other
service's random numbers unchanged (common random numbers for paired comparisons).

>>> a = stream(7, "services.api.arrivals").random()
>>> b = stream(7, "services.api.arrivals").random()
>>> a == b
True
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator

import numpy as np

BLOCK = 4096


def _path_key(path: str) -> tuple[int, ...]:
    digest = hashlib.blake2b(path.encode(), digest_size=16).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def stream(seed: int, path: str) -> np.random.Generator:
    """The generator for component ``path`` in a run seeded with ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=_path_key(path))))


def _blocks(draw: Callable[[], np.ndarray]) -> Iterator:
    # chain over blocks keeps the per-draw cost in C: one next() per draw, no generator frame
    return itertools.chain.from_iterable(map(lambda _: draw().tolist(), itertools.repeat(None)))


def exponentials(rng: np.random.Generator) -> Iterator[float]:
    """Standard exponential draws, generated in blocks so the hot path pays one ``next()`` per draw."""
    return _blocks(lambda: rng.standard_exponential(BLOCK))


def uniforms(rng: np.random.Generator) -> Iterator[float]:
    """Uniform draws on [0, 1), in blocks."""
    return _blocks(lambda: rng.random(BLOCK))


def integers(rng: np.random.Generator, high: int) -> Iterator[int]:
    """Uniform integers on [0, high), in blocks."""
    return _blocks(lambda: rng.integers(0, high, BLOCK))


def bounded_zipf(rng: np.random.Generator, count: int, s: float) -> Iterator[int]:
    """Keys 0..count-1 with P(k) proportional to 1/(k+1)^s, by inverse CDF over a precomputed table."""
    weights = np.arange(1, count + 1, dtype=np.float64) ** -s
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return _blocks(lambda: np.minimum(np.searchsorted(cdf, rng.random(BLOCK), side="right"), count - 1))
