"""Independent jobs (replications, sweep points) on local worker processes, surviving killed workers.

``Workers(n)`` runs jobs on ``n`` concurrent slots: ``n - 1`` child processes and the calling process,
which takes jobs from the same queue. The caller is therefore never an extra, unscheduled process beside
``n`` busy children (on ``n`` cores that oversubscribes the start and idles a core at the end), and with
``n = 1`` nothing is spawned at all.

A child that dies (killed, out of memory) breaks the whole pool. Its jobs, and the others in flight, are
queued again for a new pool of children (never for the calling process: a job that kills its process must
not take the caller with it); a job that was in flight in ``MAX_ATTEMPTS`` broken pools fails the run with
a clear error instead of looping. Results come back in job order, whichever slot ran
them, so they never depend on the number of workers or on a retry.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .errors import SimdbError

# a job in flight in this many broken pools is given up: it is probably what kills the workers
MAX_ATTEMPTS = 3
_NOT_DONE = object()


class Workers:
    """A reusable set of worker slots; use as a context manager so child processes are reaped."""

    def __init__(self, n: int) -> None:
        self.n = max(1, int(n))
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0  # pools replaced after a worker died

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _fresh_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.n - 1)
        return self._pool

    def map(
        self,
        fn: Callable[..., Any],
        jobs: Sequence[tuple[Any, ...]],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Any]:
        """``[fn(*job) for job in jobs]``, computed on the slots. ``progress(done, total)`` after each job."""
        return self.run(fn, jobs, progress=progress)[1]

    def run(
        self,
        fn: Callable[..., Any],
        jobs: Sequence[tuple[Any, ...]],
        *,
        progress: Callable[[int, int], None] | None = None,
        local: Callable[[], Any] | None = None,
    ) -> tuple[Any, list[Any]]:
        """Like :meth:`map`; first, this process computes ``local()`` (a result too big to send between
        processes, e.g. a run with its tables) while the children start on the jobs. Returns
        ``(local(), results)``.
        """
        total = len(jobs)
        results: list[Any] = [_NOT_DONE] * total
        lock = threading.Lock()
        pending: deque[int] = deque(range(total))
        retry: deque[int] = deque()  # jobs that were in flight when a child died: children only
        attempts = [0] * total
        failure: list[BaseException] = []
        done = [0]

        def finish(i: int, value: Any) -> None:
            with lock:  # one caller at a time, counts in order
                results[i] = value
                done[0] += 1
                if progress is not None:
                    progress(done[0], total)

        def fail(exc: BaseException) -> None:
            with lock:
                if not failure:
                    failure.append(exc)
                pending.clear()
                retry.clear()

        def take() -> int | None:
            with lock:
                return pending.popleft() if pending and not failure else None

        def take_for_child() -> int | None:
            with lock:
                if failure:
                    return None
                return retry.popleft() if retry else pending.popleft() if pending else None

        manager = None
        if self.n > 1 and (total > 1 or (total == 1 and local is not None)):
            manager = threading.Thread(
                target=self._manage,
                args=(fn, jobs, take_for_child, finish, fail, retry, attempts, lock),
                daemon=True,
            )
            manager.start()
        first = None
        try:
            if local is not None:
                try:
                    first = local()
                except BaseException as exc:
                    fail(exc)
                    raise
            while (i := take()) is not None:  # this process is one of the slots
                try:
                    finish(i, fn(*jobs[i]))
                except BaseException as exc:
                    fail(exc)
                    raise
        finally:
            if manager is not None:
                manager.join()
        if failure:
            raise failure[0]
        return first, results

    def _manage(
        self,
        fn: Callable[..., Any],
        jobs: Sequence[tuple[Any, ...]],
        take: Callable[[], int | None],
        finish: Callable[[int, Any], None],
        fail: Callable[[BaseException], None],
        retry: deque[int],
        attempts: list[int],
        lock: threading.Lock,
    ) -> None:
        """Keep every child busy until the queue is empty; replace the pool when a child dies."""
        inflight: dict[Future[Any], int] = {}
        try:
            while True:
                pool = self._fresh_pool()
                while len(inflight) < self.n - 1 and (i := take()) is not None:
                    inflight[pool.submit(fn, *jobs[i])] = i
                if not inflight:
                    return
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    i = inflight.pop(future)
                    try:
                        finish(i, future.result())
                    except BrokenProcessPool:
                        broken = True
                        inflight[future] = i  # requeued below with the rest
                    except BaseException as exc:
                        fail(exc)
                        return
                if broken:
                    self._requeue(inflight, retry, attempts, lock, fail)
        except BaseException as exc:
            fail(exc)

    def _requeue(
        self,
        inflight: dict[Future[Any], int],
        retry: deque[int],
        attempts: list[int],
        lock: threading.Lock,
        fail: Callable[[BaseException], None],
    ) -> None:
        """A child died: every job in flight is queued again for a new pool."""
        lost = sorted(inflight.values())
        inflight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.restarts += 1
        for i in lost:
            attempts[i] += 1
        worst = max(lost, key=lambda i: attempts[i])
        if attempts[worst] >= MAX_ATTEMPTS:
            fail(
                SimdbError(
                    f"a worker process died {attempts[worst]} times while running job {worst}; "
                    "it may need more memory than the machine has"
                )
            )
            return
        with lock:
            retry.extend(lost)
