"""report.html: one self-contained page per results folder (a run, a sweep, a comparison).

Plain HTML with inline CSS and no script, so it opens from the file system in any browser. Plots are
embedded as base64 data URIs: the page can be mailed on its own. Every text that comes from a scenario,
a summary or a file name goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

REPORT = "report.html"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2327;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:18px 28px 48px;background:#fff}
h1{font-size:24px;margin:8px 0 4px}
h2{font-size:19px;margin:30px 0 8px;padding-top:6px;border-top:1px solid #dde1e6}
h3{font-size:15px;margin:18px 0 6px}
p.meta,p.note{color:#50575e;margin:4px 0}
nav{font-size:13px;margin:10px 0}
nav a{margin-right:12px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #dde1e6;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f4;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}
.row{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}
code{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;
border:1px solid #dde1e6;padding:10px;overflow-x:auto;white-space:pre}
.pass{color:#fff;background:#1a7f37;padding:1px 7px;border-radius:3px;font-weight:600}
.fail{color:#fff;background:#cf222e;padding:1px 7px;border-radius:3px;font-weight:600}
.none{color:#fff;background:#6e7781;padding:1px 7px;border-radius:3px;font-weight:600}
p.verdict{font-size:16px;margin:8px 0}
figure{margin:14px 0 22px}
figure img{max-width:100%;height:auto;border:1px solid #dde1e6}
figcaption{color:#50575e;font-size:13px;margin-top:4px}
.finding{border-left:4px solid #bf8700;padding:4px 12px;margin:10px 0;background:#fff8e5}
.finding dt{font-weight:600;margin-top:4px}
.finding dd{margin:0 0 4px 0}
"""

# the CLI's order: the two overview plots first, then the rest by name
PLOT_ORDER = {"timeline.png": 0, "connections.png": 1}
PLOT_CAPTIONS = {
    "timeline.png": "Connections against max_connections and pool demand; throughput and errors by code; "
    "latency p50/p99 and pool wait p99; events marked.",
    "connections.png": "Per instance: connections, pool demand and the limit; connection attempts and "
    "rejections per second.",
    "stale_reads.png": "Stale-read share of replica reads and read-your-writes violations; replica lag; "
    "write rate and replica reads.",
    "downtime.png": "Per service, successful and failed requests per second with each writer outage's "
    "phases shaded; connection attempts and DatabaseConnections below.",
    "proxy.png": "RDS Proxy: ClientConnections, its DatabaseConnections against "
    "MaxDatabaseConnectionsAllowed, pinned sessions; borrow latency and timeouts.",
    "lambda.png": "Lambda: ConcurrentExecutions and environments against reserved concurrency; "
    "invocations, throttles and cold starts; DatabaseConnections.",
    "serverless.png": "Serverless v2: capacity per instance against min/max ACU; CPU, requests and "
    "connections; cost against the provisioned instance.",
    "restore.png": "Restore drill: the phases (provisioning, copy, replay, cutover) shaded; requests per "
    "second on the old and the restored cluster; lazy loads.",
    "global.png": "Aurora Global Database: cross-Region replication lag and RPO lag; writes through each "
    "switchover or failover with its phases shaded; the lag readers in the secondary Region see.",
    "query_plans.png": "Per query with a plan: p95 latency per interval against its table's rows, the plan's "
    "mean CPU per execution, and the failure threshold (the rows at which its instance saturates).",
}
# what the simulated side of the connection budget counts (the theory also counts Lambda and proxy caps)
POOLS = "(simulated: Σ max_size of the live pools)"
# failover phases in the order they happen: (key in summary["failovers"][i], label)
PHASES = (
    ("start_s", "fault"),
    ("detected_s", "failure detected"),
    ("writer_available_s", "new writer accepts writes"),
    ("dns_updated_s", "DNS record updated"),
    ("first_write_ok_s", "first successful write"),
    ("clients_recovered_s", "every client wrote again"),
)


class _Html(str):
    """Text that is already HTML (a badge, a link): written as it is, not escaped again."""


def _e(value: Any) -> str:
    return value if isinstance(value, _Html) else html.escape(str(value))


def is_interval(value: Any) -> bool:
    """A replications summary number: ``{mean, ci95, n}``."""
    return isinstance(value, dict) and set(value) == {"mean", "ci95", "n"}


def _number(value: Any) -> float | None:
    """The plain value or an interval's mean; None for anything that is not a number."""
    if is_interval(value):
        value = value["mean"]
    # numbers.Real: numpy scalars from pandas tables count too
    return float(value) if isinstance(value, numbers.Real) else None


