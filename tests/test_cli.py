"""Every `simdb` subcommand: its happy path and its errors.

End-to-end checks run `python -m simdb.cli` as a real process (the interpreter running the tests), so
exit codes, stdout and stderr are exactly what a user sees; the rest call the same Typer app in-process
(CliRunner), which is several times faster. Runs use a tiny scenario simulated for 5 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from simdb import api
from simdb.cases import CASES
from simdb.cli import app
from simdb.errors import SimdbError

TINY = """\
name: tiny
description: Two tasks with small pools against one writer, for CLI tests.
seed: 3
duration: 5s
warmup: 1s
cluster:
  writer: {class: db.r6g.large}
services:
  - name: api
    tasks: 2
    pool: {max_size: 4}
    workload:
      - query: lookup
        rate: 50/s
        cpu: 1ms
expect:
  - "requests.failed == 0"
"""

RESULT_FILES = {
    "summary.json",
    "run.json",
    "timeseries.csv",
    "requests.parquet",
    "events.csv",
    "scenario.resolved.yaml",
    "report.html",
}
BUNDLED = tuple(sorted(api.bundled()))


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def simdb_process(*args: str | Path, cwd: Path | None = None) -> Ran:
    """`simdb ARGS` as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "simdb.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def simdb(*args: str | Path) -> Ran:
    """`simdb ARGS` in-process; an exception escaping the command fails the test (a traceback)."""
    result = _runner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"simdb {args} raised {result.exception!r}") from result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def one_error_line(proc: Ran) -> str:
    """The single stderr line of a command that failed with exit 2 (bad usage or bad scenario)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def resolved(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text())


def leftovers(folder: Path) -> list[str]:
    """Temporary folders a save may leave behind: `.NAME.partial-PID` and `.NAME.old-PID`."""
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "tiny.yaml").write_text(TINY)
    return folder


@pytest.fixture(scope="module")
def run_dir(work: Path) -> Path:
    """One run without plots, shared by the tests that only read its results."""
    out = work / "results"
    proc = simdb_process("run", work / "tiny.yaml", "--no-plots", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("scenario   tiny (seed 3, 5 s simulated, first 1 s warm-up)")
    assert any(line.startswith("requests   ") and " 0 failed" in line for line in lines), proc.stdout
    assert "expect     PASS  requests.failed == 0  (value 0)" in lines
    assert lines[-2].startswith(f"results    {out}/")
    assert lines[-1] == f"report     {out}/report.html"
    return out


# ------------------------------------------------------------------------------------------------- run


def test_run_writes_the_results_folder(run_dir: Path) -> None:
    assert {p.name for p in run_dir.iterdir()} == RESULT_FILES  # --no-plots: no plots folder
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["scenario"] == "tiny"
    assert summary["seed"] == 3
    assert summary["requests"]["total"] > 100  # 50/s for 5 s
    assert [c["passed"] for c in summary["expect"]] == [True]
    assert set(json.loads((run_dir / "run.json").read_text())) >= {"simdb_version", "events_processed"}
    assert len(pd.read_csv(run_dir / "timeseries.csv")) >= 4
    assert len(pd.read_parquet(run_dir / "requests.parquet")) >= summary["requests"]["total"]  # + warm-up
    pd.read_csv(run_dir / "events.csv")
    scenario = resolved(run_dir)
    assert scenario["duration"] == 5.0
    assert scenario["services"][0]["pool"]["min_idle"] == 4  # defaults are filled in
    assert leftovers(run_dir.parent) == []


def test_run_with_plots(work: Path) -> None:
    out = work / "with-plots"
    proc = simdb_process("run", work / "tiny.yaml", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert f"plots      {out}/plots/timeline.png, {out}/plots/connections.png" in proc.stdout
    for name in ("timeline.png", "connections.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_set_by_name_and_by_index_and_seed_take_effect(work: Path) -> None:
    out = work / "overridden"
    proc = simdb(
        "run",
        work / "tiny.yaml",
        "--set",
        "services.api.pool.max_size=3",
        "--set",
        "services.0.tasks=5",
        "--seed",
        "11",
        "--no-plots",
        "--quiet",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{out}\n"  # --quiet prints only the folder
    scenario = resolved(out)
    assert scenario["services"][0]["pool"]["max_size"] == 3
    assert scenario["services"][0]["tasks"] == 5
    assert scenario["seed"] == 11
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 11
    assert summary["connections"]["peak_db"] == 15  # 5 tasks x fixed-size pools of 3


def test_seed_changes_the_run_and_the_same_seed_repeats_it(work: Path, run_dir: Path) -> None:
    same, other = work / "seed-3", work / "seed-4"
    assert simdb("run", work / "tiny.yaml", "--seed", "3", "--no-plots", "-q", "--out", same).returncode == 0
    assert simdb("run", work / "tiny.yaml", "--seed", "4", "--no-plots", "-q", "--out", other).returncode == 0
    expected = (run_dir / "summary.json").read_text()
    assert (same / "summary.json").read_text() == expected
    assert (other / "summary.json").read_text() != expected


def test_failed_expect_exits_1_and_still_writes_results(work: Path) -> None:
    out = work / "failing"
    proc = simdb(
        "run", work / "tiny.yaml", "--set", 'expect=["requests.total < 0"]', "--no-plots", "--out", out
    )
    assert proc.returncode == 1, proc.stderr
    assert "expect     FAIL  requests.total < 0" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert [c["passed"] for c in summary["expect"]] == [False]


def test_default_out_is_runs_name_stamp_seed(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = work / "default-out"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    proc = simdb("run", work / "tiny.yaml", "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip())
    assert folder.parts[:2] == ("runs", "tiny") and folder.name.endswith("-seed3")
    assert (cwd / folder / "summary.json").is_file()


def test_run_a_bundled_scenario_by_name(work: Path) -> None:
    out = work / "quickstart"
    proc = simdb(
        "run",
        "quickstart",
        "--duration",
        "3s",
        "--set",
        "warmup=0s",
        "--set",
        "events=[]",
        "--no-plots",
        "-q",
        "--out",
        out,
    )
    assert proc.returncode in (0, 1), proc.stderr  # a 3 s slice may or may not meet the p99 target
    assert json.loads((out / "summary.json").read_text())["scenario"] == "quickstart"


def test_run_bad_scenario_exits_2_with_one_line(work: Path) -> None:
    bad = work / "bad.yaml"
    bad.write_text(TINY.replace("tasks: 2", "tasks: -1"))
    line = one_error_line(simdb_process("run", bad, "--no-plots", "--out", work / "never"))
    assert line.startswith(f"simdb: {bad}:10: services[0].tasks: Input should be greater than or equal to 0")
    assert not (work / "never").exists()


def test_run_bad_set_exits_2(work: Path) -> None:
    line = one_error_line(simdb("run", work / "tiny.yaml", "--set", "services.db.tasks=1", "--no-plots"))
    assert "no item 'db' in services" in line


def test_run_unknown_option_exits_2(work: Path) -> None:
    proc = simdb_process("run", work / "tiny.yaml", "--frobnicate")
    assert proc.returncode == 2
    assert "No such option" in proc.stderr and "--frobnicate" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_negative_seed_is_a_usage_error(work: Path) -> None:
    proc = simdb("run", work / "tiny.yaml", "--seed", "-1")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_out_into_a_foreign_folder_is_refused_and_left_untouched(work: Path) -> None:
    foreign = work / "my-documents"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    line = one_error_line(simdb("run", work / "tiny.yaml", "--no-plots", "--out", foreign))
    assert line == f"simdb: {foreign}: exists and is not a simdb results folder; choose another --out"
    assert [p.name for p in foreign.iterdir()] == ["thesis.txt"]
    assert (foreign / "thesis.txt").read_text() == "precious"
    assert leftovers(work) == []


def test_out_onto_a_file_is_refused(work: Path) -> None:
    target = work / "notes.txt"
    target.write_text("keep")
    line = one_error_line(simdb("run", work / "tiny.yaml", "--no-plots", "--out", target))
    assert line == f"simdb: {target}: exists and is not a folder; choose another --out"
    line = one_error_line(simdb("run", work / "tiny.yaml", "--no-plots", "--out", target / "sub"))
    assert line == f"simdb: {target / 'sub'}: {target} is not a folder; choose another --out"
    assert target.read_text() == "keep"


def test_out_onto_a_previous_results_folder_replaces_it(work: Path) -> None:
    out = work / "rerun"
    assert simdb("run", work / "tiny.yaml", "--no-plots", "-q", "--out", out).returncode == 0
    (out / "stale.txt").write_text("from an older run")
    assert simdb("run", work / "tiny.yaml", "--no-plots", "-q", "--out", out, "--seed", "9").returncode == 0
    assert {p.name for p in out.iterdir()} == RESULT_FILES
    assert resolved(out)["seed"] == 9
    assert leftovers(work) == []


# ------------------------------------------------------------------------ saving is all-or-nothing


def _tiny_result(work: Path) -> api.Result:
    return api.run(work / "tiny.yaml")


class Boom(Exception):
    pass


@pytest.mark.parametrize("error", [KeyboardInterrupt, Boom, OSError])
def test_a_save_that_fails_midway_leaves_no_folder(
    error: type[BaseException], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _tiny_result(work)
    parent = work / f"failing-save-{error.__name__}"
    parent.mkdir()
    target = parent / "results"

    def fail(*args: object, **kwargs: object) -> None:
        raise error(5, "disk on fire") if error is OSError else error()

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail)  # after summary.json and the CSVs
    with pytest.raises(SimdbError if error is OSError else error):
        result.save(target, plots=False)
    assert list(parent.iterdir()) == []


def test_a_failed_save_keeps_the_previous_results(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _tiny_result(work)
    parent = work / "keep-previous"
    parent.mkdir()
    target = result.save(parent / "results", plots=False)
    before = (target / "summary.json").read_text()

    renames: list[Path] = []
    real_rename = Path.rename

    def interrupted_second_rename(self: Path, dest: Path) -> Path:
        renames.append(self)
        if len(renames) == 2:  # old results moved aside, new ones not yet in place
            raise KeyboardInterrupt
        return real_rename(self, dest)

    monkeypatch.setattr(Path, "rename", interrupted_second_rename)
    with pytest.raises(KeyboardInterrupt):
        result.save(target, plots=False)
    monkeypatch.undo()
    assert len(renames) >= 2
    assert (target / "summary.json").read_text() == before
    assert [p.name for p in parent.iterdir()] == ["results"]


def test_cli_interrupted_during_save_exits_130_and_writes_nothing(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupt)
    parent = work / "interrupted"
    parent.mkdir()
    result = CliRunner().invoke(
        app, ["run", str(work / "tiny.yaml"), "--no-plots", "--out", str(parent / "r")]
    )
    assert result.exit_code == 130
    assert "interrupted; no results were written" in result.output
    assert list(parent.iterdir()) == []


# ------------------------------------------------------------------------------------------- validate


def test_validate_all_bundled_scenarios_by_name_and_by_path() -> None:
    paths = [api.bundled()[name] for name in BUNDLED]
    proc = simdb("validate", *BUNDLED, *paths)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 * len(BUNDLED) and all(line.startswith("ok  ") for line in lines)
    assert "ok  quickstart: quickstart (1 services, 1 events)" in lines


def test_validate_bad_file_exits_2_and_names_it(work: Path) -> None:
    bad = work / "bad-validate.yaml"
    bad.write_text(TINY.replace("rate: 50/s", "rate: 50 per second"))
    proc = simdb("validate", work / "tiny.yaml", bad)
    assert proc.stdout.startswith(f"ok  {work / 'tiny.yaml'}: tiny")
    line = one_error_line(proc)
    assert line.startswith(f"simdb: {bad}:14: services[0].workload[0].rate: '50 per second' is not a rate")


# ---------------------------------------------------------------------------------------- list, schema


def test_list_shows_the_bundled_scenarios_grouped_by_failure_case() -> None:
    proc = simdb("list")
    assert proc.returncode == 0, proc.stderr
    rows, header_of = {}, {}
    header = None
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        if not line.startswith("  "):
            header = line
            continue
        role, rest = (line[2:9].strip(), line[10:]) if line[2:9].strip() else (None, line[10:])
        name, description = rest.split(None, 1)
        rows[name] = (role, description)
        header_of[name] = header
    assert set(rows) == set(BUNDLED)
    for name in BUNDLED:
        raw = yaml.safe_load(api.bundled()[name].read_text())
        assert rows[name][1] == raw["description"].strip().splitlines()[0]
        case = raw.get("case")
        assert rows[name][0] == (case["role"] if case else None)
        assert header_of[name] == (
            CASES[case["id"]].title + f"  ({CASES[case['id']].source})" if case else "Other scenarios"
        )
    assert "course 000 case 1" in header_of["failover-dns-cache"]
    assert header_of["failover-dns-fixed"] == header_of["failover-dns-cache"]


def test_schema_is_a_json_schema_of_the_scenario_file() -> None:
    proc = simdb("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert {"name", "cluster", "services", "events", "expect"} <= set(schema["properties"])
    assert "name" in schema["required"]
    assert schema["additionalProperties"] is False
    pool = schema["$defs"]["Pool"]["properties"]["max_size"]
    assert pool["default"] == 10 and "HikariCP" in pool["description"]
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(TINY), schema)


# ------------------------------------------------------------------------------------- plot, replay


def test_plot_redraws_the_plots(run_dir: Path) -> None:
    proc = simdb("plot", run_dir)
    assert proc.returncode == 0, proc.stderr
    names = ("timeline.png", "connections.png", "stale_reads.png", "downtime.png")
    assert proc.stdout.splitlines() == [f"{run_dir}/plots/{name}" for name in names]
    for name in names:
        assert (run_dir / "plots" / name).stat().st_size > 1000
        (run_dir / "plots" / name).unlink()
    (run_dir / "plots").rmdir()  # leave the shared folder as the fixture made it


def test_plot_of_a_folder_that_is_not_a_results_folder_exits_2(work: Path) -> None:
    line = one_error_line(simdb("plot", work / "nowhere"))
    assert line.startswith(f"simdb: {work / 'nowhere'}: not a readable simdb results folder")


def test_plot_of_a_results_folder_with_a_broken_timeseries_exits_2(run_dir: Path, work: Path) -> None:
    broken = work / "broken-timeseries"
    broken.mkdir()
    for name in ("summary.json", "events.csv"):
        (broken / name).write_bytes((run_dir / name).read_bytes())
    (broken / "timeseries.csv").write_text("a,b\n1,2\n")
    line = one_error_line(simdb("plot", broken))
    assert line.startswith(f"simdb: {broken}: ")


def test_replay_is_identical(run_dir: Path) -> None:
    proc = simdb_process("replay", run_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"identical: {run_dir}/summary.json\n"


def test_replay_notices_a_different_summary(run_dir: Path, work: Path) -> None:
    copy = work / "tampered"
    copy.mkdir()
    for name in RESULT_FILES:
        (copy / name).write_bytes((run_dir / name).read_bytes())
    summary = json.loads((copy / "summary.json").read_text())
    summary["requests"]["total"] += 1
    (copy / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    proc = simdb("replay", copy)
    assert proc.returncode == 1
    assert proc.stdout.startswith("DIFFERENT")


def test_replay_of_a_missing_folder_exits_2(work: Path) -> None:
    line = one_error_line(simdb("replay", work / "nowhere"))
    assert (
        line == f"simdb: {work / 'nowhere'}: not a readable simdb results folder (No such file or directory)"
    )


def test_no_arguments_shows_help() -> None:
    proc = simdb()
    assert proc.returncode in (0, 2)  # click's no_args_is_help exit code changed between versions
    assert all(
        cmd in proc.stdout + proc.stderr for cmd in ("run", "validate", "list", "schema", "plot", "replay")
    )
