"""The `simdb` command. Exit codes: 0 ok, 1 an `expect:` check failed, 2 bad usage or bad scenario."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import SimdbError, one_line

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate Amazon RDS and Aurora under load: connections, pools, queueing, faults.",
)


def _fail(error: BaseException) -> typer.Exit:
    typer.echo(one_line(f"simdb: {error}"), err=True)
    return typer.Exit(2)


class _Progress:
    """A rich progress bar that appears only if the run lasts more than a couple of seconds on a tty."""

    DELAY_S = 2.0

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.started = time.monotonic()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.started < self.DELAY_S:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                transient=True,
                console=Console(stderr=True),
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=1.0)
        self.bar.update(self.task, completed=fraction)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _ci(node: dict, unit: str = "", digits: int = 2) -> str:
    lo, hi = node["ci95"]
    return f"{node['mean']:.{digits}f}{unit} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _print_replications(result: Any, out: Path | None) -> None:
    s = result.summary
    req, lat = s["requests"], s["latency_ms"]
    reps = s["replications"]
    lines = [
        f"scenario   {s['scenario']} ({reps['n']} replications, seeds {reps['seeds'][0]}-{reps['seeds'][-1]}; "
        "mean [95% CI])",
        f"requests   ok {_ci(req['ok'], digits=0)}, failed {_ci(req['failed'], digits=0)}",
        f"latency    p50 {_ci(lat['p50'], ' ms')}, p99 {_ci(lat['p99'], ' ms')}",
        f"downtime   writes {_ci(s['availability']['write_downtime_s'], ' s')}, "
        f"reads {_ci(s['availability']['read_downtime_s'], ' s')}",
        f"replicas   stale reads {_ci(s['replication']['stale_reads'], digits=0)}, read-your-writes violations "
        f"{_ci(s['replication']['read_your_writes_violations'], digits=0)}",
    ]
    target = reps.get("precision")
    if target:
        widths = ", ".join(
            f"{m} ±{w * 100:.1f}%" if w is not None else f"{m} (mean 0)"
            for m, w in target["relative_half_width"].items()
        )
        verdict = (
            "reached"
            if target["reached"]
            else f"NOT reached within {target['max_replications']} replications"
        )
        lines.append(f"precision  target ±{target['target'] * 100:g}%: {verdict}; {widths}")
    for check in s["expect"]:
        lines.append(
            f"expect     {'PASS' if check['passed'] else 'FAIL'}  {check['check']}  (mean {check['value']})"
        )
    if out is not None:
        lines.append(
            f"results    {out}/  (summary.json, replications.csv; tables and plots of the first replication)"
        )
        lines.append(f"report     {out / 'report.html'}")
    typer.echo("\n".join(lines))


def _print_summary(result: Any, out: Path | None) -> None:
    if result.replications is not None:
        _print_replications(result, out)
        return
    s = result.summary
    req, lat, conn = s["requests"], s["latency_ms"], s["connections"]
    errors = ", ".join(f"{k} {v}" for k, v in req["errors"].items() if v) or "none"
    limits = ", ".join(f"{k} {v}" for k, v in conn["max_connections"].items())
    lines = [
        f"scenario   {s['scenario']} (seed {s['seed']}, {s['duration_s']:g} s simulated, first {s['warmup_s']:g} s warm-up)",
        f"requests   {req['total']} total, {req['ok']} ok, {req['failed']} failed; errors: {errors}",
        f"latency    p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms (successful requests)",
        f"connections peak {conn['peak_db']} open (max_connections: {limits}); pool demand peak {conn['peak_demand']}; "
        f"{conn['rejected']} attempts rejected",
        f"pool       acquire wait mean {s['pool']['acquire_wait_ms']['mean']:.2f} ms, p99 "
        f"{s['pool']['acquire_wait_ms']['p99']:.2f} ms; {s['pool']['acquire_timeouts']} gave up waiting",
    ]
    st, rep = s["storage"], s["replication"]
    quorum = (
        f"; write quorum lost {st['write_quorum_lost_s']:g} s, read quorum lost {st['read_quorum_lost_s']:g} s"
        if st["kind"] == "aurora"
        else ""
    )
    lines.append(
        f"storage    {st['kind']}: commit p50 {st['commit_ms']['p50']:.2f} ms, p99 {st['commit_ms']['p99']:.2f} ms{quorum}"
    )
    if rep["kind"] != "none":
        lines.append(
            f"replicas   {rep['kind']}: lag mean {rep['lag_ms']['mean']:.1f} ms, max {rep['lag_ms']['max']:.1f} ms; "
            f"{rep['stale_reads']} of {rep['reads_on_replicas']} replica reads stale, "
            f"{rep['read_your_writes_violations']} read-your-writes violations"
        )
    gl = s.get("global")
    if gl and gl["regions"]:
        ops = "; ".join(
            f"{o['kind']} at {o['start_s']:g} s to {o['to_region']}: RPO {o['rpo_s'] * 1000:.0f} ms, "
            f"{o['lost_writes']} writes lost"
            + (
                f", every client writing again {o['recovery_s']:.1f} s later"
                if o["recovery_s"] is not None
                else ""
            )
            for o in gl["operations"]
        )
        lines.append(
            f"global     {gl['regions'][0]} -> {gl['regions'][1]}: cross-Region lag mean {gl['lag_ms']['mean']:.0f} ms, "
            f"max {gl['lag_ms']['max']:.0f} ms; {ops or 'no switchover or failover'}"
        )
    px, fn = s["proxy"], s["lambda"]
    if px["borrows"] or px["borrow_timeouts"]:
        lines.append(
            f"proxy      {px['peak_client_connections']} client connections at peak, {px['peak_db_connections']} DB "
            f"connections (cap {', '.join(f'{k} {v}' for k, v in px['max_db_connections_allowed'].items())}); "
            f"borrow wait mean {px['borrow_latency_ms']['mean']:.2f} ms, p99 {px['borrow_latency_ms']['p99']:.2f} ms; "
            f"{px['borrow_timeouts']} borrow timeouts"
        )
    if fn["functions"]:
        lines.append(
            f"lambda     {fn['invocations']} invocations, {fn['throttles']} throttles, {fn['cold_starts']} cold starts; "
            f"peak concurrency {fn['peak_concurrency']}"
        )
    sv, tx = s["serverless"], s["transactions"]
    if sv["instances"]:
        paused = f"; paused {sv['paused_s']:.0f} s ({sv['pauses']} pauses)" if sv["pauses"] else ""
        lines.append(
            f"serverless {sv['acu_hours']:.2f} ACU-hours, US${sv['cost_usd']:.2f} (provisioned "
            f"{', '.join(sorted(set(sv['provisioned']['instance_classes'].values())))}: "
            f"US${sv['provisioned']['cost_usd']:.2f}); capacity peak {sv['peak_acu']:g}, final "
            f"{sv['final_acu']:g} ACU; held up by open transactions {sv['pinned_s']:.0f} s{paused}"
        )
    if tx["held_sessions"] or tx["terminated"]:
        began = sum(h["began"] for h in tx["held_sessions"])
        lines.append(
            f"sessions   {began} held open by events; {tx['terminated']} ended by "
            f"idle_in_transaction_session_timeout"
        )
    rs = s["restore"]
    if rs["restores"]:
        p = rs["phases"]
        verdict = "succeeded" if rs["succeeded"] else f"FAILED: {rs['reason']}"
        lines.append(
            f"restore    {rs['from']} to {rs['target_s']:g} s: RTO {rs['rto_s']:g} s (provisioning "
            f"{p['provisioning_s']:g} + copy {p['copy_s']:g} + replay {p['replay_s']:g}), RPO {rs['rpo_s']:g} s, "
            f"cutover {rs['cutover_s']:g} s, {rs['writes_lost']} writes lost; {verdict}"
        )
    plans = s["theory"].get("plans", {})
    for name, q in s["by_query"].items():
        plan = q.get("plan")
        if plan is None:
            continue
        th = plans.get(name, {})
        sat, when = th.get("saturation_rows"), th.get("saturation_s")
        threshold = (
            f"its own growth never saturates {th.get('instance')}"
            if sat is None
            else f"saturates {th.get('instance')} at {sat:,.0f} rows"
            + (f" (t = {when:.0f} s)" if when is not None else " (not reached)")
        )
        lines.append(
            f"plan       {name}: {plan['access']}, {plan['rows_start']:,.0f} -> {plan['rows_end']:,.0f} rows, mean CPU "
            f"{plan['mean_cpu_ms_start']:,.4g} -> {plan['mean_cpu_ms_end']:,.4g} ms, p95 {q['latency_ms']['p95']:.2f} ms; "
            f"{threshold}"
        )
    for check in s["expect"]:
        lines.append(
            f"expect     {'PASS' if check['passed'] else 'FAIL'}  {check['check']}  (value {check['value']})"
        )
    if out is not None:
        lines.append(f"results    {out}/  (summary.json, timeseries.csv, requests.parquet, events.csv)")
        if (out / "plots").is_dir():
            order = {"timeline.png": 0, "connections.png": 1}
            files = sorted((out / "plots").glob("*.png"), key=lambda p: (order.get(p.name, 2), p.name))
            pngs = ", ".join(f"{out}/plots/{p.name}" for p in files)
            lines.append(f"plots      {pngs}")
        lines.append(f"report     {out / 'report.html'}")
    typer.echo("\n".join(lines))


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="scenario file, or the name of a bundled scenario")],
    seed: Annotated[int | None, typer.Option(help="run seed (overrides the file's)", min=0)] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a field: services.api.pool.max_size=10 (repeatable)"),
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="simulated time, e.g. 10min (overrides the file's)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="results folder (default runs/<name>/<UTC time>-seed<seed>/)")
    ] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="skip the PNG plots")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the results folder")] = False,
    replications: Annotated[
        int,
        typer.Option(
            min=1,
            max=10_000,
            help="independent runs (seeds seed, seed+1, ...); summary numbers become mean and 95% CI",
        ),
    ] = 1,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1024,
            help="replications run at once: this process and W-1 worker processes (default: cores)",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="add replications until every --metric's 95% CI half-width is within this, e.g. 5%"
        ),
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="summary.json number for --precision, e.g. latency_ms.p99")
    ] = None,
    max_replications: Annotated[int, typer.Option(min=2, max=10_000, help="cap for --precision")] = 100,
) -> None:
    """Run a scenario; write summary.json, timeseries.csv, requests.parquet, events.csv and plots."""
    from . import api

    progress = _Progress("simulating", enabled=not quiet and sys.stderr.isatty() and replications == 1)
    try:
        target_precision = _fraction(precision) if precision is not None else None
        if target_precision is not None and replications == 1:
            replications = 5  # a first batch to estimate the spread from
        s = api.prepare(scenario, seed=seed, overrides=set_ or [], duration=duration)
        target = out or api.default_out(s)
        if replications > 1:
            result = api.run_replications(
                s,
                replications,
                out=target,
                plots=not no_plots,
                workers=workers,
                precision=target_precision,
                metrics=list(metric or []),
                max_replications=max_replications,
            )
        else:
            result = api.run(s, out=target, plots=not no_plots, progress=progress)
    except SimdbError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        typer.echo("simdb: interrupted; no results were written", err=True)
        raise typer.Exit(130) from None
    finally:
        progress.close()
    if quiet:
        typer.echo(str(result.out_dir))
    else:
        _print_summary(result, result.out_dir)
    if not result.passed:
        raise typer.Exit(1)


def _fraction(text: str) -> float:
    """'5%' or '0.05' as 0.05."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise SimdbError(
            f"--precision {text!r}: expected a percentage like 5% or a fraction like 0.05"
        ) from None
    if not 0 < value < 1:
        raise SimdbError(f"--precision {text!r}: must be between 0 and 100%")
    return value