def _nonzero(value: Any) -> bool:
    """A number (or interval mean) other than 0, or a non-empty container."""
    n = _number(value)
    if n is not None:
        return n != 0
    return bool(value)


def fmt_number(x: float) -> str:
    """Readable digits: integers in full, larger floats to 2 decimals, small ones to 3 significant digits."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, numbers.Integral):
        return f"{int(x):,}"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.3g}"


def fmt(value: Any, unit: str = "") -> str:
    """A summary value as text: numbers, intervals as ``mean [lo, hi]``, lists and mappings compactly."""
    suffix = f" {unit}" if unit else ""
    if value is None:
        return "—"
    if is_interval(value):
        mean, ci = value["mean"], value["ci95"]
        if ci is None or math.isclose(ci[0], ci[1], rel_tol=1e-9, abs_tol=1e-12):
            return fmt_number(mean) + suffix
        return f"{fmt_number(mean)} [{fmt_number(ci[0])}, {fmt_number(ci[1])}]{suffix}"
    if isinstance(value, numbers.Real):
        return fmt_number(value) + suffix
    if isinstance(value, Mapping):
        if set(value) == {"replications"}:
            return "varies by replication"
        return ", ".join(f"{k} {fmt(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value) or "—"
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, _Html):
        return f"<td>{value}</td>"
    numeric = _number(value) is not None and not isinstance(value, bool)
    return f'<td class="n">{_e(fmt(value))}</td>' if numeric else f"<td>{_e(fmt(value))}</td>"


def table(headers: list[str], rows: Iterable[list[Any]]) -> str:
    """An HTML table; cells are summary values (formatted with :func:`fmt`) or :class:`_Html`."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys down to numbers, intervals, text and lists (lists of records are left out)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and not is_interval(v) and set(v) != {"replications"}:
            if v:
                out.update(_flat(v, key + "."))
            else:
                out[key] = "—"
        elif isinstance(v, list) and v and isinstance(v[0], Mapping):
            continue
        else:
            out[key] = v
    return out


def kv_table(
    tree: Mapping[str, Any], prefix: str, skip: Iterable[str] = (), source: str = "summary.json"
) -> str:
    """One row per number of a summary block, named by its summary.json path (what `expect:` uses)."""
    skipped = tuple(skip)
    rows = [
        [_Html(f"<code>{_e(prefix + k)}</code>"), v]
        for k, v in _flat(tree).items()
        if not any(k == s or k.startswith(s + ".") for s in skipped)
    ]
    return table([source, "value"], rows)


def entity_table(first: str, entities: Mapping[str, Any]) -> str:
    """One row per named thing (a query, an instance, a function), its numbers as dotted columns."""
    flats = {name: _flat(v) if isinstance(v, Mapping) else {"value": v} for name, v in entities.items()}
    columns = list(dict.fromkeys(k for f in flats.values() for k in f))
    return table([first, *columns], ([name, *(f.get(c) for c in columns)] for name, f in flats.items()))


def records_table(records: list[Mapping[str, Any]]) -> str:
    """One row per record of a summary list (downtime windows, storms, held sessions)."""
    flats = [_flat(r) for r in records]
    columns = list(dict.fromkeys(k for f in flats for k in f))
    return table(columns, ([f.get(c) for c in columns] for f in flats))


def _badge(passed: bool | None) -> _Html:
    if passed is None:
        return _Html('<span class="none">NO CHECKS</span>')
    return _Html('<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>')


def _page(title: str, nav: list[tuple[str, str]], body: list[str]) -> str:
    links = "".join(f'<a href="#{_e(anchor)}">{_e(label)}</a>' for anchor, label in nav)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # an empty icon: the browser asks the file system for no favicon.ico
        '<link rel="icon" href="data:,">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + (f"<nav>{links}</nav>\n" if links else "")
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{_e(anchor)}">\n<h2>{_e(title)}</h2>\n' + "\n".join(parts) + "\n</section>"


def _p(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{_e(text)}</p>'


def plot_files(folder: Path) -> list[Path]:
    """The PNGs of a results folder's plots/, in the order the CLI lists them."""
    plots = folder / "plots"
    if not plots.is_dir():
        return []
    return sorted(plots.glob("*.png"), key=lambda p: (PLOT_ORDER.get(p.name, 2), p.name))


def figures(folder: Path, captions: Mapping[str, str] | None = None) -> str:
    """Every plot of ``folder/plots`` embedded as a data URI, with its file name and caption."""
    out = []
    for path in plot_files(folder):
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = (captions or {}).get(path.name, "")
        text = f"plots/{path.name}" + (f": {caption}" if caption else "")
        out.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_e(text)}">'
            f"<figcaption>{_e(text)}</figcaption></figure>"
        )
    return "\n".join(out)


