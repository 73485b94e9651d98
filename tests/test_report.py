"""report.html: written into every results folder, self-contained, and rendered by a real browser.

The browser checks open the file in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
and fail on any console error, page error, failed request or image that did not load. Without Chromium
they are skipped, unless SIMDB_REQUIRE_BROWSER=1 (CI sets it), where they fail and say why.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import single_instance
from test_cli import simdb_process

import simdb
from simdb import report
from simdb.analysis import explain

CHROMIUM = os.environ.get("SIMDB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# per <img>: decoded at all, and to its last row (a truncated PNG decodes, but its missing rows stay
# transparent, and the plots are drawn on an opaque background)
IMAGES_JS = """async () => Promise.all([...document.images].map(async (img) => {
    let decoded = true;
    try { await img.decode(); } catch (e) { decoded = false; }
    let cornerAlpha = -1;
    if (img.naturalWidth > 0) {
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        cornerAlpha = context.getImageData(img.naturalWidth - 1, img.naturalHeight - 1, 1, 1).data[3];
    }
    return {complete: img.complete, decoded, width: img.naturalWidth, cornerAlpha,
            scheme: img.currentSrc.split(":")[0]};
}))"""
HOSTILE = "Erlang C check <script>alert(\"x\")</script> & <b>bold</b> 'quoted'"


# ------------------------------------------------------------------------------------------ helpers


class Page(HTMLParser):
    """What a reader sees in report.html: headings, paragraphs and tables as text (entities decoded)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self.paragraphs: list[str] = []
        self.pres: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.tags: set[str] = set()
        self._open: str | None = None
        self._text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag in ("h1", "h2", "h3", "p", "pre", "td", "th"):
            self._open, self._text = tag, []

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != self._open:
            return
        text = "".join(self._text)
        if tag in self.headings:
            self.headings[tag].append(text)
        elif tag == "p":
            self.paragraphs.append(text)
        elif tag == "pre":
            self.pres.append(text)
        else:
            self.tables[-1][-1].append(text.strip())
        self._open = None

    def row(self, first: str) -> list[str]:
        """The table row whose first cell is ``first`` (exactly one must exist)."""
        rows = [r for t in self.tables for r in t if r and r[0] == first]
        assert len(rows) == 1, (first, rows)
        return rows[0]

    def rows_where(self, column: int, value: str) -> list[list[str]]:
        return [r for t in self.tables for r in t if len(r) > column and r[column] == value]


def shown(text: str) -> float:
    """The number a cell shows: '1,722' → 1722, '0.396 [0.388, 0.403]' → 0.396, 'yes' → 1."""
    head = text.split(" [")[0].split(" ")[0].replace(",", "")
    return {"yes": 1.0, "no": 0.0}[head] if head in ("yes", "no") else float(head)


def interval_shown(text: str) -> tuple[str, str, str]:
    """A cell's mean, low and high ('5 [4, 6]'); a cell without an interval is all three."""
    if " [" not in text:
        return text, text, text
    mean, rest = text.split(" [")
    lo, hi = rest.rstrip("]").split(", ")
    return mean, lo, hi


def close(text: str, value: float) -> bool:
    """Whether a cell shows ``value`` as report.fmt_number rounds it: 2 decimals from 1 up, else 3 digits."""
    x, v = shown(text), abs(value)
    step = 0.01 if v >= 1 else 10 ** (math.floor(math.log10(v)) - 2) if v else 0.0
    return abs(x - value) <= step / 2 * 1.001 + 1e-12


