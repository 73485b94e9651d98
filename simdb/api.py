"""The Python API the CLI and notebooks share: run a scenario, get a Result, save it atomically."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from . import __version__, report
from .analysis.metrics import Analysis, ExpectationError, evaluate_expectations, lookup
from .analysis.replications import aggregate, flatten, interval, means
from .engine import Sim, simulate
from .errors import ScenarioError, SimdbError
from .parallel import Workers
from .scenario import Scenario, expect_error, from_raw, load, resolved

SCENARIO_SUFFIXES = (".yaml", ".yml")


def bundled_dir() -> Path:
    """Where the bundled scenarios live: inside the installed package, or the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled_scenarios", here.parent / "scenarios"):
        if candidate.is_dir():
            return candidate
    return here.parent / "scenarios"


def bundled() -> dict[str, Path]:
    return {p.stem: p for p in sorted(bundled_dir().glob("*.yaml"))}


def find_scenario(name_or_path: str | Path) -> Path:
    """A scenario file path, or the bundled scenario of that name (`quickstart`)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    known = bundled()
    if str(name_or_path) in known:
        return known[str(name_or_path)]
    if path.suffix in SCENARIO_SUFFIXES or "/" in str(name_or_path):
        raise ScenarioError("no such file", source=str(name_or_path))
    import difflib

    close = difflib.get_close_matches(str(name_or_path), list(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ScenarioError(f"no such file or bundled scenario; {hint}see `simdb list`", source=str(name_or_path))


@dataclass(frozen=True)
class LibraryEntry:
    name: str
    description: str  # first line
    case: str | None = None  # simdb.cases id
    role: str | None = None  # broken | fixed
    fixes: str | None = None


def library() -> list[LibraryEntry]:
    """The bundled scenarios, grouped by course failure case (each fixed one after the broken one it
    repairs), then the others by name. Unreadable files are listed, not raised."""
    from .cases import CASES
    from .scenario import read_raw

    entries = []
    for name, path in bundled().items():
        try:
            raw, _, _ = read_raw(path)
        except SimdbError:
            raw = None
        if not isinstance(raw, dict):
            entries.append(LibraryEntry(name, "(unreadable)"))
            continue
        lines = str(raw.get("description") or "").strip().splitlines()
        case = raw.get("case") if isinstance(raw.get("case"), dict) else {}
        entries.append(
            LibraryEntry(
                name,
                lines[0] if lines else "",
                case.get("id") if case.get("id") in CASES else None,
                case.get("role"),
                case.get("fixes"),
            )
        )
    case_order = {c: i for i, c in enumerate(CASES)}
    by_name = {e.name: e for e in entries}

    def key(e: LibraryEntry) -> tuple:
        if e.case is None:
            return (len(case_order), "", 0, e.name)
        anchor = e.fixes if e.role == "fixed" and e.fixes in by_name else e.name
        return (case_order[e.case], anchor, 0 if e.role == "broken" else 1, e.name)

    return sorted(entries, key=key)


@dataclass
class Result:
    """One run: the resolved scenario, summary.json as a dict, and the tables behind it."""

    scenario: Scenario
    summary: dict[str, Any]
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    events: pd.DataFrame
    run_info: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    # with replications: one row per replication, and the plain summary of the run the tables come from
    replications: pd.DataFrame | None = None
    first_summary: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """True when every `expect:` check held (or there were none)."""
        return all(e["passed"] for e in self.summary["expect"])

    def summary_json(self) -> str:
        return json.dumps(self.summary, indent=2, allow_nan=False) + "\n"

    def save(self, out: str | Path, plots: bool = True) -> Path:
        """Write the results folder; it appears complete or not at all (see :func:`write_folder`)."""
        self.out_dir = write_folder(out, lambda tmp: self._write(tmp, plots))
        return self.out_dir

    def _write(self, folder: Path, plots: bool) -> None:
        (folder / "summary.json").write_text(self.summary_json())
        (folder / "run.json").write_text(json.dumps(self.run_info, indent=2) + "\n")
        (folder / "scenario.resolved.yaml").write_text(
            yaml.safe_dump(resolved(self.scenario), sort_keys=False, allow_unicode=True)
        )
        self.timeseries.to_csv(folder / "timeseries.csv", index=False, float_format="%.6g")
        self.events.to_csv(folder / "events.csv", index=False)
        self.requests.to_parquet(folder / "requests.parquet", index=False)
        if self.replications is not None:
            self.replications.to_csv(folder / "replications.csv", index=False, float_format="%.9g")
        if plots:
            from . import plots as plotting

            plot_summary = self.first_summary or self.summary
            plotting.write_all(self.timeseries, self.events, plot_summary, folder / "plots")
        report.write_run(self, folder)  # last: it embeds the plots and quotes scenario.resolved.yaml


def write_folder(out: str | Path, write: Callable[[Path], None], marker: str = "summary.json") -> Path:
    """Fill a results folder with ``write(folder)``; it appears complete or not at all (temp folder + rename).

    An existing folder at ``out`` is replaced only once the new one is complete, and only if it holds
    ``marker`` (a previous result of the same kind); any other non-empty folder or file is left alone
    (:class:`SimdbError`).
    """
    out = Path(out)
    check_out(out, marker)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    moved_old = False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        if out.exists():
            out.rename(old)
            moved_old = True
        tmp.rename(out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if moved_old and not out.exists():
            old.rename(out)  # interrupted between the two renames: put the previous results back
        if isinstance(exc, OSError):
            raise SimdbError(f"{out}: cannot write results: {exc.strerror or exc}") from None
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out


def check_out(out: str | Path, marker: str = "summary.json") -> None:
    """Raise :class:`SimdbError` unless ``out`` can become a results folder (new, empty, or a previous one:
    a folder holding ``marker``)."""
    out = Path(out)
    try:
        if out.is_dir():
            if any(out.iterdir()) and not (out / marker).is_file():
                raise SimdbError(f"{out}: exists and is not a simdb results folder; choose another --out")
        elif out.exists() or out.is_symlink():
            raise SimdbError(f"{out}: exists and is not a folder; choose another --out")
        for parent in out.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise SimdbError(f"{out}: {parent} is not a folder; choose another --out")
                break
    except OSError as exc:
        raise SimdbError(f"{out}: cannot use as results folder: {exc.strerror or exc}") from None


def check_expectations(scenario: Scenario) -> None:
    """Raise ScenarioError (with the file's line) if an `expect:` line names no number in summary.json."""
    if not scenario.expect:
        return
    try:
        Analysis(Sim(scenario).snapshot()).summary()
    except ExpectationError as exc:
        raise expect_error(scenario, exc.index, str(exc)) from None


def default_out(scenario: Scenario, root: str | Path = "runs") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(root) / scenario.name / f"{stamp}-seed{scenario.seed}"


def prepare(
    scenario: str | Path | Scenario | dict,
    *,
    seed: int | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    duration: float | str | None = None,
) -> Scenario:
    """A validated Scenario from a file path, a bundled name, raw data or a Scenario."""
    if isinstance(scenario, Scenario):
        if not overrides and seed is None and duration is None:
            return scenario
        raw: Any = resolved(scenario)
        return from_raw(raw, overrides=overrides, seed=seed, duration=duration)
    if isinstance(scenario, dict):
        return from_raw(json.loads(json.dumps(scenario)), overrides=overrides, seed=seed, duration=duration)
    return load(find_scenario(scenario), overrides=overrides, seed=seed, duration=duration)


def run(
    scenario: str | Path | Scenario | dict,
    *,
    seed: int | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    duration: float | str | None = None,
    out: str | Path | None = None,
    plots: bool = True,
    progress: Callable[[float], None] | None = None,
) -> Result:
    """Run a scenario and analyse it. With ``out`` the results folder is written there.

    >>> r = run("quickstart", seed=1, duration="40s", plots=False)
    >>> r.summary["requests"]["ok"] > 0
    True
    """
    s = prepare(scenario, seed=seed, overrides=overrides, duration=duration)
    check_expectations(s)  # a mistyped expect: path fails now, not after a long simulation
    if out is not None:
        check_out(out)
    raw = simulate(s, progress)
    started = time.perf_counter()
    analysis = Analysis(raw)
    summary = analysis.summary()
    result = Result(
        scenario=s,
        summary=summary,
        requests=analysis.requests_frame(),
        timeseries=analysis.timeseries(),
        events=analysis.events_frame(),
    )
    n = len(raw.recorder)
    result.run_info = {
        "simdb_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "simulation_wall_s": round(raw.wall_s, 3),
        "analysis_wall_s": round(time.perf_counter() - started, 3),
        "events_processed": raw.events_processed,
        "events_per_s": round(raw.events_processed / raw.wall_s) if raw.wall_s else None,
        "requests_recorded": n,
        "requests_per_s": round(n / raw.wall_s) if raw.wall_s else None,
    }
    if out is not None:
        result.save(out, plots=plots)
    return result


def summary_for_seed(data: dict[str, Any], seed: int) -> dict[str, Any]:
    """The summary of resolved scenario ``data`` run with ``seed`` (what a worker process computes)."""
    return Analysis(simulate(from_raw(data, seed=seed))).summary()


def check_metrics(scenario: Scenario, metrics: list[str]) -> None:
    """Raise SimdbError unless every dotted path names a number in this scenario's summary.json."""
    shape = Analysis(Sim(scenario).snapshot()).summary()
    for path in metrics:
        try:
            value = lookup(shape, path)
        except KeyError:
            raise SimdbError(f"--metric {path}: summary.json has no such number") from None
        if isinstance(value, dict | list | str) or value is None:
            raise SimdbError(f"--metric {path}: not a number in summary.json")


def relative_half_width(summaries: list[dict[str, Any]], path: str) -> float:
    """95% CI half-width over |mean| of one summary number across replications (0 when all are 0)."""
    ci = interval([float(lookup(x, path)) for x in summaries])
    lo, hi = ci["ci95"]
    half = (hi - lo) / 2
    return 0.0 if half == 0 else half / abs(ci["mean"]) if ci["mean"] else math.inf


def run_replications(
    scenario: str | Path | Scenario | dict,
    replications: int,
    *,
    seed: int | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    duration: float | str | None = None,
    out: str | Path | None = None,
    plots: bool = True,
    workers: int | None = None,
    precision: float | None = None,
    metrics: list[str] | None = None,
    max_replications: int = 100,
) -> Result:
    """``replications`` independent runs with seeds seed, seed+1, ... in worker processes.

    The summary holds every number as ``{mean, ci95: [lo, hi], n}``; ``expect:`` checks apply to the
    means. The tables and plots are the first replication's. Results do not depend on ``workers``.

    With ``precision`` (e.g. 0.05) replications are added, in batches sized from the spread seen so far,
    until the 95% CI half-width of every metric in ``metrics`` is within ``precision`` x |mean|, or
    ``max_replications`` ran; ``summary["replications"]["precision"]`` says which.
    """
    if replications < 2:
        raise SimdbError("replications: need at least 2 for a confidence interval")
    metrics = list(metrics or [])
    if precision is not None and (not metrics or not 0 < precision < 1):
        raise SimdbError("precision: give a fraction between 0 and 1 (e.g. 5%) and at least one --metric")
    s = prepare(scenario, seed=seed, overrides=overrides, duration=duration)
    check_expectations(s)
    check_metrics(s, metrics)
    if out is not None:
        check_out(out)
    data = resolved(s)
    cap = max(replications, max_replications) if precision is not None else replications
    workers = max(1, min(workers or os.cpu_count() or 1, cap))
    started = time.perf_counter()
    with Workers(workers) as pool:
        seeds = [s.seed + i for i in range(replications)]
        # this process runs the replication whose tables are kept; the others are summaries only
        first, others = pool.run(
            summary_for_seed, [(data, x) for x in seeds[1:]], local=lambda: run(s, plots=False)
        )
        summaries = [first.summary, *others]
        while precision is not None and len(summaries) < cap:
            widths = [relative_half_width(summaries, m) for m in metrics]
            if max(widths) <= precision:
                break
            n = len(summaries)
            # n needed so that t·sd/√n ≤ precision·|mean|, from the current estimate: n · (w / p)². The
            # batch sizes depend only on the results so far, never on the number of workers.
            wanted = math.ceil(n * (max(widths) / precision) ** 2) if math.isfinite(max(widths)) else 2 * n
            more = min(cap, max(wanted, n + 2)) - n
            new = [s.seed + i for i in range(n, n + more)]
            summaries += pool.map(summary_for_seed, [(data, x) for x in new])
            seeds += new
    replications = len(summaries)
    agg = aggregate([{k: v for k, v in x.items() if k not in ("seed", "expect")} for x in summaries])
    agg["seed"] = s.seed
    agg["replications"] = {"n": replications, "seeds": seeds}
    if precision is not None:
        widths = {m: relative_half_width(summaries, m) for m in metrics}
        agg["replications"]["precision"] = {
            "target": precision,
            "relative_half_width": {m: (w if math.isfinite(w) else None) for m, w in widths.items()},
            "reached": all(w <= precision for w in widths.values()),
            "max_replications": cap,
        }
    agg["expect"] = evaluate_expectations(s.expect, means(agg))
    rows = [
        {"replication": i, "seed": seed_i, **flatten(x)}
        for i, (seed_i, x) in enumerate(zip(seeds, summaries, strict=True))
    ]
    result = Result(
        scenario=s,
        summary=agg,
        requests=first.requests,
        timeseries=first.timeseries,
        events=first.events,
        run_info={
            **first.run_info,
            "replications": replications,
            "workers": workers,
            "replications_wall_s": round(time.perf_counter() - started, 3),
        },
        replications=pd.DataFrame(rows),
        first_summary=first.summary,
    )
    if out is not None:
        result.save(out, plots=plots)
    return result


# ------------------------------------------------------------------------------------------ comparisons

KEY_METRICS = (
    "requests.ok",
    "requests.failed",
    "latency_ms.p50",
    "latency_ms.p99",
    "pool.acquire_wait_ms.p99",
    "pool.acquire_timeouts",
    "connections.peak_db",
    "connections.rejected",
    "availability.write_downtime_s",
    "availability.read_downtime_s",
    "availability.client_recovery_s",
    "availability.reconnect_peak_per_s",
    "replication.lag_ms.max",
    "replication.stale_reads",
    "replication.read_your_writes_violations",
    "storage.commit_ms.p50",
    "storage.write_quorum_lost_s",
)


@dataclass
class Comparison:
    """A paired comparison: B − A for every number of summary.json, over replications with shared seeds."""

    a: Scenario
    b: Scenario
    label_a: str
    label_b: str
    seeds: list[int]
    table: pd.DataFrame  # one row per metric: a_mean, b_mean, diff_mean, diff_lo, diff_hi, differs
    replications: pd.DataFrame  # one row per replication and variant
    out_dir: Path | None = None

    def key_rows(self) -> pd.DataFrame:
        """The KEY_METRICS rows where A or B is not zero."""
        rows = self.table[self.table["metric"].isin(KEY_METRICS)]
        return rows[(rows["a_mean"] != 0) | (rows["b_mean"] != 0)]

    def to_json(self) -> str:
        doc = {
            "a": self.label_a,
            "b": self.label_b,
            "replications": {"n": len(self.seeds), "seeds": self.seeds},
            "metrics": {
                r.metric: {
                    "a_mean": r.a_mean,
                    "b_mean": r.b_mean,
                    "diff": {"mean": r.diff_mean, "ci95": [r.diff_lo, r.diff_hi]},
                    "differs": bool(r.differs),
                }
                for r in self.table.itertuples()
            },
        }
        return json.dumps(doc, indent=2, allow_nan=False) + "\n"

    def save(self, out: str | Path) -> Path:
        """compare.json, compare.csv and replications.csv; complete or not at all (:func:`write_folder`)."""
        self.out_dir = write_folder(out, self._write, marker="compare.json")
        return self.out_dir

    def _write(self, folder: Path) -> None:
        (folder / "compare.json").write_text(self.to_json())
        self.table.to_csv(folder / "compare.csv", index=False, float_format="%.9g")
        self.replications.to_csv(folder / "replications.csv", index=False, float_format="%.9g")
        report.write_compare(self, folder)


def compare(
    scenario: str | Path | Scenario | dict,
    variant: str | Path | Scenario | dict | None = None,
    *,
    overrides: list[str] | dict[str, Any] | None = None,
    against: list[str] | dict[str, Any] | None = None,
    replications: int = 10,
    seed: int | None = None,
    duration: float | str | None = None,
    workers: int | None = None,
    out: str | Path | None = None,
) -> Comparison:
    """Run A (``scenario`` with ``overrides``) and B (``variant``, or ``scenario`` with ``against``) with the
    same seeds, so both see the same arrivals and draws wherever their components are the same (common
    random numbers), and report B − A per replication as a mean with a 95% t-interval.
    """
    if replications < 2:
        raise SimdbError("replications: need at least 2 for a confidence interval")
    a = prepare(scenario, seed=seed, overrides=overrides, duration=duration)
    b = prepare(
        variant if variant is not None else scenario, seed=a.seed, overrides=against, duration=duration
    )
    seeds = [a.seed + i for i in range(replications)]
    data_a, data_b = resolved(a), resolved(b)
    workers = max(1, min(workers or os.cpu_count() or 1, 2 * replications))
    with Workers(workers) as pool:
        summaries = pool.map(summary_for_seed, [(data, s) for s in seeds for data in (data_a, data_b)])
    rows = []
    for i, s in enumerate(seeds):
        rows.append({"replication": i, "seed": s, "variant": "A", **flatten(summaries[2 * i])})
        rows.append({"replication": i, "seed": s, "variant": "B", **flatten(summaries[2 * i + 1])})
    per_rep = pd.DataFrame(rows)
    metrics = [c for c in per_rep.columns if c not in ("replication", "seed", "variant")]
    va = per_rep[per_rep["variant"] == "A"].set_index("replication")
    vb = per_rep[per_rep["variant"] == "B"].set_index("replication")
    table = []
    for m in metrics:
        if va[m].isna().any() or vb[m].isna().any():
            continue  # a key only one variant has (e.g. a query class renamed)
        d = interval(list(vb[m] - va[m]))
        lo, hi = d["ci95"]
        table.append(
            {
                "metric": m,
                "a_mean": float(va[m].mean()),
                "b_mean": float(vb[m].mean()),
                "diff_mean": d["mean"],
                "diff_lo": lo,
                "diff_hi": hi,
                "differs": bool(lo > 0 or hi < 0),
            }
        )
    label_a = a.name + ("" if not overrides else " " + " ".join(_assignment_list(overrides)))
    label_b = b.name + ("" if not against else " " + " ".join(_assignment_list(against)))
    result = Comparison(a, b, label_a, label_b, seeds, pd.DataFrame(table), per_rep)
    if out is not None:
        result.save(out)
    return result


def _assignment_list(overrides: list[str] | dict[str, Any]) -> list[str]:
    return [f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, dict) else list(overrides)