def _plots_section(folder: Path, captions: Mapping[str, str] | None = None, note: str = "") -> str:
    body = figures(folder, captions)
    if not body:
        return _section("plots", "Plots", _p("No plots: the results were saved without them (--no-plots)."))
    return _section("plots", "Plots", _p(note) if note else "", body)


# ------------------------------------------------------------------------------------------------ runs


def _verdict(summary: Mapping[str, Any], mean_values: bool) -> str:
    checks = summary.get("expect") or []
    if not checks:
        return _section("verdict", "Verdict", f'<p class="verdict">{_badge(None)} no expect: checks</p>')
    failed = [c for c in checks if not c["passed"]]
    text = (
        f"all {len(checks)} expect: checks held"
        if not failed
        else f"{len(failed)} of {len(checks)} expect: checks failed"
    )
    rows = [[_badge(c["passed"]), _Html(f"<code>{_e(c['check'])}</code>"), c["value"]] for c in checks]
    return _section(
        "verdict",
        "Verdict",
        f'<p class="verdict">{_badge(not failed)} {_e(text)}</p>',
        table(["result", "check", "mean over replications" if mean_values else "value"], rows),
    )


def _row(*blocks: str) -> str:
    """Small tables side by side (they wrap on a narrow window)."""
    return '<div class="row">' + "".join(f"<div>{b}</div>" for b in blocks if b) + "</div>"


def _key_numbers(s: Mapping[str, Any]) -> str:
    req, conn = s["requests"], s["connections"]
    errors = {code: n for code, n in req["errors"].items() if _nonzero(n)}
    failures = (
        table(["code", "requests"], ([code, n] for code, n in errors.items()))
        if errors
        else _p("No request failed.")
    )
    cols = ["mean", "p50", "p95", "p99", "max"]
    rows = [["all", "", "", "", req["total"], req["failed"], *(s["latency_ms"].get(c) for c in cols)]]
    for name, q in s["by_query"].items():
        lat = q.get("latency_ms", {})
        rows.append(
            [name, q.get("service"), q.get("kind"), q.get("route"), q.get("total"), q.get("failed")]
            + [lat.get(c) for c in cols]
        )
    instances = entity_table(
        "instance",
        {
            name: {"max_connections": conn["max_connections"].get(name), "peak connections open": peak}
            for name, peak in conn["peak_db_by_instance"].items()
        },
    )
    return _section(
        "numbers",
        "Key numbers",
        _row(
            "<h3>Requests</h3>" + kv_table(req, "requests.", skip=("errors",)),
            "<h3>Failures by code</h3>" + failures,
        ),
        "<h3>Latency of successful requests (ms)</h3>",
        table(["query", "service", "kind", "route", "total", "failed", *cols], rows),
        _row(
            "<h3>Connections</h3>"
            + kv_table(
                conn,
                "connections.",
                skip=("peak_db_by_instance", "max_connections", "peak_demand_by_endpoint", "storms"),
            ),
            "<h3>Per instance</h3>"
            + instances
            + "<h3>Pools</h3>"
            + kv_table(s["pool"], "pool.")
            + "<h3>Storage</h3>"
            + kv_table(s["storage"], "storage."),
        ),
    )


def _storms(plain: Mapping[str, Any]) -> str:
    storms = plain["connections"].get("storms") or []
    if not storms:
        return ""
    return _section(
        "storms",
        "Connection storms",
        _p("Runs of attempts rejected at max_connections (connections.storms)."),
        records_table(storms),
    )