def _split_compare_args(tokens: list[str]) -> tuple[list[str], list[str], str | None]:
    """``--set X ... [--against --set Y ...]`` and an optional second scenario, in any order."""
    sets: tuple[list[str], list[str]] = ([], [])
    side, variant = 0, None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--against":
            side = 1
        elif tok == "--set":
            if i + 1 >= len(tokens):
                raise SimdbError("--set needs a value: path=value")
            sets[side].append(tokens[i + 1])
            i += 1
        elif tok.startswith("--set="):
            sets[side].append(tok.removeprefix("--set="))
        elif not tok.startswith("-") and variant is None:
            variant = tok
        else:
            raise SimdbError(
                f"compare: unexpected {tok!r}; use --set path=value, --against, or a second scenario"
            )
        i += 1
    if variant is None and not sets[1]:
        raise SimdbError("compare: give B as a second scenario or as --against --set path=value ...")
    return sets[0], sets[1], variant


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def compare(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help="scenario A: a file or a bundled name")],
    replications: Annotated[int, typer.Option(min=2, max=10_000, help="paired replications")] = 10,
    seed: Annotated[int | None, typer.Option(help="first seed (default: A's)", min=0)] = None,
    duration: Annotated[str | None, typer.Option(help="simulated time for both")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=1024, help="runs at once: this process and W-1 workers (default: cores)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="write compare.json, compare.csv, replications.csv here")
    ] = None,
) -> None:
    """Paired comparison: A (SCENARIO --set ...) against B (a second scenario, or --against --set ...), with
    common random numbers; prints B - A with a 95% confidence interval for the key metrics."""
    from . import api

    try:
        sets_a, sets_b, variant = _split_compare_args(list(ctx.args))
        result = api.compare(
            scenario,
            variant,
            overrides=sets_a,
            against=sets_b,
            replications=replications,
            seed=seed,
            duration=duration,
            workers=workers,
            out=out,
        )
    except SimdbError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        typer.echo("simdb: interrupted; no results were written", err=True)
        raise typer.Exit(130) from None
    n = len(result.seeds)
    lines = [
        f"A          {result.label_a}",
        f"B          {result.label_b}",
        f"paired     {n} replications, seeds {result.seeds[0]}-{result.seeds[-1]} (common random numbers)",
        f"{'metric':42s} {'A mean':>14s} {'B mean':>14s}   B - A [95% CI]",
    ]
    for r in result.key_rows().itertuples():
        mark = "  differs" if r.differs else ""
        lines.append(
            f"{r.metric:42s} {r.a_mean:14.6g} {r.b_mean:14.6g}   {r.diff_mean:.6g} [{r.diff_lo:.6g}, {r.diff_hi:.6g}]{mark}"
        )
    if result.out_dir is not None:
        lines.append(f"results    {result.out_dir}/  (compare.json, compare.csv, replications.csv)")
        lines.append(f"report     {result.out_dir / 'report.html'}")
    typer.echo("\n".join(lines))


