"""The scenario-error contract.

A wrong scenario file prints one line naming file, line, field and what is allowed, exits 2, and never
a traceback. Hand-written cases pin the message for each kind of mistake; Hypothesis then mutates a
valid scenario (and throws random bytes and text at the loader) to check that nothing but
ScenarioError ever escapes and that the message stays one line starting with the file path.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from simdb import scenario
from simdb.cli import app
from simdb.errors import ScenarioError, one_line

# A frozen copy of scenarios/quickstart.yaml: the expected line numbers below are counted in this text,
# so edits to the bundled scenario do not move them.
BASE_TEXT = """\
name: quickstart
description: >-
  Aurora PostgreSQL writer and one reader behind an API fleet of 10 ECS tasks; the fleet scales to 15
  tasks at 2 min. Reads go to the reader endpoint, writes to the writer.
seed: 1
duration: 4min
warmup: 30s
timeseries_interval: 1s

cluster:
  engine: aurora-postgresql
  topology: aurora
  writer: {class: db.r6g.large, az: a}
  readers:
    - {class: db.r6g.large, az: b}

services:
  - name: api
    kind: ecs
    tasks: 10
    pool: {max_size: 10, min_idle: 10, connection_timeout: 30s}
    connect_via: writer
    sessions: 5000
    workload:
      - query: read_order
        kind: read
        route: reader
        rate: 1200/s
        cpu: 1ms
        keys: {count: 100000, distribution: zipf, s: 1.1}
      - query: place_order
        kind: write
        route: writer
        rate: 150/s
        cpu: 3ms
        transaction: {hold: 2ms}

events:
  - {at: 2min, action: scale_service, service: api, tasks: 15}

expect:
  - "requests.errors.too_many_connections == 0"
  - "pool.acquire_timeouts == 0"
  - "latency_ms.p99 < 50"
"""
BASE = yaml.safe_load(BASE_TEXT)


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


RUNNER = _runner()


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None


def validate_cli(*args: str) -> Outcome:
    """`simdb validate ARGS` in-process (fast); `exception` is what escaped the command, if anything."""
    result = RUNNER.invoke(app, ["validate", *args])
    return Outcome(result.exit_code, result.stdout, result.stderr, result.exception)


def validate_subprocess(*args: str) -> Outcome:
    """`simdb validate ARGS` as a real process: what a user sees on the terminal."""
    proc = subprocess.run(
        [sys.executable, "-m", "simdb.cli", "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(outcome: Outcome) -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr, no traceback; returns that line."""
    assert outcome.code == 2, (outcome.code, outcome.stdout, outcome.stderr)
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), outcome.exception
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    assert outcome.stdout == ""
    return lines[0]