def _failover(f: Mapping[str, Any], number: int) -> str:
    start = f.get("start_s")
    rows = []
    for key, label in PHASES:
        at = f.get(key)
        since = None if at is None or start is None else at - start
        rows.append([label, _Html(f"<code>{_e(key)}</code>"), at, since])
    who = f"{f.get('cause', '')} of {f.get('failed', '')}"
    promoted = f", promoted {f['promoted']}" if f.get("promoted") else ""
    head = f"Failover {number}: {who} at {fmt(start)} s ({f.get('kind', '')}, mode {f.get('mode', '')}{promoted})"
    not_recovered = f.get("clients_not_recovered") or 0
    clients = (
        f"{not_recovered} of {f.get('clients')} clients never wrote again"
        if not_recovered
        else f"all {f.get('clients')} clients wrote again"
    )
    client_outage = (
        fmt(f["client_outage_s"], "s")
        if f.get("client_outage_s") is not None
        else "not over by the end of the run"
    )
    outages = (
        f"Outages from the fault: server {fmt(f.get('server_outage_s'), 's')}, DNS {fmt(f.get('dns_outage_s'), 's')}, "
        f"clients {client_outage}; {clients}; {fmt(f.get('in_flight'))} requests in flight at "
        f"the fault; reconnect peak {fmt(f.get('reconnect_peak_per_s'), '/s')} at {fmt(f.get('reconnect_peak_at_s'), 's')}; "
        f"DNS TTL {fmt(f.get('dns_ttl_s'), 's')}."
    )
    return (
        f"<h3>{_e(head)}</h3>"
        + table(["phase", "failovers[] key", "at (s)", "after the fault (s)"], rows)
        + _p(outages)
    )


def _availability(s: Mapping[str, Any], plain: Mapping[str, Any], first_note: str) -> str:
    av = s["availability"]
    failovers = plain.get("failovers") or []
    windows = plain["availability"].get("windows") or []
    if not (failovers or windows or _nonzero(av.get("write_downtime_s")) or _nonzero(av.get("failovers"))):
        return ""
    parts = [kv_table(av, "availability.", skip=("windows",))]
    for i, f in enumerate(failovers, start=1):
        parts.append(_failover(f, i))
    if windows:
        parts += ["<h3>Client-seen downtime windows</h3>", records_table(windows)]
    if first_note and (failovers or windows):
        parts.append(_p(first_note))
    return _section("availability", "Availability and failovers", *parts)


def _replication(s: Mapping[str, Any]) -> str:
    rep = s["replication"]
    if rep.get("kind") in (None, "none"):
        return ""
    parts = [kv_table(rep, "replication.", skip=("lag_ms_by_replica", "by_query"))]
    if rep.get("lag_ms_by_replica"):
        parts += ["<h3>Lag per replica (ms)</h3>", entity_table("replica", rep["lag_ms_by_replica"])]
    if rep.get("by_query"):
        parts += ["<h3>Replica reads per query</h3>", entity_table("query", rep["by_query"])]
    return _section("replication", "Replication and staleness", *parts)


def _proxy(s: Mapping[str, Any]) -> str:
    px = s["proxy"]
    if not any(_nonzero(px.get(k)) for k in ("borrows", "borrow_timeouts", "peak_client_connections")):
        return ""
    return _section("proxy", "RDS Proxy", kv_table(px, "proxy."))


def _lambda(s: Mapping[str, Any]) -> str:
    fn = s["lambda"]
    if not fn.get("functions"):
        return ""
    return _section(
        "lambda",
        "Lambda",
        kv_table(fn, "lambda.", skip=("functions",)),
        "<h3>Per function</h3>",
        entity_table("function", fn["functions"]),
    )


def _serverless(s: Mapping[str, Any]) -> str:
    sv = s["serverless"]
    if not sv.get("instances"):
        return ""
    return _section(
        "serverless",
        "Aurora Serverless v2",
        kv_table(sv, "serverless.", skip=("instances",)),
        "<h3>Per instance</h3>",
        entity_table("instance", sv["instances"]),
    )


def _restore(s: Mapping[str, Any]) -> str:
    r = s.get("restore") or {}
    if not _nonzero(r.get("restores")):
        return ""
    return _section("restore", "Restore drill", kv_table(r, "restore."))


def _transactions(s: Mapping[str, Any], plain: Mapping[str, Any]) -> str:
    tx, held = s["transactions"], plain["transactions"].get("held_sessions") or []
    if not (held or _nonzero(tx.get("terminated"))):
        return ""
    parts = [kv_table(tx, "transactions.")]
    if held:
        parts += ["<h3>Held sessions (per event)</h3>", records_table(held)]
    return _section("transactions", "Transactions and held sessions", *parts)