@app.command()
def sweep(
    scenario: Annotated[str, typer.Argument(help="scenario file, or the name of a bundled scenario")],
    grid: Annotated[
        list[str],
        typer.Option(help="a swept field and its values: services.api.pool.max_size=5,10,20 (repeatable)"),
    ],
    out: Annotated[
        Path, typer.Option(help="results folder: sweep.parquet, sweep.csv, sweep_summary.csv, plots")
    ],
    replications: Annotated[int, typer.Option(min=1, max=10_000, help="replications per grid point")] = 1,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a field for every point (repeatable)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="first seed (overrides the file's)", min=0)] = None,
    duration: Annotated[str | None, typer.Option(help="simulated time of every run")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=1024, help="runs at once locally: this process and W-1 workers (default: cores)"
        ),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="run on this Dask scheduler instead (tcp://host:8786)")
    ] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="skip the PNG plots")] = False,
    analytic: Annotated[
        bool,
        typer.Option(
            "--analytic",
            help="evaluate the grid by theory first (analytic.csv) and simulate only the points it finds "
            "feasible (CPU utilisation < 1, connection budget fits)",
        ),
    ] = False,
    analytic_only: Annotated[
        bool, typer.Option("--analytic-only", help="evaluate the grid by theory only; simulate nothing")
    ] = False,
) -> None:
    """Run a grid of parameter values x replications; every point uses the same seeds."""
    from . import sweeps

    progress = _Progress("sweeping", enabled=sys.stderr.isatty())

    def verdict(screen: sweeps.Analytic) -> None:
        typer.echo("\n".join(_analytic_lines(screen)))
        progress.started = time.monotonic()  # the bar's delay counts from the first simulation

    try:
        result = sweeps.sweep(
            scenario,
            grid,
            replications=replications,
            seed=seed,
            overrides=set_ or [],
            duration=duration,
            workers=workers,
            scheduler=scheduler,
            out=out,
            plots=not no_plots,
            progress=progress,
            analytic=analytic,
            analytic_only=analytic_only,
            on_analytic=verdict,
        )
    except SimdbError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        typer.echo("simdb: interrupted; no results were written", err=True)
        raise typer.Exit(130) from None
    finally:
        progress.close()
    if len(result.table) == 0 and result.analytic is not None:
        typer.echo(f"results    {result.out_dir}/  (analytic.csv, sweep.json; nothing simulated)")
        typer.echo(f"report     {result.out_dir / 'report.html'}")
        return
    points = int(result.table["point"].nunique())
    typer.echo(
        f"sweep      {points} points x {replications} replications (seeds {result.seeds[0]}-{result.seeds[-1]}) "
        f"on {'Dask ' + scheduler if scheduler else 'local processes'}"
    )
    files = "sweep.parquet, sweep.csv, sweep_summary.csv, sweep.json, plots/"
    if result.analytic is not None:
        files = "analytic.csv, " + files
    typer.echo(f"results    {result.out_dir}/  ({files})")
    typer.echo(f"report     {result.out_dir / 'report.html'}")


