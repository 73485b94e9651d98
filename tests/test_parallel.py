"""Worker slots: results in job order whoever ran them; a killed worker's jobs are rerun, not lost."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from simdb.errors import SimdbError
from simdb.parallel import MAX_ATTEMPTS, Workers

PARENT = os.getpid()


def _square(x: int) -> tuple[int, int]:
    time.sleep(0.01)  # long enough that the child has started before this process has done them all
    return x * x, os.getpid()


def _logged(folder: str, i: int, seconds: float) -> int:
    """Leave a start mark (job and process), work a while, return a value only the job determines."""
    Path(folder, f"start-{i}-{os.getpid()}").touch()
    time.sleep(seconds)
    return 1000 + i


def _dies_in_a_child(i: int) -> int:
    if os.getpid() != PARENT:
        os._exit(1)  # what the out-of-memory killer leaves behind: no exception, no result
    return i


def _raises(i: int) -> int:
    if i == 3:
        raise ValueError("bad job 3")
    return i


def test_results_come_back_in_job_order_from_every_slot() -> None:
    done: list[int] = []
    with Workers(2) as pool:
        out = pool.map(_square, [(i,) for i in range(40)], progress=lambda d, total: done.append(d))
    assert [v for v, _ in out] == [i * i for i in range(40)]
    # both slots worked: this process and one child
    pids = {pid for _, pid in out}
    assert PARENT in pids and len(pids) == 2
    assert done == list(range(1, 41))


def test_one_slot_spawns_nothing() -> None:
    with Workers(1) as pool:
        out = pool.map(_square, [(i,) for i in range(5)])
    assert {pid for _, pid in out} == {PARENT}


def test_a_killed_worker_s_job_is_rerun_not_lost(tmp_path: Path) -> None:
    jobs = [(str(tmp_path), i, 0.4) for i in range(8)]
    killed: list[tuple[int, int]] = []

    def kill_the_first_child_job() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            for mark in tmp_path.iterdir():
                _, job, pid = mark.name.split("-")
                if int(pid) != PARENT:
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append((int(job), int(pid)))
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_first_child_job)
    killer.start()
    with Workers(3) as pool:
        out = pool.map(_logged, jobs)
        restarts = pool.restarts
    killer.join()
    assert killed, "no job started in a child process"
    assert out == [1000 + i for i in range(8)]
    assert restarts == 1
    job, pid = killed[0]
    starts = [m.name for m in tmp_path.iterdir() if m.name.startswith(f"start-{job}-")]
    # the killed job started twice: in the killed process and again in a new child, never in the caller
    assert len(starts) == 2 and f"start-{job}-{pid}" in starts and f"start-{job}-{PARENT}" not in starts


def test_a_job_that_keeps_killing_workers_fails_with_a_clear_error() -> None:
    with (
        Workers(2) as pool,
        pytest.raises(SimdbError, match=f"died {MAX_ATTEMPTS} times while running job 0"),
    ):
        # the caller is busy with its own work, so job 0 goes to a child; retried, it stays with children
        pool.run(_dies_in_a_child, [(0,)], local=lambda: time.sleep(0.5))
    assert pool.restarts == MAX_ATTEMPTS


def test_an_ordinary_error_in_a_job_is_raised_as_it_is() -> None:
    with Workers(2) as pool, pytest.raises(ValueError, match="bad job 3"):
        pool.map(_raises, [(i,) for i in range(6)])


def test_local_work_runs_here_beside_the_children() -> None:
    with Workers(2) as pool:
        first, out = pool.run(_square, [(i,) for i in range(4)], local=lambda: ("local", os.getpid()))
    assert first == ("local", PARENT)
    assert [v for v, _ in out] == [0, 1, 4, 9]