def theory_rows(s: Mapping[str, Any]) -> list[tuple[str, str, str, Any, Any]]:
    """(model, quantity, unit, theory, simulated) for every number the summary has both ways."""
    th = s.get("theory") or {}
    rows: list[tuple[str, str, str, Any, Any]] = []
    q = th.get("queueing")
    if q:
        sim = q.get("simulated") or {}
        model = f"{q.get('model', 'queueing')} on {q.get('instance', 'the writer')}"
        for key, label, unit, sim_key in (
            ("arrival_rate_per_s", "throughput on the writer", "/s", "throughput_per_s"),
            ("utilization", "vCPU utilization", "", "utilization"),
            ("p_wait", "P(wait for a vCPU)", "", "p_wait"),
            ("wq_ms", "mean wait for a vCPU (Wq)", "ms", "wq_ms"),
            ("little_l", "sessions in the DB (L = λW; DBLoad)", "", "little_l"),
        ):
            if key in q and sim_key in sim:
                rows.append((model, label, unit, q[key], sim[sim_key]))
    budget = th.get("connection_budget")
    if budget:
        conn = s["connections"]
        rows.append(
            (
                "connection budget",
                f"peak connection demand {POOLS}",
                "",
                budget.get("peak_demand"),
                conn["peak_demand"],
            )
        )
        for name, e in (budget.get("endpoints") or {}).items():
            rows.append(
                (
                    "connection budget",
                    f"peak demand on the {name} endpoint {POOLS}",
                    "",
                    e.get("peak_demand"),
                    conn.get("peak_demand_by_endpoint", {}).get(name),
                )
            )
        for name, i in (budget.get("instances") or {}).items():
            rows.append(
                (
                    "connection budget",
                    f"{name}: demand (theory) vs connections open (simulated), max_connections "
                    f"{fmt(i.get('max_connections'))}",
                    "",
                    i.get("peak_demand"),
                    conn.get("peak_db_by_instance", {}).get(name),
                )
            )
        rows.append(
            (
                "connection budget",
                "fits max_connections (theory) vs connection attempts rejected (simulated)",
                "",
                budget.get("fits"),
                conn.get("rejected"),
            )
        )
    st = th.get("storage")
    if st:
        sim = st.get("simulated") or {}
        for key, label in (
            ("write_quorum_lost_fraction", "share of time without write quorum (4 of 6)"),
            ("read_quorum_lost_fraction", "share of time without read quorum (3 of 6)"),
        ):
            if key in st and key in sim:
                rows.append(("Aurora storage quorum", label, "", st[key], sim[key]))
    rp = th.get("replication")
    if rp:
        sim_lag = (rp.get("simulated") or {}).get("lag_ms") or {}
        if "aurora_lag_ms_at_mean_rate_idle_reader" in rp and "mean" in sim_lag:
            rows.append(
                (
                    "Aurora replica lag",
                    "lag at the mean write rate, idle reader (theory) vs mean lag (simulated)",
                    "ms",
                    rp["aurora_lag_ms_at_mean_rate_idle_reader"],
                    sim_lag["mean"],
                )
            )
        by_replica = s["replication"].get("lag_ms_by_replica") or {}
        for name, r in (rp.get("replicas") or {}).items():
            peak = r.get("peak_lag_s_fluid")
            sim = (by_replica.get(name) or {}).get("max")
            if peak is not None and sim is not None:
                rows.append(
                    (
                        "async replica lag",
                        f"{name}: peak lag, fluid model (theory) vs max lag (simulated)",
                        "ms",
                        _scale(peak, 1000.0),
                        sim,
                    )
                )
    return rows


def _scale(value: Any, factor: float) -> Any:
    if is_interval(value):
        ci = value["ci95"]
        return {
            "mean": value["mean"] * factor,
            "ci95": None if ci is None else [ci[0] * factor, ci[1] * factor],
            "n": value["n"],
        }
    return value * factor if isinstance(value, int | float) and not isinstance(value, bool) else value


def _theory(s: Mapping[str, Any]) -> str:
    rows = theory_rows(s)
    if not rows:
        return ""
    th = s.get("theory") or {}
    parts = [
        table(
            ["model", "quantity", "theory", "simulated"],
            ([model, f"{label} ({unit})" if unit else label, t, v] for model, label, unit, t, v in rows),
        )
    ]
    q = th.get("queueing")
    if q:
        parts.append(
            _p(
                f"{q.get('model', '')}: {fmt(q.get('servers'))} vCPUs, mean service {fmt(q.get('mean_service_ms'), 'ms')}, "
                f"mean response W {fmt(q.get('w_ms'), 'ms')}, stable: {fmt(q.get('stable'))}."
            )
        )
    budget = th.get("connection_budget")
    if budget and budget.get("formula"):
        parts.append(_p(f"Connection budget: {budget['formula']}."))
    if th.get("storage", {}).get("model"):
        parts.append(_p(f"Storage: {th['storage']['model']}."))
    plans = th.get("plans")
    if plans:
        parts += ["<h3>Query plans: the failure threshold</h3>", _plans_table(s, plans)]
        parts.append(_p(f"Query plans: {next(iter(plans.values()))['formula']}."))
    return _section("theory", "Theory vs simulated", *parts)