def edit(text: str, old: str, new: str) -> str:
    """``text`` with the one occurrence of ``old`` replaced (so a stale edit fails loudly, not silently)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the ``occurrence``-th ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found")


# ---------------------------------------------------------------------------------- hand-written cases


@dataclass
class Case:
    id: str
    text: str | bytes
    line: int | None  # None: the error has no line (the file as a whole)
    field: str  # "" when the message names no field
    allowed: list[str] = field(default_factory=list)  # what the message must say is allowed / expected


def _cases() -> list[Case]:
    t = BASE_TEXT
    cases = [
        Case(
            "unknown-key-did-you-mean",
            (x := edit(t, "pool: {max_size: 10,", "pool: {max_sise: 10,")),
            line_of(x, "max_sise"),
            "services[0].pool.max_sise",
            ["unknown field 'max_sise'", "did you mean 'max_size'?", "allowed: max_size, min_idle"],
        ),
        Case(
            "wrong-type",
            (x := edit(t, "    tasks: 10\n", '    tasks: "many"\n')),
            line_of(x, '"many"'),
            "services[0].tasks",
            ["valid integer", "'many'"],
        ),
        Case(
            "negative-duration",
            (x := edit(t, "duration: 4min", "duration: -5s")),
            line_of(x, "-5s"),
            "duration",
            ["'-5s'", "250ms, 5s, 10min, 1h"],
        ),
        Case(
            "bad-unit",
            (x := edit(t, "duration: 4min", "duration: 10 parsecs")),
            line_of(x, "parsecs"),
            "duration",
            ["'10 parsecs'", "250ms, 5s, 10min, 1h"],
        ),
        Case(
            "unknown-instance-class",
            (x := edit(t, "writer: {class: db.r6g.large", "writer: {class: db.r6g.huge")),
            line_of(x, "db.r6g.huge"),
            "cluster.writer.class",
            ["'db.r6g.huge'", "did you mean 'db.r6g.", "known families:", "db.r7g"],
        ),
        Case(
            "unknown-event-action",
            (x := edit(t, "action: scale_service", "action: explode")),
            line_of(x, "explode"),
            "events[0]",
            ["unknown action 'explode'", "allowed: deploy, scale_service, write_spike"],
        ),
        Case(
            "event-for-unknown-service",
            (x := edit(t, "service: api, tasks: 15", "service: apu, tasks: 15")),
            line_of(x, "service: apu"),
            "events[0].service",
            ["no service named 'apu'", "did you mean 'api'?", "services: api"],
        ),
        Case(
            "event-after-the-end",
            (x := edit(t, "- {at: 2min,", "- {at: 5min,")),
            line_of(x, "at: 5min"),
            "events[0].at",
            ["300 s", "before the end of the run (240 s)"],
        ),
        Case(
            "warmup-not-shorter-than-duration",
            (x := edit(t, "warmup: 30s", "warmup: 4min")),
            line_of(x, "warmup:"),
            "warmup",
            ["must be shorter than duration (240 s)"],
        ),
        Case(
            "unknown-route",
            (x := edit(t, "route: reader", "route: custom:olap")),
            line_of(x, "custom:olap"),
            "services[0].workload[0].route",
            ["unknown route 'custom:olap'", "allowed: reader, writer"],
        ),
        Case(
            "write-routed-to-reader",
            (x := edit(t, "route: writer", "route: reader")),
            line_of(x, "route: reader", occurrence=2),
            "services[0].workload[1].route",
            ["writes must route to the writer"],
        ),
        Case(
            "duplicate-key",
            (x := edit(t, "seed: 1\n", "seed: 1\nseed: 2\n")),
            line_of(x, "seed: 2"),
            "seed",
            ["key 'seed' appears twice"],
        ),
        Case(
            "unclosed-bracket",
            (x := edit(t, "tasks: 15}", "tasks: 15")),
            # the parser notices at the next key; the message names the line the mapping began on
            line_of(x, "expect:"),
            "",
            ["not valid YAML", f"flow mapping at line {line_of(x, 'tasks: 15')}"],
        ),
        Case("empty-file", "", 1, "", ["empty", "`name:`"]),
        Case("only-a-comment", "# nothing here\n", 1, "", ["empty", "`name:`"]),
        Case(
            "top-level-list",
            "- name: x\n- name: y\n",
            1,
            "",
            ["a scenario is a mapping of fields (name, cluster, services, ...)", "not list"],
        ),
        Case(
            "huge-tasks",
            (x := edit(t, "    tasks: 10\n", f"    tasks: {10**30}\n")),
            line_of(x, str(10**30)),
            "services[0].tasks",
            ["less than or equal to 100000"],
        ),
        Case(
            "huge-rate",
            (x := edit(t, "rate: 1200/s", 'rate: "1e300/s"')),
            line_of(x, "1e300/s"),
            "services[0].workload[0].rate",
            ["less than or equal to 10000000", "'1e300/s'"],
        ),
        Case(
            "bad-expect-syntax",
            (x := edit(t, '"latency_ms.p99 < 50"', '"latency_ms.p99 << 50"')),
            line_of(x, "<< 50"),
            "expect[2]",
            ["'latency_ms.p99 << 50'", "<summary.path> <op> <number>", "== != < <= > >="],
        ),
        # ---- regressions for bugs these tests found
        Case(
            "expect-right-hand-side-nan",
            (x := edit(t, '"latency_ms.p99 < 50"', '"latency_ms.p99 < nan"')),
            line_of(x, "< nan"),
            "expect[2]",
            ["not a finite number"],
        ),
        Case(
            "unknown-key-in-event-lists-its-fields",
            (x := edit(t, "service: api, tasks: 15}", "service: api, taks: 15}")),
            line_of(x, "taks"),
            "events[0].taks",
            ["unknown field 'taks'", "did you mean 'tasks'?", "allowed: at, action, service, tasks"],
        ),
        Case(
            "unknown-key-named-like-an-event-action",
            (x := edit(t, "- {class: db.r6g.large, az: b}", "- {class: db.r6g.large, az: b, deploy: 1}")),
            line_of(x, "deploy: 1"),
            "cluster.readers[0].deploy",
            ["unknown field 'deploy'", "allowed: name, class, az"],
        ),
        Case(
            "list-as-key",
            (x := edit(t, "pool: {max_size: 10,", "pool: {[1, 2]: 3, max_size: 10,")),
            line_of(x, "[1, 2]"),
            "services[0].pool",
            ["a key must be a field name"],
        ),
        Case(
            "number-as-key",
            (x := edit(t, "seed: 1\n", "1: 1\n")),
            line_of(x, "1: 1"),
            "",
            ["key '1' is not a field name"],
        ),
        Case(
            "invalid-date",
            (x := edit(t, "duration: 4min", "duration: 2024-13-45")),
            line_of(x, "2024-13-45"),
            "",
            ["not valid YAML", "'2024-13-45' is not a valid timestamp"],
        ),
        Case(
            "integer-beyond-python-digit-limit",
            (x := edit(t, "seed: 1\n", f"seed: {'9' * 5000}\n")),
            line_of(x, "seed: 999"),
            "",
            ["not valid YAML", "is not a valid int"],
        ),
        Case(
            "huge-sexagesimal-integer",
            (x := edit(t, "seed: 1\n", f"seed: {':'.join(['59'] * 3000)}\n")),
            line_of(x, "seed: 59"),
            "seed",
            ["less than or equal to 9223372036854775807"],
        ),
        Case(
            "duration-too-large-for-a-float",
            (x := edit(t, "duration: 4min", f"duration: {'9' * 400}")),
            line_of(x, "duration: 999"),
            "duration",
            ["too large", "250ms, 5s, 10min, 1h"],
        ),
        Case(
            "nul-character",
            (x := edit(t, "description: >-", "description: \x00")),
            line_of(x, "description:"),
            "",
            ["control character #x0000"],
        ),
        Case("deeply-nested", "name: " + "[" * 1000 + "]" * 1000 + "\n", None, "", ["nested too deeply"]),
        Case(
            "self-referencing-anchor",
            "name: x\nservices: &s [*s]\n",
            2,
            "services[0]",
            ["valid dictionary"],
        ),
        Case(
            "line-break-in-key",
            (x := edit(t, "seed: 1\n", '"se\\ned": 1\n')),
            line_of(x, '"se\\ned"'),
            "se\\ned",
            ["unknown field 'se\\ned'", "allowed: name, description, seed"],
        ),
        Case(
            "failure-of-an-unknown-instance",
            (
                x := edit(
                    t,
                    "action: scale_service, service: api, tasks: 15}",
                    "action: instance_failure, target: reader-2}",
                )
            ),
            line_of(x, "instance_failure"),
            "events[0].target",
            ["no instance named 'reader-2'", "did you mean 'reader-1'?", "instances: writer, reader-1"],
        ),
        Case(
            "failover-to-the-writer",
            (
                x := edit(
                    t, "action: scale_service, service: api, tasks: 15}", "action: failover, to: writer}"
                )
            ),
            line_of(x, "action: failover"),
            "events[0].to",
            ["no reader named 'writer'", "readers: reader-1"],
        ),
        Case(
            "failover-mode-unknown",
            (
                x := edit(
                    t,
                    "action: scale_service, service: api, tasks: 15}",
                    "action: instance_failure, mode: crash}",
                )
            ),
            line_of(x, "instance_failure"),
            "events[0].mode",
            ["'reset' or 'blackhole'"],
        ),
        Case(
            "failover-phase-reversed",
            (
                x := edit(
                    t,
                    "  topology: aurora\n",
                    "  topology: aurora\n  failover: {promotion: {min: 20s, max: 10s}}\n",
                )
            ),
            line_of(x, "failover:"),
            "cluster.failover.promotion",
            ["max (10 s) must be at least min (20 s)"],
        ),
        Case(
            "dns-cache-not-a-duration",
            (x := edit(t, "    connect_via: writer\n", "    connect_via: writer\n    dns_cache: always\n")),
            line_of(x, "dns_cache"),
            "services[0].dns_cache",
            ["or forever"],
        ),
        Case(
            "jitter-unknown",
            (
                x := edit(
                    t,
                    "    connect_via: writer\n",
                    "    connect_via: writer\n    reconnect: {jitter: random}\n",
                )
            ),
            line_of(x, "reconnect"),
            "services[0].reconnect.jitter",
            ["'none', 'full' or 'equal'"],
        ),
        Case(
            "proxy-route-without-proxy",
            (x := edit(t, "    connect_via: writer\n", "    connect_via: proxy\n")),
            line_of(x, "connect_via: proxy"),
            "services[0].connect_via",
            ["there is no proxy; add cluster.proxy"],
        ),
        Case(
            "proxy-idle-above-max",
            (
                x := edit(
                    t,
                    "  topology: aurora\n",
                    "  topology: aurora\n  proxy: {max_connections_percent: 40, max_idle_connections_percent: 60}\n",
                )
            ),
            line_of(x, "proxy:"),
            "cluster.proxy",
            ["max_idle_connections_percent (60) must be at most max_connections_percent (40)"],
        ),
        Case(
            "ecs-fleet-turned-lambda",
            (x := edit(t, "    kind: ecs\n", "    kind: lambda\n")),
            line_of(x, "name: api"),
            "services[0]",
            ["pool.max_size, pool.min_idle, pool.connection_timeout do not apply to a lambda service"],
        ),
        Case(
            "lambda-handler-field-wrong",
            (
                x := edit(
                    t,
                    "services:\n",
                    "services:\n  - name: fn\n    kind: lambda\n    invocations: {rate: 5/s}\n"
                    "    handler: {query: h, cpu: lots}\n",
                )
            ),
            line_of(x, "handler:"),
            "services[0].handler.cpu",
            ["duration"],
        ),
        Case(
            "lambda-pool-size",
            (
                x := edit(
                    t,
                    "services:\n",
                    "services:\n  - name: fn\n    kind: lambda\n    pool: {max_size: 5}\n"
                    "    invocations: {rate: 5/s}\n    handler: {query: h}\n",
                )
            ),
            line_of(x, "name: fn"),
            "services[0]",
            ["pool.max_size does not apply to a lambda service"],
        ),
        Case(
            "lambda-reserved-over-account",
            (
                x := edit(
                    t,
                    "services:\n",
                    "services:\n  - name: fn\n    kind: lambda\n    reserved_concurrency: 950\n"
                    "    invocations: {rate: 5/s}\n    handler: {query: h}\n",
                )
            ),
            line_of(x, "reserved_concurrency"),
            "services[0].reserved_concurrency",
            ["at least 100 of the account's 1000 must stay unreserved"],
        ),
        Case(
            "lambda-only-field-on-ecs",
            (
                x := edit(
                    t, "    connect_via: writer\n", "    connect_via: writer\n    reserved_concurrency: 5\n"
                )
            ),
            line_of(x, "name: api"),
            "services[0]",
            ["reserved_concurrency apply only to kind: lambda"],
        ),
        Case(
            "serverless-without-range",
            (x := edit(t, "writer: {class: db.r6g.large, az: a}", "writer: {class: db.serverless, az: a}")),
            line_of(x, "writer:"),
            "cluster.writer.class",
            ["db.serverless needs the cluster's capacity range: cluster.serverless {min_acu, max_acu}"],
        ),
        Case(
            "serverless-range-without-serverless-instance",
            (
                x := edit(
                    t,
                    "  topology: aurora\n",
                    "  topology: aurora\n  serverless: {min_acu: 0.5, max_acu: 8}\n",
                )
            ),
            line_of(x, "serverless:"),
            "cluster.serverless",
            ["this cluster has none; set the writer's or a reader's class to db.serverless"],
        ),
        Case(
            "serverless-acu-not-half-step",
            (
                x := edit(
                    t,
                    "  topology: aurora\n  writer: {class: db.r6g.large, az: a}\n",
                    "  topology: aurora\n  writer: {class: db.serverless, az: a}\n"
                    "  serverless: {min_acu: 0.3, max_acu: 8}\n",
                )
            ),
            line_of(x, "serverless:"),
            "cluster.serverless.min_acu",
            ["0.3 is not a multiple of 0.5 ACU"],
        ),
        Case(
            "serverless-min-above-max",
            (
                x := edit(
                    t,
                    "  topology: aurora\n  writer: {class: db.r6g.large, az: a}\n",
                    "  topology: aurora\n  writer: {class: db.serverless, az: a}\n"
                    "  serverless: {min_acu: 16, max_acu: 8}\n",
                )
            ),
            line_of(x, "serverless:"),
            "cluster.serverless",
            ["min_acu (16) must be at most max_acu (8)"],
        ),
        Case(
            "serverless-pause-without-min-0",
            (
                x := edit(
                    t,
                    "  topology: aurora\n  writer: {class: db.r6g.large, az: a}\n",
                    "  topology: aurora\n  writer: {class: db.serverless, az: a}\n"
                    "  serverless: {min_acu: 1, max_acu: 8, seconds_until_auto_pause: 600}\n",
                )
            ),
            line_of(x, "serverless:"),
            "cluster.serverless",
            ["seconds_until_auto_pause applies only with min_acu 0"],
        ),
        Case(
            "idle-timeout-on-mysql",
            (
                x := edit(
                    t,
                    "  engine: aurora-postgresql\n",
                    "  engine: aurora-mysql\n  parameters: {idle_in_transaction_session_timeout: 60000}\n",
                )
            ),
            line_of(x, "parameters:"),
            "cluster.parameters.idle_in_transaction_session_timeout",
            ["is a PostgreSQL parameter; aurora-mysql has none"],
        ),
        Case(
            "idle-in-transaction-unknown-service",
            (
                x := edit(
                    t,
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n",
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n"
                    "  - {at: 1min, action: idle_in_transaction, service: apx, sessions: 2}\n",
                )
            ),
            line_of(x, "action: idle_in_transaction"),
            "events[1].service",
            ["no service named 'apx'; did you mean 'api'?"],
        ),
        Case(
            "locks-on-a-read",
            (
                x := edit(
                    t,
                    "        cpu: 1ms\n",
                    "        cpu: 1ms\n        transaction: {locks: 1}\n",
                )
            ),
            line_of(x, "transaction: {locks: 1}"),
            "services[0].workload[0].transaction.locks",
            ["row locks are taken by writes", "kind: write", "locks: 0"],
        ),
        Case(
            "more-locks-than-keys",
            (
                x := edit(
                    t,
                    "        transaction: {hold: 2ms}\n",
                    "        keys: {count: 2}\n        transaction: {hold: 2ms, locks: 3}\n",
                )
            ),
            line_of(x, "locks: 3"),
            "services[0].workload[1].transaction.locks",
            ["locks (3) is more than the query's distinct keys (keys.count 2)"],
        ),
        Case(
            "negative-locks",
            (x := edit(t, "transaction: {hold: 2ms}", "transaction: {hold: 2ms, locks: -1}")),
            line_of(x, "locks: -1"),
            "services[0].workload[1].transaction.locks",
            ["greater than or equal to 0"],
        ),
        Case(
            "lock-timeout-not-a-duration",
            (
                x := edit(
                    t,
                    "  engine: aurora-postgresql\n",
                    "  engine: aurora-postgresql\n  parameters: {lock_timeout: soon}\n",
                )
            ),
            line_of(x, "lock_timeout"),
            "cluster.parameters.lock_timeout",
            ["'soon'", "a bare number means milliseconds"],
        ),
        Case(
            "lock-timeout-on-mysql",
            (
                x := edit(
                    t,
                    "  engine: aurora-postgresql\n",
                    "  engine: aurora-mysql\n  parameters: {lock_timeout: 2000}\n",
                )
            ),
            line_of(x, "parameters:"),
            "cluster.parameters.lock_timeout",
            ["lock_timeout is a PostgreSQL parameter", "innodb_lock_wait_timeout"],
        ),
        Case(
            "innodb-lock-wait-timeout-on-postgres",
            (
                x := edit(
                    t,
                    "  engine: aurora-postgresql\n",
                    "  engine: aurora-postgresql\n  parameters: {innodb_lock_wait_timeout: 50}\n",
                )
            ),
            line_of(x, "parameters:"),
            "cluster.parameters.innodb_lock_wait_timeout",
            ["innodb_lock_wait_timeout is a MySQL parameter", "lock_timeout (ms)"],
        ),
        Case(
            "batch-update-unknown-service",
            (
                x := edit(
                    t,
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n",
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n"
                    "  - {at: 1min, action: batch_update, service: apx, keys: 10, duration: 30s}\n",
                )
            ),
            line_of(x, "action: batch_update"),
            "events[1].service",
            ["no service named 'apx'; did you mean 'api'?"],
        ),
        Case(
            "batch-update-no-keys",
            (
                x := edit(
                    t,
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n",
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n"
                    "  - {at: 1min, action: batch_update, keys: 0, duration: 30s}\n",
                )
            ),
            line_of(x, "action: batch_update"),
            "events[1].keys",
            ["greater than or equal to 1"],
        ),
        Case(
            "batch-update-without-duration",
            (
                x := edit(
                    t,
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n",
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n"
                    "  - {at: 1min, action: batch_update, keys: 5}\n",
                )
            ),
            line_of(x, "action: batch_update"),
            "events[1].duration",
            ["required"],
        ),
        Case(
            "long-transaction-negative-keys",
            (
                x := edit(
                    t,
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n",
                    "  - {at: 2min, action: scale_service, service: api, tasks: 15}\n"
                    "  - {at: 1min, action: long_transaction, service: api, duration: 30s, keys: -2}\n",
                )
            ),
            line_of(x, "action: long_transaction"),
            "events[1].keys",
            ["greater than or equal to 0"],
        ),
        Case(
            "not-utf8",
            b"name: x\ndescription: caf\xe9\n",
            2,
            "",
            ["not UTF-8 text", "0xe9"],
        ),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_wrong_scenario_prints_one_line_with_file_line_field_and_allowed(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")

    line = assert_one_line_error(validate_cli(str(path)))

    where = f"simdb: {path}" + (f":{case.line}" if case.line is not None else "") + ": "
    assert line.startswith(where), (line, where)
    rest = line[len(where) :]
    if case.field:
        assert rest.startswith(f"{case.field}: "), (rest, case.field)
    for fragment in case.allowed:
        assert fragment in rest, (fragment, line)
    # the library raises the same message the CLI prints
    with pytest.raises(ScenarioError) as info:
        scenario.load(path)
    assert f"simdb: {info.value}" == line


def test_alias_bomb_is_rejected_quickly(tmp_path: Path) -> None:
    """A "billion laughs" document: 9**7 list items by alias. It was walked node by node (36 s)."""
    levels = ["a: &a [1, 2]"]
    for prev, name in zip("abcdef", "bcdefg", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\nname: x\nexpect: *g\n", encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        scenario.load(path)
    assert time.perf_counter() - started < 5
    assert str(info.value).startswith(f"{path}:1: a: unknown field 'a'"), info.value


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    line = assert_one_line_error(validate_cli(str(path)))
    assert line == f"simdb: {path}: no such file"


def test_unknown_bundled_name_suggests_the_close_one() -> None:
    line = assert_one_line_error(validate_cli("quikstart"))
    assert line.startswith("simdb: quikstart: no such file or bundled scenario; did you mean 'quickstart'?")


def test_directory(tmp_path: Path) -> None:
    line = assert_one_line_error(validate_cli(str(tmp_path)))
    assert line == f"simdb: {tmp_path}: is a directory, not a scenario file"


def _quickstart_copy(tmp_path: Path) -> Path:
    path = tmp_path / "quickstart.yaml"
    path.write_text(BASE_TEXT, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        (
            "services.7.tasks=2",
            "--set services.7.tasks: no item '7' in services (use an index 0-0 or a name: api)",
        ),
        (
            "services.api.workload.nope.rate=1",
            "--set services.api.workload.nope.rate: no item 'nope' in services.api.workload "
            "(use an index 0-1 or a name: read_order, place_order)",
        ),
        ("services.0.pool.max_size", "--set 'services.0.pool.max_size': expected path=value"),
        ("=3", "--set '=3': empty path"),
        (
            "services.api.tasks.x=1",
            "--set services.api.tasks.x: services.api.tasks is 10, not a mapping or list",
        ),
    ],
    ids=["missing-list-item", "missing-query", "no-equals", "empty-path", "into-a-scalar"],
)
def test_bad_set(assignment: str, expected: str, tmp_path: Path) -> None:
    path = _quickstart_copy(tmp_path)
    line = assert_one_line_error(validate_cli(str(path), "--set", assignment))
    assert line.startswith(f"simdb: {path}: {expected}"), line


def test_set_value_that_is_wrong_names_the_field_but_no_file_line(tmp_path: Path) -> None:
    """The value came from the command line: pointing at the file's `tasks: 10` line would mislead."""
    path = _quickstart_copy(tmp_path)
    line = assert_one_line_error(validate_cli(str(path), "--set", "services.api.tasks=many"))
    assert line.startswith(f"simdb: {path}: services[0].tasks: Input should be a valid integer"), line