def png_width(path: Path) -> int:
    """Width from the PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", data[16:20])[0]


@pytest.fixture(scope="module")
def browser() -> Any:
    """Headless Chromium, or a skip (a failure when SIMDB_REQUIRE_BROWSER=1) saying what is missing."""
    missing = None
    if not Path(CHROMIUM).is_file():
        missing = (
            f"no Chromium at {CHROMIUM}: apt-get install -y --no-install-recommends chromium "
            "(or set SIMDB_CHROMIUM)"
        )
    elif importlib.util.find_spec("playwright") is None:
        missing = "the playwright package is not installed: pip install -e '.[dev]'"
    if missing:
        if os.environ.get("SIMDB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SIMDB_REQUIRE_BROWSER=1 but {missing}", pytrace=False)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        pw.stop()


def render(browser: Any, path: Path) -> dict[str, Any]:
    """Open ``path`` from the file system; what loaded and everything that went wrong on the way."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    response = page.goto(path.resolve().as_uri(), wait_until="load")
    seen = {
        "ok": response is not None and response.ok,
        "title": page.title(),
        "h2": page.locator("h2").all_inner_texts(),
        "h3": page.locator("h3").all_inner_texts(),
        "images": page.evaluate(IMAGES_JS),
        "text": page.locator("body").inner_text(),
    }
    page.close()
    seen["problems"] = problems
    return seen


def assert_clean(seen: dict[str, Any]) -> None:
    assert seen["ok"]
    assert seen["problems"] == []


def assert_images_loaded(seen: dict[str, Any], folder: Path) -> None:
    """Every plot of the folder is on the page, embedded, decoded, at the PNG's own width."""
    pngs = report.plot_files(folder)
    assert pngs, "the folder has no plots to show"
    assert [i["width"] for i in seen["images"]] == [png_width(p) for p in pngs]
    for image in seen["images"]:
        assert image["complete"] and image["decoded"] and image["scheme"] == "data", image
        assert image["cornerAlpha"] == 255, image  # decoded to the last row


# ------------------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def failover_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writer failover run through the CLI, with plots: phases, downtime windows, theory, four plots."""
    out = tmp_path_factory.mktemp("report") / "failover"
    proc = simdb_process("run", "failover-dns-cache", "--duration", "100s", "--out", out)
    assert proc.returncode == 1, proc.stderr  # its expect: lines need the full 4 min
    assert proc.stdout.splitlines()[-1] == f"report     {out}/report.html"
    return out


def test_run_report_renders_in_chromium(browser: Any, failover_run: Path) -> None:
    seen = render(browser, failover_run / "report.html")
    assert_clean(seen)
    assert seen["title"] == "simdb report: failover-dns-cache"
    for heading in (
        "Verdict",
        "Key numbers",
        "Availability and failovers",
        "Replication and staleness",
        "Theory vs simulated",
        "Plots",
        "Resolved scenario",
    ):
        assert heading in seen["h2"], seen["h2"]
    assert any(h.startswith("Failover 1: instance failure of writer at 60 s") for h in seen["h3"])
    assert "FAIL" in seen["text"] and "PASS" in seen["text"]
    assert_images_loaded(seen, failover_run)
    assert len(seen["images"]) >= 4


def test_run_report_shows_the_summary(failover_run: Path) -> None:
    summary = json.loads((failover_run / "summary.json").read_text())
    page = Page((failover_run / "report.html").read_text())
    failed = [c for c in summary["expect"] if not c["passed"]]
    assert f"FAIL {len(failed)} of {len(summary['expect'])} expect: checks failed" in page.paragraphs
    for check in summary["expect"]:
        row = page.rows_where(1, check["check"])
        assert len(row) == 1 and row[0][0] == ("PASS" if check["passed"] else "FAIL")
        assert close(row[0][2], check["value"])
    assert close(page.row("requests.total")[1], summary["requests"]["total"])
    for code, n in summary["requests"]["errors"].items():
        if n:
            assert close(page.row(code)[1], n)
    assert close(page.row("all")[-2], summary["latency_ms"]["p99"])
    failover = summary["failovers"][0]
    for key in ("detected_s", "writer_available_s", "dns_updated_s", "first_write_ok_s"):
        at, since = page.rows_where(1, key)[0][2:]
        assert close(at, failover[key]) and close(since, failover[key] - failover["start_s"])
    assert close(page.row("availability.write_downtime_s")[1], summary["availability"]["write_downtime_s"])
    assert page.pres == [(failover_run / "scenario.resolved.yaml").read_text()]
    # the findings are simdb explain's on the same folder, the stale endpoint among them
    html = (failover_run / "report.html").read_text()
    found = explain.explain_dir(failover_run)
    assert "failover-stale-endpoint" in [f.id for f in found]
    for f in found:
        assert f'id="finding-{f.id}"' in html


