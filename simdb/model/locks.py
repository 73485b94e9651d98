"""Row locks on a DB instance: a write in a transaction locks its keys until it commits or aborts.

A request that declares locks (``lock_keys``, sorted ascending) takes them one by one when its statement
reaches the instance, before its CPU burst. A key held by another transaction queues the request FIFO on
that key; while it waits it is `Lock` load. Because every transaction takes its keys in the same (ascending)
order, no cycle of waits can form: the model is deadlock-free by construction. The holder releases every
key at its commit (or abort), and each key passes to its first live waiter, which goes on to its next key.

``lock_timeout`` (PostgreSQL; ``innodb_lock_wait_timeout`` on MySQL) bounds each wait: the waiter fails
lock_timeout and, as the app rolls back, releases the keys it already held. Only requests that declare
locks touch this table: one dict entry per locked key, created on first lock and removed when free.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from simpy.events import NORMAL

if TYPE_CHECKING:
    from .instance import Instance


class _LockWait:
    """A request waiting for one key. ``req`` is cleared when it is granted or gives up, so the key's
    queue may keep a stale entry (skipped when the key is next released) and a pending timeout finds
    nothing to do."""

    __slots__ = ("callbacks", "req")
    _ok = True

    def __init__(self, req: Any) -> None:
        self.callbacks: Any = None
        self.req = req


class LockTable:
    """The row locks of one instance: key -> [holder, deque of waits or None]."""

    def __init__(self, inst: Instance, timeout: float) -> None:
        self.inst = inst
        self.env = inst.env
        self.timeout = timeout  # seconds; 0 = wait forever
        self.rows: dict[int, list[Any]] = {}
        self._timeout_callbacks = (self._timed_out,)

    def acquire(self, req: Any) -> bool:
        """Take ``req``'s next keys; True when it holds them all, False when it waits for one."""
        keys = req.lock_keys
        i = req.n_locked
        rows = self.rows
        n = len(keys)
        while i < n:
            row = rows.get(keys[i])
            if row is None:
                rows[keys[i]] = [req, None]
                i += 1
                continue
            req.n_locked = i
            wait = _LockWait(req)
            if row[1] is None:
                row[1] = deque()
            row[1].append(wait)
            inst = self.inst
            now = self.env._now
            inst.lock_n += 1
            inst.lock_acc -= now
            if self.timeout > 0.0:
                wait.callbacks = self._timeout_callbacks
                self.env.schedule(wait, NORMAL, self.timeout)
            return False
        req.n_locked = n
        return True

    def release(self, req: Any) -> None:
        """``req`` commits or aborts: its keys pass to their first live waiters."""
        n = req.n_locked
        if not n:
            return
        req.n_locked = 0
        rows = self.rows
        granted = []
        for key in req.lock_keys[:n]:
            row = rows.get(key)
            if row is None or row[0] is not req:
                continue  # the table was cleared (the instance failed) since it took the key
            waits = row[1]
            nxt = None
            while waits:
                wait = waits.popleft()
                if wait.req is not None:
                    nxt = wait.req
                    wait.req = None
                    break
            if nxt is None:
                del rows[key]
                continue
            row[0] = nxt
            nxt.n_locked += 1
            granted.append(nxt)
        if granted:
            inst = self.inst
            now = self.env._now
            inst.lock_n -= len(granted)
            inst.lock_acc += now * len(granted)
            for nxt in granted:
                # on to its next key, then its CPU burst (submit takes the rest of its keys first)
                inst.submit(nxt)

    def _timed_out(self, wait: _LockWait) -> None:
        req = wait.req
        if req is None:
            return
        wait.req = None
        inst = self.inst
        inst.lock_n -= 1
        inst.lock_acc += self.env._now
        self.release(req)
        req.query.lock_timeout(req)

    def clear(self) -> None:
        """The instance failed: every transaction on it is gone; waiters learn it as a lost connection."""
        now = self.env._now
        inst = self.inst
        aborted = []
        for row in self.rows.values():
            if row[1]:
                for wait in row[1]:
                    if wait.req is not None:
                        aborted.append(wait.req)
                        wait.req = None
        self.rows = {}
        inst.lock_n -= len(aborted)
        inst.lock_acc += now * len(aborted)
        for req in aborted:
            req.n_locked = 0
            req.t_start = now
            req.query.lost(req)