def _analytic_lines(screen: Any, show: int = 10) -> list[str]:
    """The analytic screen's verdict: counts, how the grid was evaluated, the first infeasible points."""
    table, out = screen.table, screen.screened_out
    how = []
    if screen.vectorised:
        how.append("vectorised over " + ", ".join(screen.vectorised))
    if screen.per_combination:
        how.append("resolved per combination of " + ", ".join(screen.per_combination))
    lines = [
        f"analytic   {len(table)} points by theory in {screen.seconds:.2f} s ({'; '.join(how) or 'one point'}): "
        + (f"{len(out)} infeasible, {len(table) - len(out)} feasible" if len(out) else "all feasible")
    ]
    if len(out):
        params = [p for p, _ in screen.grid]
        widths = [max(len(p), 5) for p in params]
        lines.append(
            "           "
            + "  ".join([f"{'point':>6s}", *(f"{p:>{w}s}" for p, w in zip(params, widths, strict=True))])
            + "  reason"
        )
        for row in out.head(show)[["point", *params, "reason"]].itertuples(index=False, name=None):
            cells = [f"{row[0]:>6d}", *(f"{v!s:>{w}s}" for v, w in zip(row[1:-1], widths, strict=True))]
            lines.append("           " + "  ".join(cells) + f"  {row[-1]}")
        if len(out) > show:
            lines.append(f"           ... and {len(out) - show} more (analytic.csv, sweep.json)")
    return lines