def test_sweep_and_compare_reports_render_in_chromium(browser: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "budget.yaml"
    scenario.write_text(
        "name: budget\nseed: 11\nduration: 20s\ncluster: {parameters: {max_connections: 600}}\n"
        "services:\n  - name: api\n    tasks: 40\n    pool: {max_size: 20}\n"
        "    workload: [{query: q, rate: 400, cpu: 1ms}]\n"
    )
    sweep_out = tmp_path / "sweep"
    proc = simdb_process(
        "sweep",
        scenario,
        "--grid",
        "services.api.pool.max_size=5,20",
        "--replications",
        "2",
        "--out",
        sweep_out,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"report     {sweep_out}/report.html"
    seen = render(browser, sweep_out / "report.html")
    assert_clean(seen)
    assert seen["title"] == "simdb sweep report"
    assert seen["h2"] == ["Grid", "Aggregated table", "Plots"]
    assert_images_loaded(seen, sweep_out)

    page = Page((sweep_out / "report.html").read_text())
    assert page.row("services.api.pool.max_size") == ["services.api.pool.max_size", "5, 20"]
    summary = pd.read_csv(sweep_out / "sweep_summary.csv")
    header = next(t[0] for t in page.tables if t[0][:2] == ["point", "services.api.pool.max_size"])
    assert "connections.rejected" in header  # 40 x 20 = 800 > 600 at one point
    for point in (0, 1):
        row = page.row(str(point))
        for metric in header[2:]:
            r = summary[(summary["point"] == point) & (summary["metric"] == metric)].iloc[0]
            mean, lo, hi = interval_shown(row[header.index(metric)])
            assert close(mean, r["mean"]) and close(lo, r["ci_lo"]) and close(hi, r["ci_hi"]), (metric, row)

    compare_out = tmp_path / "compare"
    proc = simdb_process(
        "compare",
        scenario,
        "--against",
        "--set",
        "services.api.pool.max_size=10",
        "--replications",
        "2",
        "--duration",
        "10s",
        "--out",
        compare_out,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"report     {compare_out}/report.html"
    seen = render(browser, compare_out / "report.html")
    assert_clean(seen)
    assert seen["title"] == "simdb comparison: budget vs budget services.api.pool.max_size=10"
    assert seen["h2"] == ["Verdict", "Differences"]
    assert seen["images"] == []
    doc = json.loads((compare_out / "compare.json").read_text())
    page = Page((compare_out / "report.html").read_text())
    differs = [m for m in simdb.api.KEY_METRICS if m in doc["metrics"] and doc["metrics"][m]["differs"]]
    assert "connections.rejected" in differs  # 40 x 10 = 400 fits 600: no rejections in B
    verdict = next(p for p in page.paragraphs if p.startswith("B differs from A"))
    assert f"in {len(differs)} of the" in verdict and all(m in verdict for m in differs)
    for metric in differs:
        row = page.row(metric)
        m = doc["metrics"][metric]
        assert close(row[1], m["a_mean"]) and close(row[2], m["b_mean"]) and close(row[3], m["diff"]["mean"])
        assert row[5] == "differs"


# ----------------------------------------------------------------------------------- without browser


def _hostile() -> dict[str, Any]:
    """A queueing scenario (Erlang C applies) whose description is markup."""
    data = single_instance(vcpu=2, rate=800, duration_s=30, warmup_s=5)
    data["description"] = HOSTILE
    return data


def test_scenario_text_is_escaped_and_theory_sits_beside_simulated(tmp_path: Path) -> None:
    out = simdb.run(_hostile(), out=tmp_path / "q", plots=False).out_dir
    text = (out / "report.html").read_text()
    assert "<script" not in text and "<b>bold" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in text
    page = Page(text)
    assert HOSTILE in page.paragraphs  # shown as the text it is
    assert HOSTILE in page.pres[0]  # and inside the resolved scenario
    assert page.tags.isdisjoint({"script", "b"})
    assert 'src="http' not in text and 'href="http' not in text  # nothing to fetch

    summary = json.loads((out / "summary.json").read_text())
    q, conn = summary["theory"]["queueing"], summary["connections"]
    expected = {
        "throughput on the writer (/s)": (q["arrival_rate_per_s"], q["simulated"]["throughput_per_s"]),
        "vCPU utilization": (q["utilization"], q["simulated"]["utilization"]),
        "P(wait for a vCPU)": (q["p_wait"], q["simulated"]["p_wait"]),
        "mean wait for a vCPU (Wq) (ms)": (q["wq_ms"], q["simulated"]["wq_ms"]),
        "sessions in the DB (L = λW; DBLoad)": (q["little_l"], q["simulated"]["little_l"]),
        f"peak connection demand {report.POOLS}": (
            summary["theory"]["connection_budget"]["peak_demand"],
            conn["peak_demand"],
        ),
    }
    rows = {r[1]: r[2:] for t in page.tables for r in t if len(r) == 4 and r[0].startswith(("M/M/c", "conn"))}
    for quantity, (theory, simulated) in expected.items():
        row = rows[quantity]
        assert close(row[0], theory) and close(row[1], simulated), (quantity, row, theory, simulated)
    assert any(r[0] == "M/M/c (Erlang C) on writer" for t in page.tables for r in t)
    assert "Plots" in page.headings["h2"]
    assert page.images == []  # --no-plots
    assert any("--no-plots" in p for p in page.paragraphs)


def test_replications_report_shows_means_with_intervals(tmp_path: Path) -> None:
    result = simdb.run_replications(_hostile(), 3, workers=1, out=tmp_path / "reps", plots=False)
    page = Page((result.out_dir / "report.html").read_text())
    seeds = result.summary["replications"]["seeds"]
    assert page.paragraphs[0].startswith(
        f"3 replications, seeds {seeds[0]}-{seeds[-1]}; numbers are mean [95% CI]"
    )
    ok = result.summary["requests"]["ok"]
    mean, lo, hi = interval_shown(page.row("requests.ok")[1])
    assert close(mean, ok["mean"]) and close(lo, ok["ci95"][0]) and close(hi, ok["ci95"][1])
    utilization = result.summary["theory"]["queueing"]["simulated"]["utilization"]
    row = next(r for t in page.tables for r in t if len(r) == 4 and r[1] == "vCPU utilization")
    assert close(row[3], utilization["mean"]) and " [" in row[3]


def test_findings_render_escaped_and_match_simdb_explain(tmp_path: Path) -> None:
    class Finding:
        title = "Pool <max_size> too large"
        why = "40 tasks x 20 > max_connections & more"
        detect = "connections.rejected > 0"
        fix = "max_size: 10"

    html = report.findings_section(
        [Finding(), {"title": "DNS cached", "why": "30 s TTL", "detect": "read_only", "fix": None}]
    )
    page = Page(html)
    assert page.headings["h2"] == ["Findings"]
    assert page.headings["h3"] == ["Pool <max_size> too large", "DNS cached"]
    assert "&lt;max_size&gt;" in html and "&amp; more" in html
    assert html.count("<dt>Fix</dt>") == 1  # a finding without a fix shows none
    assert "No findings" in report.findings_section([])

    result = simdb.run(_hostile(), duration="10s", out=tmp_path / "f", plots=False)
    headings = Page((result.out_dir / "report.html").read_text()).headings["h2"]
    assert "Findings" in headings
    assert [f.id for f in report.run_findings(result)] == [f.id for f in explain.explain_dir(result.out_dir)]