@pytest.mark.parametrize("value", ["2020-99-99", "0b_", "[" * 1000])
def test_set_value_yaml_cannot_build_is_taken_as_text(value: str, tmp_path: Path) -> None:
    path = _quickstart_copy(tmp_path)
    line = assert_one_line_error(validate_cli(str(path), "--set", f"duration={value}"))
    assert line.startswith(f"simdb: {path}: duration: "), line
    assert "is not a duration such as" in line


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"name: [unclosed\n", id="broken-yaml"),
        pytest.param(b"name: x\n\xff\xfe\n", id="not-utf8"),
        pytest.param(b"name: " + b"{a: " * 1000 + b"1" + b"}" * 1000 + b"\n", id="deep-nesting"),
        pytest.param(b"name: x\nservices: [{name: a, workload: [{query: q, rate: 1e999/s}]}]\n", id="rate"),
    ],
)
def test_real_process_prints_one_line_and_exits_2(content: bytes, tmp_path: Path) -> None:
    """The same contract through `python -m simdb.cli`: no traceback reaches the terminal."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    line = assert_one_line_error(validate_subprocess(str(path)))
    assert line.startswith(f"simdb: {path}:"), line


def test_valid_file_passes_through_the_same_checks(tmp_path: Path) -> None:
    """The harness can tell good from bad: the unmodified scenario validates."""
    outcome = validate_cli(str(_quickstart_copy(tmp_path)))
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout.startswith("ok  ")
    assert outcome.stderr == ""


# ------------------------------------------------------------------------------- property-based tests

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``node``: mapping keys and list indexes, containers and leaves alike."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(value, (*prefix, i)))
    return out


def _get(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


ALL_PATHS = _paths(BASE)
LEAF_PATHS = [p for p in ALL_PATHS if not isinstance(_get(BASE, p), dict | list)]
MAPPING_PATHS = [(), *(p for p in ALL_PATHS if isinstance(_get(BASE, p), dict))]
REQUIRED_PATHS = [
    ("name",),
    ("services", 0, "name"),
    ("services", 0, "workload"),
    ("services", 0, "workload", 0, "query"),
    ("events", 0, "at"),
    ("events", 0, "action"),
    ("events", 0, "service"),
    ("events", 0, "tasks"),
]

bad_values = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -1, -5, 0, 10**30, 2**63, 1e300, -1e-9]),
    st.sampled_from(["", " ", "-5s", "10 parsecs", "1e300/s", "nan", "inf", "1e999", "5", "0s", "many"]),
    st.text(max_size=30),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just({"nested": {"deeper": [1, {"x": None}]}}),
)
unknown_keys = st.one_of(
    st.text(min_size=1, max_size=15),
    st.sampled_from(["max_sise", "rat", "tasks_", "clas", "durration", "Name", "for_", "class_", "deploy"]),
)


def _field_names() -> set[str]:
    """Names a mapping may legitimately hold somewhere (python names and aliases of every model)."""
    names: set[str] = set()
    pending: list[Any] = [scenario.Scenario]
    while pending:
        model = pending.pop()
        for name, info in model.model_fields.items():
            names.update({name, info.alias} - {None})
            pending.extend(m for m in scenario._unwrap(info.annotation) if m is not model)
    return names


FIELD_NAMES = _field_names()


def _load_or_error(raw: Any, path: Path) -> scenario.Scenario | ScenarioError:
    r"""Dump ``raw`` as YAML to ``path`` and load it: a Scenario or a ScenarioError, never anything else.

    Non-ASCII is written escaped: PyYAML's emitter mangles a key like "\x85" when it may write it raw.
    """
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return _load_file(path)


def _load_file(path: Path) -> scenario.Scenario | ScenarioError:
    try:
        return scenario.load(path)
    except ScenarioError as exc:
        message = str(exc)
        assert len(message.splitlines()) == 1 and message.isprintable(), repr(message)
        assert message.startswith(f"{path}:"), message
        # YAML also breaks lines at \r, \x85, \u2028 and \u2029, all of which splitlines() knows
        lines_in_file = len(path.read_bytes().decode("utf-8", errors="replace").splitlines()) + 1
        assert exc.line is None or 1 <= exc.line <= lines_in_file, (exc.line, message)
        return exc


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios") / "mutated.yaml"


@settings(PROPERTY, max_examples=150)
@given(where=st.sampled_from(ALL_PATHS), value=bad_values)
def test_replacing_a_value_gives_a_scenario_or_one_line_error(
    where: tuple, value: Any, scratch: Path
) -> None:
    """Any value (a leaf, or a whole mapping or list) replaced by one of the wrong type, sign or size."""
    raw = copy.deepcopy(BASE)
    parent = _get(raw, where[:-1])
    parent[where[-1]] = value
    _load_or_error(raw, scratch)


@settings(PROPERTY, max_examples=100)
@given(where=st.sampled_from(MAPPING_PATHS), key=unknown_keys, value=bad_values)
def test_an_unknown_key_anywhere_is_named_with_what_is_allowed(
    where: tuple, key: str, value: Any, scratch: Path
) -> None:
    target = _get(BASE, where)
    assume(key not in target and key not in FIELD_NAMES)
    raw = copy.deepcopy(BASE)
    _get(raw, where)[key] = value
    outcome = _load_or_error(raw, scratch)
    assert isinstance(outcome, ScenarioError), f"unknown key {key!r} at {where} was accepted"
    assert "unknown field" in outcome.detail, outcome
    allowed = outcome.detail.split("(allowed: ", 1)[1]
    assert allowed[0].isalpha(), outcome  # a non-empty list of field names
    assert outcome.field.endswith(one_line(key)), (outcome.field, key)


@settings(PROPERTY, max_examples=60)
@given(where=st.sampled_from(ALL_PATHS))
def test_deleting_a_key_or_item_gives_a_scenario_or_one_line_error(where: tuple, scratch: Path) -> None:
    raw = copy.deepcopy(BASE)
    del _get(raw, where[:-1])[where[-1]]
    _load_or_error(raw, scratch)


@pytest.mark.parametrize("where", REQUIRED_PATHS, ids=[scenario._format_path(p) for p in REQUIRED_PATHS])
def test_deleting_a_required_key_is_an_error(where: tuple, tmp_path: Path) -> None:
    raw = copy.deepcopy(BASE)
    del _get(raw, where[:-1])[where[-1]]
    outcome = _load_or_error(raw, tmp_path / "scenario.yaml")
    assert isinstance(outcome, ScenarioError)
    assert outcome.field.startswith(scenario._format_path(where[:2])), outcome


@settings(PROPERTY, max_examples=100)
@given(content=st.binary(max_size=300))
def test_random_bytes_give_a_scenario_or_one_line_error(content: bytes, scratch: Path) -> None:
    scratch.write_bytes(content)
    _load_file(scratch)


yamlish = st.text(
    alphabet="{}[]:,-&*!|>'\"#%@`?<=~\\ \t\n\r.0123456789eE+_absxyz/\x00\x85\u2028", max_size=120
)


@settings(PROPERTY, max_examples=150)
@given(content=st.one_of(st.text(max_size=200), yamlish))
def test_random_text_gives_a_scenario_or_one_line_error(content: str, scratch: Path) -> None:
    scratch.write_text(content, encoding="utf-8")
    _load_file(scratch)


@settings(PROPERTY, max_examples=100)
@given(at=st.integers(min_value=0, max_value=len(BASE_TEXT)), insert=st.one_of(yamlish, st.text(max_size=20)))
def test_splicing_text_into_a_valid_file_gives_a_scenario_or_one_line_error(
    at: int, insert: str, scratch: Path
) -> None:
    scratch.write_text(BASE_TEXT[:at] + insert + BASE_TEXT[at:], encoding="utf-8")
    _load_file(scratch)


@settings(PROPERTY, max_examples=40)
@given(where=st.sampled_from(LEAF_PATHS), value=bad_values)
def test_cli_validate_exits_0_or_2_with_one_line(where: tuple, value: Any, scratch: Path) -> None:
    raw = copy.deepcopy(BASE)
    _get(raw, where[:-1])[where[-1]] = value
    scratch.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    outcome = validate_cli(str(scratch))
    if outcome.code == 0:
        assert outcome.stdout.startswith(f"ok  {scratch}: ") and outcome.stderr == ""
    else:
        line = assert_one_line_error(outcome)
        assert line.startswith(f"simdb: {scratch}:"), line