@app.command()
def validate(
    scenarios: Annotated[list[str], typer.Argument(help="scenario files or bundled names")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a field before validating")
    ] = None,
) -> None:
    """Check scenario files; print one line per file."""
    from . import api

    bad = 0
    for name in scenarios:
        try:
            s = api.prepare(name, overrides=list(set_ or []))
            api.check_expectations(s)
            typer.echo(f"ok  {name}: {s.name} ({len(s.services)} services, {len(s.events)} events)")
        except SimdbError as exc:
            typer.echo(one_line(f"simdb: {exc}"), err=True)
            bad += 1
    if bad:
        raise typer.Exit(2)


@app.command("list")
def list_() -> None:
    """The bundled scenarios: the course's failure cases, broken and fixed, then the others."""
    from . import api
    from .cases import CASES

    entries = api.library()
    width = max((len(e.name) for e in entries), default=0)
    current: str | None = "start"
    for entry in entries:
        if entry.case != current:
            header = (
                "Other scenarios"
                if entry.case is None
                else "{0.title}  ({0.source})".format(CASES[entry.case])
            )
            typer.echo(header if current == "start" else "\n" + header)
            current = entry.case
        typer.echo(f"  {entry.role or '':7s} {entry.name:{width}s}  {entry.description}")


@app.command()
def schema() -> None:
    """The scenario file's JSON Schema (every field, its default and where the default comes from)."""
    from .scenario import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def plot(run_dir: Annotated[Path, typer.Argument(help="a results folder")]) -> None:
    """Redraw the plots of a results folder from its summary.json, timeseries.csv and events.csv."""
    import pandas as pd

    from . import plots

    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        ts = pd.read_csv(run_dir / "timeseries.csv")
        events = pd.read_csv(run_dir / "events.csv")
    except (OSError, ValueError) as exc:
        raise _fail(SimdbError(f"{run_dir}: not a readable simdb results folder ({exc})")) from None
    try:
        written = plots.write_all(ts, events, summary, run_dir / "plots")
    except OSError as exc:
        raise _fail(SimdbError(f"{run_dir}/plots: cannot write plots ({exc.strerror or exc})")) from None
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise _fail(
            SimdbError(
                f"{run_dir}: summary.json, timeseries.csv or events.csv lack what the plots need ({exc!r})"
            )
        ) from None
    for path in written:
        typer.echo(str(path))


