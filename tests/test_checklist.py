"""docs/checklist.md: every command in its sh blocks runs, and every number it quotes is what the run measured.

Each `simdb run ... --out runs/checklist/LABEL` is run as a real process with its --out moved into a
temporary folder; `simdb replay` and `simdb explain` on `runs/checklist/LABEL` then read that folder.
A line `Measured (LABEL): `path = value`, ...` is checked against LABEL's summary.json: integers and
booleans exactly, floats after rounding to the digits quoted. `Explain (LABEL): `id`, ...` names the
findings `simdb explain` must report.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "checklist.md"
OUT_PREFIX = "runs/checklist/"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
MEASURED = re.compile(r"^Measured \(([\w-]+)\):(.*)$", re.M)
EXPLAIN = re.compile(r"^Explain \(([\w-]+)\):(.*)$", re.M)
CLAIM = re.compile(r"`([\w.\-]+) = ([^`]+)`")
QUESTION = re.compile(r"^## (\d+)\. ", re.M)


def commands(doc: str) -> list[list[str]]:
    """Every `simdb ...` line of every sh block, split as the shell would."""
    found = []
    for block in SH_BLOCK.findall(doc):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                argv = shlex.split(line)
                assert argv[0] == "simdb", f"not a simdb command: {line}"
                found.append(argv[1:])
    return found


def label_of(path: str) -> str:
    assert path.startswith(OUT_PREFIX), f"results folders live under {OUT_PREFIX}: {path}"
    return path[len(OUT_PREFIX) :]


def simdb(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simdb.cli", *argv], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def lookup(summary: dict[str, Any], path: str) -> Any:
    node: Any = summary
    for key in path.split("."):
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def matches(actual: Any, quoted: str) -> bool:
    """Booleans and integers exactly; a float equal to the quoted one at its number of decimals."""
    if quoted in ("true", "false"):
        return actual is (quoted == "true")
    if isinstance(actual, bool) or actual is None:
        return False
    if "." not in quoted:
        return isinstance(actual, int) and actual == int(quoted)
    digits = len(quoted.split(".")[1])
    return round(float(actual), digits) == float(quoted)


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def runs(doc: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every command of the checklist once: runs two at a time (the machine's cores), then the rest."""
    folder = tmp_path_factory.mktemp("checklist")
    by_label: dict[str, list[str]] = {}
    others: list[list[str]] = []
    for argv in commands(doc):
        if argv[0] != "run":
            others.append(argv)
            continue
        assert "--out" in argv, f"every run names its --out: {argv}"
        i = argv.index("--out")
        label = label_of(argv[i + 1])
        local = [*argv[:i], "--out", str(folder / label), *argv[i + 2 :], "--quiet", "--no-plots"]
        assert by_label.setdefault(label, local) == local, f"{label} is run with two different commands"
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(by_label, pool.map(simdb, by_label.values()), strict=True))
    for label, proc in done.items():
        # 1: the shortened run fails one of the bundled scenario's own expect: lines, which is allowed
        assert proc.returncode in (0, 1), f"{label}: {proc.stderr}"
    later = {}
    for argv in others:
        assert argv[0] in ("replay", "explain"), f"unexpected command: simdb {shlex.join(argv)}"
        label = label_of(argv[1])
        later[(argv[0], label)] = simdb([argv[0], str(folder / label), *argv[2:]])
    summaries = {label: json.loads((folder / label / "summary.json").read_text()) for label in by_label}
    return {"summaries": summaries, "later": later}


def test_every_question_has_a_command_and_a_measurement(doc: str) -> None:
    sections = QUESTION.split(doc)[1:]
    numbers = [int(n) for n in sections[0::2]]
    assert numbers == list(range(1, 11))
    for number, body in zip(numbers, sections[1::2], strict=True):
        assert SH_BLOCK.search(body), f"question {number} has no sh block"
        assert MEASURED.search(body), f"question {number} has no Measured line"
        assert "course 004 §" in body, f"question {number} cites no course section"


def test_quoted_numbers_are_measured(doc: str, runs: dict[str, Any]) -> None:
    checked = 0
    wrong = []
    for label, claims in MEASURED.findall(doc):
        assert label in runs["summaries"], f"Measured ({label}): no command writes runs/checklist/{label}"
        pairs = CLAIM.findall(claims)
        assert pairs, f"Measured ({label}) quotes nothing"
        for path, quoted in pairs:
            actual = lookup(runs["summaries"][label], path)
            checked += 1
            if not matches(actual, quoted.strip()):
                wrong.append(f"{label}: {path} = {quoted} in the doc, {actual!r} measured")
    assert not wrong, "\n".join(wrong)
    assert checked >= 30


def test_replay_reproduces_and_explain_names_the_findings(doc: str, runs: dict[str, Any]) -> None:
    later = runs["later"]
    replays = [label for kind, label in later if kind == "replay"]
    assert replays, "the checklist replays no run"
    for label in replays:
        proc = later[("replay", label)]
        assert proc.returncode == 0 and proc.stdout.startswith("identical:"), (
            label,
            proc.stdout,
            proc.stderr,
        )
    for label, ids in EXPLAIN.findall(doc):
        proc = later[("explain", label)]
        assert proc.returncode == 0, (label, proc.stderr)
        for finding in re.findall(r"`([\w-]+)`", ids):
            assert f"] {finding}:" in proc.stdout, (
                f"explain {label} does not report {finding}:\n{proc.stdout}"
            )
