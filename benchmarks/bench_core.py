"""Core speed benchmark: simdb's event loop and analysis against an idiomatic SimPy M/M/c.

Run from the repository root::

    python benchmarks/bench_core.py            # full run (about a minute on 2 cores)
    python benchmarks/bench_core.py --quick    # smoke run (a few seconds)
    python benchmarks/bench_core.py --json bench.json
    python benchmarks/bench_core.py --profile  # cProfile of simdb's M/M/20 hot path instead

Cases, all in this one process:

1. reference: ``mmc_simpy.py``, M/M/c written the way the SimPy docs write it (c=20, rho=0.8, 1 ms).
2. simdb M/M/20: the same queue as a simdb scenario (one writer overridden to 20 vCPUs, one task whose
   pool never binds, one Poisson query with exponential 1 ms CPU), the same number of requests.
   Reported per second of simulation wall time (``RawRun.wall_s``) and of simulation + analysis
   (``Analysis(raw).summary()`` + ``.timeseries()``).
3. simdb quickstart: the bundled scenario (pools, writer + reader, a scaling event, recording).
4. analysis alone on a synthetic run of ~10M requests (the M/M/20 run tiled in time).

Repeats are interleaved (reference, M/M/20, quickstart, reference, ...) so background load hits every
case alike; throughput is the best repeat (the shortest wall time; noise only adds time), the median
is shown beside it. Ratios compare best against best.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import json
import math
import os
import platform
import pstats
import statistics
import sys
import time
from array import array
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# measure the checkout this script lives in, whatever simdb is installed
for entry in (str(HERE), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import mmc_simpy  # noqa: E402
import numpy as np  # noqa: E402
import simpy  # noqa: E402

import simdb  # noqa: E402
from simdb import theory  # noqa: E402
from simdb.analysis.metrics import Analysis  # noqa: E402
from simdb.api import prepare  # noqa: E402
from simdb.engine import RawRun, Sim, simulate  # noqa: E402
from simdb.model.replication import ReplicationLog  # noqa: E402
from simdb.record import OK, REQUEST_COLUMNS, Recorder  # noqa: E402

C = 20
RHO = 0.8
MEAN_SERVICE_S = 0.001
RATE = RHO * C / MEAN_SERVICE_S  # 16000/s
WARMUP_S = 1.0

FULL = {"customers": 300_000, "repeats": 3, "synthetic": 10_000_000, "quickstart": None}
QUICK = {"customers": 30_000, "repeats": 1, "synthetic": 1_000_000, "quickstart": 40.0}


# ------------------------------------------------------------------------------------------- scenarios


def mm20_scenario(customers: int, seed: int = 1) -> dict[str, Any]:
    """M/M/20 at rho=0.8 as a simdb scenario: nothing but the writer's vCPU queue can make a request wait.

    Connection setup costs are zero so the 400-connection pool is full at t=0 (no fill traffic on the
    writer's CPUs), and max_lifetime 0 so no connection is ever retired.
    """
    return {
        "name": "bench-mm20",
        "seed": seed,
        "duration": customers / RATE,  # a whole number of seconds: see aligned_requests()
        "warmup": WARMUP_S,
        "timeseries_interval": 1.0,
        "cluster": {
            "engine": "aurora-postgresql",
            "topology": "aurora",
            "writer": {"class": "db.r6g.large", "vcpu": C},
            "parameters": {"max_connections": 5000},
            "connection": {"setup": 0, "setup_cpu": 0},
        },
        "services": [
            {
                "name": "app",
                "kind": "ecs",
                "tasks": 1,
                "pool": {"max_size": 400, "max_lifetime": 0},
                "workload": [
                    {
                        "query": "q",
                        "rate": RATE,
                        "cpu": MEAN_SERVICE_S,
                        "cpu_distribution": "exponential",
                    }
                ],
            }
        ],
    }


def quickstart_scenario(duration: float | None) -> Any:
    if duration is None:
        return prepare("quickstart")
    # a short run: move the scaling event inside it
    return prepare("quickstart", duration=duration, overrides={"events.0.at": duration / 2})


# ------------------------------------------------------------------------------------------- measuring


def timed_reference(customers: int) -> dict[str, Any]:
    gc.collect()
    r = mmc_simpy.run(customers, c=C, rho=RHO, mean_service=MEAN_SERVICE_S, seed=1)
    return {"requests": r["customers"], "wall_s": r["wall_s"], "mean_wait_s": r["mean_wait_s"]}


def timed_simdb(scenario: Any, analyse: bool) -> tuple[dict[str, Any], RawRun]:
    s = prepare(scenario) if isinstance(scenario, dict) else scenario
    gc.collect()
    raw = simulate(s)
    out: dict[str, Any] = {
        "requests": len(raw.recorder),
        "wall_s": raw.wall_s,
        "events_per_request": raw.events_processed / max(1, len(raw.recorder)),
    }
    if analyse:
        started = time.perf_counter()
        a = Analysis(raw)
        summary = a.summary()
        a.timeseries()
        out["analysis_s"] = time.perf_counter() - started
        out["queueing"] = summary["theory"].get("queueing")
    return out, raw


def cpu_wait_ci(raw: RawRun, batches: int = 20) -> tuple[float, float]:
    """Mean CPU-queue wait on the writer after warmup (s) and a 95% half-width by batch means."""
    c = raw.recorder.requests()
    keep = (c["t_arrive"] >= raw.scenario.warmup) & (c["code"] == OK) & (c["instance"] == 0)
    waits = (c["t_start"] - c["t_acquired"])[keep]
    order = np.argsort(c["t_arrive"][keep], kind="stable")
    means = np.array([b.mean() for b in np.array_split(waits[order], batches) if b.size])
    half = 2.093 * means.std(ddof=1) / math.sqrt(means.size) if means.size > 1 else math.nan  # t(19)
    return float(waits.mean()), float(half)


def tiled_run(raw: RawRun, target: int) -> RawRun:
    """A RawRun of about ``target`` requests: ``raw`` repeated back to back in time."""
    n = len(raw.recorder)
    k = max(1, math.ceil(target / n))
    span = raw.scenario.duration
    offsets = np.arange(k, dtype=np.float64) * span
    cols = raw.recorder.requests()
    rec = Recorder()
    for name, typecode in REQUEST_COLUMNS.items():
        col = cols[name]
        big = (col[None, :] + offsets[:, None]).ravel() if name.startswith("t_") else np.tile(col, k)
        setattr(rec, name, array(typecode, big.astype(col.dtype, copy=False).tobytes()))
    src = raw.recorder
    for name in ("conn_t", "conn_instance", "conn_service", "conn_kind"):
        setattr(rec, name, getattr(src, name))
    for name in ("demand_t", "demand_endpoint", "demand_delta"):
        setattr(rec, name, getattr(src, name))
    log, st = raw.replication, raw.storage

    def tile_times(t: np.ndarray) -> np.ndarray:
        return (t[None, ...] + offsets.reshape((k, *(1,) * t.ndim))).reshape((k * t.shape[0], *t.shape[1:]))

    replication = ReplicationLog(
        write_t=tile_times(log.write_t),
        write_key=np.tile(log.write_key, k),
        write_session=np.tile(log.write_session, k),
        write_query=np.tile(log.write_query, k),
        replicas=log.replicas,
        apply_t=tile_times(log.apply_t),
    )
    storage = dataclasses.replace(st, commit_t=tile_times(st.commit_t), commit_s=np.tile(st.commit_s, k))
    return RawRun(
        scenario=raw.scenario.model_copy(update={"duration": span * k}),
        storage=storage,
        replication=replication,
        recorder=rec,
        instances=raw.instances,
        endpoints=raw.endpoints,
        services=raw.services,
        queries=raw.queries,
        samples={key: np.tile(v, k) for key, v in raw.samples.items()},
        arrived=raw.arrived * k,
        in_flight_at_end=raw.in_flight_at_end,
        events_processed=raw.events_processed * k,
    )


def best_and_median(values: list[float]) -> tuple[float, float]:
    return max(values), statistics.median(values)


# --------------------------------------------------------------------------------------------- running


def aligned_requests(customers: int) -> int:
    """Requests for both models: a whole number of 1 s timeseries rows' worth, so no row is partial."""
    return round(math.ceil(customers / RATE) * RATE)


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    customers, repeats = aligned_requests(cfg["customers"]), cfg["repeats"]
    mm20 = mm20_scenario(customers)
    quick_s = quickstart_scenario(cfg["quickstart"])
    ref_runs: list[dict[str, Any]] = []
    mm_runs: list[dict[str, Any]] = []
    qs_runs: list[dict[str, Any]] = []
    kept: RawRun | None = None
    for _ in range(repeats):
        ref_runs.append(timed_reference(customers))
        out, raw = timed_simdb(mm20, analyse=True)
        mm_runs.append(out)
        kept = raw  # every repeat is the same run (same seed): keep one for the checks
        del raw
        out, raw = timed_simdb(quick_s, analyse=False)
        qs_runs.append(out)
        del raw
    assert kept is not None

    def rates(runs: list[dict[str, Any]], extra: str | None = None) -> list[float]:
        return [r["requests"] / (r["wall_s"] + (r[extra] if extra else 0.0)) for r in runs]

    ref_best, ref_med = best_and_median(rates(ref_runs))
    mm_best, mm_med = best_and_median(rates(mm_runs))
    mma_best, mma_med = best_and_median(rates(mm_runs, "analysis_s"))
    qs_best, qs_med = best_and_median(rates(qs_runs))
    an_best, an_med = best_and_median([r["requests"] / r["analysis_s"] for r in mm_runs])

    # analysis alone on a big synthetic run
    big = tiled_run(kept, cfg["synthetic"])
    gc.collect()
    started = time.perf_counter()
    a = Analysis(big)
    a.summary()
    a.timeseries()
    big_s = time.perf_counter() - started
    big_n = len(big.recorder)
    del a, big
    gc.collect()

    erlang = theory.mmc(RATE, MEAN_SERVICE_S, C)
    sim_wait, sim_half = cpu_wait_ci(kept)
    q = mm_runs[0]["queueing"] or {}
    simulated = q.get("simulated", {})

    return {
        "meta": {
            "python": platform.python_version(),
            "simpy": simpy.__version__,
            "numpy": np.__version__,
            "simdb": simdb.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "repeats": repeats,
            "statistic": "best of repeats (shortest wall time); median also given",
            "customers": customers,
        },
        "cases": {
            "reference_simpy_mm20": {
                "runs": ref_runs,
                "requests_per_s": ref_best,
                "requests_per_s_median": ref_med,
            },
            "simdb_mm20_simulation": {
                "runs": mm_runs,
                "requests_per_s": mm_best,
                "requests_per_s_median": mm_med,
                "ratio_vs_reference": mm_best / ref_best,
            },
            "simdb_mm20_simulation_analysis": {
                "requests_per_s": mma_best,
                "requests_per_s_median": mma_med,
                "ratio_vs_reference": mma_best / ref_best,
            },
            "simdb_quickstart_simulation": {
                "runs": qs_runs,
                "requests_per_s": qs_best,
                "requests_per_s_median": qs_med,
                "ratio_vs_reference": qs_best / ref_best,
            },
            "analysis_mm20": {"requests_per_s": an_best, "requests_per_s_median": an_med},
            "analysis_synthetic": {"requests": big_n, "wall_s": big_s, "requests_per_s": big_n / big_s},
        },
        "correctness": {
            "erlang_c_wq_ms": erlang["wq_s"] * 1000,
            "erlang_c_p_wait": erlang["p_wait"],
            "reference_wq_ms": statistics.mean(r["mean_wait_s"] for r in ref_runs) * 1000,
            "simdb_wq_ms": sim_wait * 1000,
            "simdb_wq_ci95_ms": sim_half * 1000,
            "simdb_p_wait": simulated.get("p_wait"),
            "simdb_utilization": simulated.get("utilization"),
            "simdb_summary_wq_ms": simulated.get("wq_ms"),
        },
    }


# -------------------------------------------------------------------------------------------- printing


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def report(res: dict[str, Any]) -> str:
    m, cs, ok = res["meta"], res["cases"], res["correctness"]
    ref, mm, mma = (
        cs["reference_simpy_mm20"],
        cs["simdb_mm20_simulation"],
        cs["simdb_mm20_simulation_analysis"],
    )
    qs, an, syn = cs["simdb_quickstart_simulation"], cs["analysis_mm20"], cs["analysis_synthetic"]

    def best_run(runs: list[dict[str, Any]], extra: str = "") -> dict[str, Any]:
        return min(runs, key=lambda r: (r["wall_s"] + r.get(extra, 0.0)) / r["requests"])

    rb, mb, qb = best_run(ref["runs"]), best_run(mm["runs"]), best_run(qs["runs"])
    mab = best_run(mm["runs"], "analysis_s")
    # (label, requests, wall s of the best repeat, case with requests_per_s[_median], ratio or None)
    rows = [
        ("1. idiomatic SimPy M/M/20 (reference)", rb["requests"], rb["wall_s"], ref, 1.0),
        ("2. simdb M/M/20, simulation (RawRun.wall_s)", mb["requests"], mb["wall_s"], mm, "r"),
        (
            "   simdb M/M/20, simulation + analysis",
            mab["requests"],
            mab["wall_s"] + mab["analysis_s"],
            mma,
            "r",
        ),
        ("3. simdb quickstart, simulation", qb["requests"], qb["wall_s"], qs, "r"),
        ("5. analysis (summary+timeseries), M/M/20 run", mb["requests"], mb["analysis_s"], an, None),
        ("   analysis, synthetic run (M/M/20 run tiled)", syn["requests"], syn["wall_s"], syn, None),
    ]
    load = m["loadavg_start"]
    lines = [
        f"simdb core benchmark: Python {m['python']}, SimPy {m['simpy']}, numpy {m['numpy']}, "
        f"{m['cpus']} CPUs" + (f", load average {load:.2f} at start" if load is not None else ""),
        f"M/M/{C} at rho={RHO}, mean service {MEAN_SERVICE_S * 1000:g} ms, {fmt_int(m['customers'])} "
        f"requests; best of {m['repeats']} interleaved repeat(s), median beside it",
        "",
        f"{'case':<48}{'requests':>12}{'wall s':>9}{'req/s best':>13}{'req/s median':>14}{'vs SimPy':>10}",
        "-" * 106,
    ]
    for label, n, wall, case, ratio in rows:
        med = case.get("requests_per_s_median")
        if ratio == "r":
            ratio = case["ratio_vs_reference"]
        lines.append(
            f"{label:<48}{fmt_int(n):>12}{wall:>9.2f}{fmt_int(case['requests_per_s']):>13}"
            f"{fmt_int(med) if med is not None else '':>14}{f'{ratio:.2f}x' if ratio else '':>10}"
        )
    erlang = ok["erlang_c_wq_ms"]
    inside = abs(ok["simdb_wq_ms"] - erlang) <= ok["simdb_wq_ci95_ms"]
    lines += [
        "",
        "4. ratios (best against best; above 1 = faster than the idiomatic SimPy model):",
        f"   simdb M/M/20 simulation:             {mm['ratio_vs_reference']:.2f}x idiomatic SimPy",
        f"   simdb M/M/20 simulation + analysis:  {mma['ratio_vs_reference']:.2f}x idiomatic SimPy",
        f"   simdb quickstart simulation:         {qs['ratio_vs_reference']:.2f}x idiomatic SimPy",
        f"   (simdb heap events per request: M/M/20 {mb['events_per_request']:.2f}, "
        f"quickstart {qb['events_per_request']:.2f})",
        "",
        f"correctness: mean wait in the CPU queue, M/M/{C} at rho={RHO} (ms)",
        f"   Erlang C (simdb.theory.mmc)   {erlang:.4f}   P(wait) {ok['erlang_c_p_wait']:.4f}",
        f"   idiomatic SimPy               {ok['reference_wq_ms']:.4f}   "
        f"({_dev(ok['reference_wq_ms'], erlang)}; includes the empty start)",
        f"   simdb, after {WARMUP_S:g} s warmup       {ok['simdb_wq_ms']:.4f}   "
        f"({_dev(ok['simdb_wq_ms'], erlang)}; 95% CI ±{ok['simdb_wq_ci95_ms']:.4f} by batch means: "
        f"Erlang C {'inside' if inside else 'OUTSIDE'})",
        f"   simdb P(wait) {_num(ok['simdb_p_wait'])}, CPU utilization {_num(ok['simdb_utilization'])} "
        f"(theory {RHO:.4f})",
    ]
    return "\n".join(lines)


def _dev(x: float, ref: float) -> str:
    return f"{100.0 * (x - ref) / ref:+.1f}% vs Erlang C"


def _num(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, int | float) else "n/a"


# ------------------------------------------------------------------------------------------- profiling


def profile(customers: int, top: int = 15) -> str:
    """cProfile of simdb's M/M/20 run (model build + event loop), top functions by tottime."""
    s = prepare(mm20_scenario(aligned_requests(customers)))
    prof = cProfile.Profile()
    prof.enable()
    Sim(s).run()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--repeats", type=int, help="repeats per case (default 3, --quick 1)")
    p.add_argument("--profile", action="store_true", help="print a cProfile of the simdb M/M/20 run and exit")
    args = p.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.repeats:
        cfg["repeats"] = args.repeats
    if args.profile:
        print(profile(cfg["customers"]))
        return 0
    started = time.perf_counter()
    res = run(cfg)
    res["meta"]["quick"] = args.quick
    res["meta"]["total_wall_s"] = time.perf_counter() - started
    print(report(res))
    print(f"\n(total benchmark wall time {res['meta']['total_wall_s']:.1f} s)")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