@app.command()
def explain(
    run_dir: Annotated[Path, typer.Argument(help="a results folder")],
    format_: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Diagnose a results folder: each finding's Why / Detect / Fix, the metric and the time range."""
    from .analysis import explain as rules

    try:
        if format_ not in ("text", "json"):
            raise SimdbError(f"--format {format_!r}: expected text or json")
        summary, ts, events = rules.load_run(run_dir)
        findings = rules.explain(summary, ts, events)
    except SimdbError as exc:
        raise _fail(exc) from None
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise _fail(
            SimdbError(
                f"{run_dir}: summary.json, timeseries.csv or events.csv lack what explain needs ({exc!r})"
            )
        ) from None
    if format_ == "json":
        typer.echo(
            rules.to_json(
                findings,
                run_dir=str(run_dir),
                scenario=summary.get("scenario"),
                seed=summary.get("seed"),
                rules=list(rules.RULES),
            ),
            nl=False,
        )
        return
    count = f"{len(findings)} finding{'s' if len(findings) != 1 else ''}"
    typer.echo(f"explain    {run_dir}: {summary.get('scenario')} (seed {summary.get('seed')}), {count}\n")
    typer.echo(rules.format_text(findings))


@app.command()
def replay(run_dir: Annotated[Path, typer.Argument(help="a results folder")]) -> None:
    """Rerun scenario.resolved.yaml and check that summary.json comes out byte-identical."""
    from . import api

    try:
        expected = (run_dir / "summary.json").read_text()
        result = api.run(run_dir / "scenario.resolved.yaml")
    except OSError as exc:
        raise _fail(SimdbError(f"{run_dir}: not a readable simdb results folder ({exc.strerror})")) from None
    except SimdbError as exc:
        raise _fail(exc) from None
    if result.summary_json() == expected:
        typer.echo(f"identical: {run_dir}/summary.json")
    else:
        typer.echo(f"DIFFERENT: rerunning {run_dir}/scenario.resolved.yaml gives another summary.json")
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
