"""Replications on 2 worker processes against 1 (all in the calling process): the parallel speed-up.

Run from the repository root: ``python benchmarks/bench_replications.py [--replications 8]``. On a 2-core
machine the target is at least 1.8x. Each setting runs twice, interleaved; the best wall time counts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simdb.api import run_replications


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=8)
    parser.add_argument("--duration", default="60s", help="simulated time of each quickstart replication")
    args = parser.parse_args()
    best: dict[int, float] = {}
    for _ in range(2):
        for workers in (1, 2):
            started = time.perf_counter()
            run_replications(
                "quickstart", args.replications, duration=args.duration, plots=False, workers=workers
            )
            wall = time.perf_counter() - started
            best[workers] = min(best.get(workers, wall), wall)
    print(f"quickstart x {args.replications} replications of {args.duration}")
    for workers, wall in best.items():
        print(f"  workers {workers}: {wall:6.2f} s")
    print(f"  speed-up with 2 workers: {best[1] / best[2]:.2f}x (target >= 1.8x on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