def _plans_table(s: Mapping[str, Any], plans: Mapping[str, Any]) -> str:
    """Per query with a plan (course 004 Hours 15-17): its table, cost, the saturation point and its p95."""
    headers = [
        "query",
        "access",
        "rows start → end",
        "mean CPU start → end (ms)",
        "instance",
        "utilisation start → end (theory)",
        "saturates at (rows)",
        "at (s)",
        "p95 (ms, simulated)",
    ]
    rows = []
    for name, th in plans.items():
        q = s["by_query"][name]
        plan = q["plan"]
        rows.append(
            [
                name,
                plan["access"],
                f"{fmt(plan['rows_start'])} → {fmt(plan['rows_end'])}",
                f"{fmt(plan['mean_cpu_ms_start'])} → {fmt(plan['mean_cpu_ms_end'])}",
                th.get("instance"),
                f"{fmt(th.get('utilization_start'))} → {fmt(th.get('utilization_end'))}",
                th.get("saturation_rows"),
                th.get("saturation_s"),
                q["latency_ms"].get("p95"),
            ]
        )
    return table(headers, rows)


def finding_fields(finding: Any) -> dict[str, str]:
    """title, why, detect, fix of a finding given as an object with those attributes or as a mapping."""
    get = finding.get if isinstance(finding, Mapping) else lambda k, d=None: getattr(finding, k, d)
    out = {
        k: "" if get(k) is None else str(get(k)) for k in ("title", "why", "detect", "fix", "id", "metric")
    }
    t0, t1 = get("t_start"), get("t_end")
    out["when"] = (
        "" if t0 is None else f"{fmt_number(t0)} s" + ("" if t1 is None else f" to {fmt_number(t1)} s")
    )
    return out


def findings_section(findings: Iterable[Any]) -> str:
    """The "Findings" section: each finding's title, then why it happens, how to detect it, how to fix it."""
    items = []
    for finding in findings:
        f = finding_fields(finding)
        parts = "".join(
            f"<dt>{label}</dt><dd>{_e(f[key])}</dd>"
            for key, label in (
                ("why", "Why"),
                ("detect", "Detect"),
                ("fix", "Fix"),
                ("metric", "Metric"),
                ("when", "When"),
            )
            if f[key]
        )
        ident = f' id="finding-{_e(f["id"])}"' if f["id"] else ""
        items.append(f'<div class="finding"{ident}><h3>{_e(f["title"])}</h3><dl>{parts}</dl></div>')
    body = "\n".join(items) or _p("No findings: nothing in this run matched a known failure pattern.")
    return _section("findings", "Findings", body)


def run_findings(result: Any) -> list[Any]:
    """What ``simdb explain`` finds in the run: rules over the run's own summary (with replications: the
    first replication's, whose tables and plots the report shows), timeseries and events."""
    from .analysis.explain import explain

    summary = result.first_summary if result.first_summary is not None else result.summary
    return explain(summary, result.timeseries, result.events)


_NAV = (
    ("verdict", "Verdict"),
    ("numbers", "Key numbers"),
    ("availability", "Availability"),
    ("replication", "Replication"),
    ("proxy", "Proxy"),
    ("lambda", "Lambda"),
    ("serverless", "Serverless"),
    ("transactions", "Transactions"),
    ("restore", "Restore"),
    ("theory", "Theory"),
    ("findings", "Findings"),
    ("plots", "Plots"),
    ("scenario", "Scenario"),
    ("run", "Run"),
)


def run_html(result: Any, folder: Path) -> str:
    """The report of one run (or of replications) whose files are in ``folder``."""
    s = result.summary
    scenario = result.scenario
    plain = result.first_summary or s
    reps = s.get("replications") if isinstance(s.get("replications"), Mapping) else None
    if reps:
        seeds = reps.get("seeds") or []
        what = (
            f"{reps.get('n')} replications, seeds {seeds[0]}-{seeds[-1]}; numbers are mean [95% CI]"
            if seeds
            else f"{reps.get('n')} replications"
        )
        first_note = (
            f"Failover phases, windows, storms and plots are the first replication's (seed {s['seed']})."
        )
    else:
        what = f"seed {s['seed']}"
        first_note = ""
    meta = (
        f"{what}; {fmt(plain['duration_s'])} s simulated, first {fmt(plain['warmup_s'])} s warm-up"
        f"{' (auto: ' + str(plain['warmup_auto'].get('method', '')) + ')' if plain.get('warmup_auto') else ''}."
    )
    header = [
        f"<h1>{_e(scenario.name)}</h1>",
        _p(meta, "meta"),
        f"<p>{_e(scenario.description)}</p>" if scenario.description else "",
    ]
    if reps and reps.get("precision"):
        header.append("<h3>Precision target</h3>" + kv_table(reps["precision"], "replications.precision."))
    sections = [
        _verdict(s, mean_values=bool(reps)),
        _key_numbers(s),
        _storms(plain),
        _availability(s, plain, first_note),
        _replication(s),
        _proxy(s),
        _lambda(s),
        _serverless(s),
        _transactions(s, plain),
        _restore(s),
        _theory(s),
    ]
    sections.append(findings_section(run_findings(result)))
    sections.append(_plots_section(folder, PLOT_CAPTIONS, first_note))
    resolved = folder / "scenario.resolved.yaml"
    if resolved.is_file():
        sections.append(
            _section(
                "scenario",
                "Resolved scenario",
                _p(
                    "scenario.resolved.yaml: every default filled in, durations in seconds; simdb run it to replay."
                ),
                f"<pre>{_e(resolved.read_text())}</pre>",
            )
        )
    info = getattr(result, "run_info", None) or {}
    if info:
        sections.append(_section("run", "Run", kv_table(info, "", source="run.json")))
    sections = [x for x in sections if x]
    nav = [(a, t) for a, t in _NAV if f'<section id="{a}">' in "".join(sections)]
    return _page(f"simdb report: {scenario.name}", nav, header + sections)


def write_run(result: Any, folder: Path) -> Path:
    """Write ``folder/report.html`` for a run; the folder already holds its other files and plots."""
    path = folder / REPORT
    path.write_text(run_html(result, folder), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- sweeps


def sweep_metrics(summary: pd.DataFrame) -> list[str]:
    """The key metrics a sweep's table shows: those that are not 0 at some point."""
    from .api import KEY_METRICS

    nonzero = set(summary.loc[summary["mean"] != 0, "metric"]) if len(summary) else set()
    return [m for m in KEY_METRICS if m in nonzero]


def sweep_html(sweep: Any, folder: Path) -> str:
    """The report of a sweep whose files are in ``folder``."""
    params = [p for p, _ in sweep.grid]
    points = int(sweep.table["point"].nunique())
    n = len(sweep.seeds)
    grid = table(
        ["swept field", "values"], ([_Html(f"<code>{_e(p)}</code>"), fmt(list(v))] for p, v in sweep.grid)
    )
    summary = sweep.summary
    metrics = sweep_metrics(summary)
    rows = []
    for point, g in summary.groupby("point", sort=True):
        by_metric = g.set_index("metric")
        row: list[Any] = [int(point), *(g[p].iloc[0] for p in params)]
        for m in metrics:
            if m in by_metric.index:
                r = by_metric.loc[m]
                ci = None if n < 2 else [float(r["ci_lo"]), float(r["ci_hi"])]
                row.append({"mean": float(r["mean"]), "ci95": ci, "n": int(r["n"])})
            else:
                row.append(None)
        rows.append(row)
    ci_note = "mean [95% CI]" if n > 1 else "one replication per point: values, no intervals"
    body = [
        f"<h1>Sweep over {_e(', '.join(params))}</h1>",
        _p(
            f"{points} points simulated × {n} replications (seeds {sweep.seeds[0]}-{sweep.seeds[-1]}, the same "
            "at every point: common random numbers).",
            "meta",
        ),
        _section("grid", "Grid", grid),
    ]
    nav = [("grid", "Grid")]
    if sweep.analytic is not None:
        body.append(_analytic_section(sweep.analytic))
        nav.append(("analytic", "Analytic screen"))
    if points:
        body.append(
            _section(
                "table",
                "Aggregated table",
                _p(
                    f"Key metrics per point, {ci_note}. Every metric: sweep_summary.csv; every replication: "
                    "sweep.csv."
                ),
                table(["point", *params, *metrics], rows),
            )
        )
        body.append(_plots_section(folder))
        nav += [("table", "Table"), ("plots", "Plots")]
    return _page("simdb sweep report", nav, body)


def _analytic_section(screen: Any, show: int = 50) -> str:
    """The theory screen: how many points it evaluated and rejected, and the first rejected ones, with why."""
    out = screen.screened_out
    params = [p for p, _ in screen.grid]
    rows = [
        [int(r[0]), *r[1:-1], r[-1]]
        for r in out.head(show)[["point", *params, "reason"]].itertuples(index=False)
    ]
    more = f" The first {show} are listed; all are in analytic.csv and sweep.json." if len(out) > show else ""
    return _section(
        "analytic",
        "Analytic screen",
        _p(
            f"{len(screen.table)} grid points evaluated by theory alone (Erlang C, the connection budget, the "
            f"storage quorum) in {screen.seconds:.2f} s: {len(out)} infeasible, {len(screen.table) - len(out)} "
            f"feasible. Only feasible points are simulated.{more}"
        ),
        table(["point", *params, "reason"], rows) if rows else _p("No point was screened out."),
    )


def write_sweep(sweep: Any, folder: Path) -> Path:
    path = folder / REPORT
    path.write_text(sweep_html(sweep, folder), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ comparisons


def compare_verdict(comparison: Any) -> str:
    """One sentence: which key metrics B changes (95% interval of B − A excludes 0), or that none does."""
    key = comparison.key_rows()
    differ = key[key["differs"]]
    n = len(comparison.seeds)
    if differ.empty:
        return (
            f"B does not differ from A in any of the {len(key)} key metrics shown: every 95% interval of B − A "
            f"over {n} paired replications contains 0."
        )
    changes = "; ".join(
        f"{r.metric} {'up' if r.diff_mean > 0 else 'down'} by {fmt_number(abs(r.diff_mean))} "
        f"[{fmt_number(r.diff_lo)}, {fmt_number(r.diff_hi)}]"
        for r in differ.itertuples()
    )
    return (
        f"B differs from A in {len(differ)} of the {len(key)} key metrics shown (95% interval of B − A over "
        f"{n} paired replications excludes 0): {changes}."
    )


def _diff_rows(rows: pd.DataFrame) -> list[list[Any]]:
    return [
        [
            _Html(f"<code>{_e(r.metric)}</code>"),
            r.a_mean,
            r.b_mean,
            r.diff_mean,
            _Html(f"[{_e(fmt_number(r.diff_lo))}, {_e(fmt_number(r.diff_hi))}]"),
            _Html("<strong>differs</strong>") if r.differs else "",
        ]
        for r in rows.itertuples()
    ]


def compare_html(comparison: Any) -> str:
    """The report of a paired comparison."""
    headers = ["metric", "A mean", "B mean", "B − A", "95% CI of B − A", ""]
    key = comparison.key_rows()
    others = comparison.table[comparison.table["differs"] & ~comparison.table["metric"].isin(key["metric"])]
    n = len(comparison.seeds)
    sides = [
        ["A", comparison.label_a, comparison.a.description],
        ["B", comparison.label_b, comparison.b.description],
    ]
    if not any(d for _, _, d in sides):
        sides = [row[:2] for row in sides]
    sides_table = table(["", "scenario", "description"][: len(sides[0])], sides)
    body = [
        f"<h1>Comparison: {_e(comparison.label_a)} vs {_e(comparison.label_b)}</h1>",
        _p(
            f"{n} paired replications, seeds {comparison.seeds[0]}-{comparison.seeds[-1]}, shared by A and B "
            "(common random numbers).",
            "meta",
        ),
        sides_table,
        _section(
            "verdict",
            "Verdict",
            f'<p class="verdict">{_e(compare_verdict(comparison))}</p>',
        ),
        _section(
            "differences",
            "Differences",
            "<h3>Key metrics (A or B not 0)</h3>",
            table(headers, _diff_rows(key)) if len(key) else _p("Every key metric is 0 in A and B."),
            "<h3>Other metrics that differ</h3>",
            table(headers, _diff_rows(others))
            if len(others)
            else _p("No other metric's interval excludes 0."),
            _p("Every metric: compare.json and compare.csv; every replication: replications.csv."),
        ),
    ]
    nav = [("verdict", "Verdict"), ("differences", "Differences")]
    return _page(f"simdb comparison: {comparison.label_a} vs {comparison.label_b}", nav, body)


def write_compare(comparison: Any, folder: Path) -> Path:
    path = folder / REPORT
    path.write_text(compare_html(comparison), encoding="utf-8")
    return path
