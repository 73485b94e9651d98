"""Replica staleness of reads, and replica lag, from a run's commit and apply times.

Definitions (times in seconds; writes sorted by commit time; replica j applies writes in commit order):

* a read of key k on replica j at time t is **stale** if some write to k committed at or before t
  (``write_t <= t``) is not yet visible on j (``apply_t[w, j] > t``);
* it is a **read-your-writes violation** if such a write came from the reading session itself;
* **ReplicaLag** of j at time t is the age ``t - write_t`` of the oldest write committed at or before
  t that j has not applied by t (0 when j is caught up), as RDS reports it;
* the **mean lag per bin** is the mean of ``apply_t - write_t`` over the writes committed in the bin.

Everything is whole-array numpy: no Python loop runs per write or per read. Times are compared
exactly (never quantised); they must not be NaN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Bits of a non-negative int64 usable for packed sort keys (a module constant so that it can be lowered).
_WORD_BITS = 63
# Linear steps through a read's own (key, time bucket) block before falling back to binary search.
_SCAN_STEPS = 4


def _sort_with_order(hi: np.ndarray, hi_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``hi`` (non-negative int64 < 2**hi_bits) sorted, and the permutation that sorts it. Consumes ``hi``.

    numpy's plain sort of int64 is SIMD-fast while argsort is several times slower, so when the
    position fits in the spare low bits it rides along in the value and one sort gives both.
    """
    n = hi.size
    lo_bits = (n - 1).bit_length() if n else 0
    if hi_bits + lo_bits > _WORD_BITS:
        order = np.argsort(hi, kind="stable")
        return hi[order], order
    hi <<= lo_bits
    hi |= np.arange(n, dtype=np.int64)
    hi.sort()
    order = hi & ((1 << lo_bits) - 1)
    hi >>= lo_bits
    return hi, order


def _groups(
    w_val: np.ndarray, r_val: np.ndarray, max_bits: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Small non-negative int64 ids for write values and read values, equal iff the values are equal.

    Returns (write ids, read ids, bits the ids need, mask of reads whose value some write has). Reads
    with no such value get an arbitrary id in range; callers drop them with the mask. The raw offset
    from the smallest write value is used when it fits in ``max_bits`` (no lookup), dense ranks of
    the distinct write values otherwise.
    """
    w_val = w_val.astype(np.int64, copy=False)
    lo, hi = int(w_val.min()), int(w_val.max())
    span_bits = (hi - lo).bit_length()  # Python ints: no overflow for any int64 span
    if span_bits <= max_bits:
        r_id = r_val.astype(np.int64)  # a copy: modified in place here and by the caller
        valid = r_id >= lo
        valid &= r_id <= hi
        np.clip(r_id, lo, hi, out=r_id)
        r_id -= lo
        return w_val - lo, r_id, span_bits, valid
    r_val = r_val.astype(np.int64, copy=False)
    distinct = np.unique(w_val)
    r_id = np.minimum(np.searchsorted(distinct, r_val), distinct.size - 1)
    valid = distinct[r_id] == r_val
    return np.searchsorted(distinct, w_val), r_id, (distinct.size - 1).bit_length(), valid


def _buckets(t: np.ndarray, t0: float, scale: float, n: int) -> np.ndarray:
    """Time buckets 0..n-1, a non-decreasing function of t (rounded subtract, scale, clip, truncate are
    all monotone), so bucket(a) < bucket(b) implies a < b exactly, whatever the rounding."""
    if scale == 0.0:
        return np.zeros(t.size, dtype=np.int64)
    x = (t - t0) * scale
    np.clip(x, 0, n - 1, out=x)
    return x.astype(np.int64)


def stale_reads(
    write_t: npt.ArrayLike,
    write_key: npt.ArrayLike,
    write_session: npt.ArrayLike,
    apply_t: npt.ArrayLike,
    read_t: npt.ArrayLike,
    read_key: npt.ArrayLike,
    read_session: npt.ArrayLike,
    read_replica: npt.ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """Per read: (stale, read-your-writes violation), both boolean arrays in read order.

    ``write_t`` is sorted (ties allowed); ``apply_t[i, j] >= write_t[i]`` is when write i becomes
    visible on replica j, non-decreasing in i; ``read_replica`` indexes the columns of ``apply_t``.
    Reads may come in any order. Only the latest write to the key (to the key and session) committed
    by the read time matters: replicas apply in commit order, so it is the last one to be applied.
    """
    write_t = np.asarray(write_t, dtype=np.float64)
    read_t = np.asarray(read_t, dtype=np.float64)
    write_key, write_session = np.asarray(write_key), np.asarray(write_session)
    read_key, read_session = np.asarray(read_key), np.asarray(read_session)
    read_replica = np.asarray(read_replica)
    nw, nr = write_t.size, read_t.size
    if not (write_key.size == write_session.size == nw):
        raise ValueError("write_t, write_key and write_session differ in length")
    if not (read_key.size == read_session.size == read_replica.size == nr):
        raise ValueError("read_t, read_key, read_session and read_replica differ in length")
    stale = np.zeros(nr, dtype=bool)
    ryw = np.zeros(nr, dtype=bool)
    if nw == 0 or nr == 0:
        return stale, ryw
    apply_t = np.asarray(apply_t, dtype=np.float64)
    if apply_t.ndim == 1:
        apply_t = apply_t[:, None]
    if apply_t.shape[0] != nw:
        raise ValueError(f"apply_t has {apply_t.shape[0]} rows for {nw} writes")
    n_rep = apply_t.shape[1]
    rep = read_replica.astype(np.int64, copy=False)
    if rep.min() < 0 or rep.max() >= n_rep:
        raise ValueError(f"read_replica outside 0..{n_rep - 1}")
    apply_flat = np.ascontiguousarray(apply_t).ravel()

    # Writes are ranked in key order by a packed int64 (key id, time bucket, write index) and every read
    # by (key id, time bucket): one searchsorted of the sorted reads finds the latest write of its key in
    # an earlier bucket, hence committed strictly before the read (buckets are monotone in time). Only
    # reads whose own bucket holds writes of their key must compare exact times with those writes.
    i_bits = nw.bit_length()  # write indexes and time ranks 0..nw
    r_bits = (nr - 1).bit_length()
    key_w, key_r, k_bits, key_ok = _groups(write_key, read_key, _WORD_BITS - max(i_bits, r_bits) - 8)
    b_bits = max(0, min(i_bits + 1, _WORD_BITS - k_bits - max(i_bits, r_bits)))  # ~2 buckets per write
    # Never at 63 bits: raw ids leave room by construction, dense ids need no more bits than write indexes.
    if k_bits + b_bits + i_bits > _WORD_BITS:
        raise ValueError("too many writes to pack into int64 sort keys")
    n_b = 1 << b_bits
    t0, span = float(write_t[0]), float(write_t[-1] - write_t[0])
    scale = n_b / span if span > 0 else 0.0
    if not 0.0 < scale < np.inf:  # a single instant, or a span too small or large to scale: one bucket
        scale = 0.0
    i_mask = (1 << i_bits) - 1
    wpack = (key_w << b_bits) | _buckets(write_t, t0, scale, n_b)
    wpack <<= i_bits
    wpack |= np.arange(nw, dtype=np.int64)
    wpack.sort()
    # (In-place operations from here on: the read-side arrays are large, and fresh ones cost page faults.)
    block = key_r  # reused: (key id, bucket) of each read, then sorted
    block <<= b_bits
    block |= _buckets(read_t, t0, scale, n_b)
    block, order = _sort_with_order(block, k_bits + b_bits)
    pos = np.searchsorted(wpack, block << i_bits)  # queries sorted: fast
    nxt = wpack[np.minimum(pos, nw - 1)]
    sel = np.flatnonzero((nxt >> i_bits) == block)  # the read's own block holds writes of its key
    if sel.size:
        # Step past those committed at or before the read: within a block writes are in commit order.
        # Blocks hold ~0.5 writes on average, so a few vectorised steps settle nearly every read.
        p, t, blk = pos[sel], read_t[order[sel]], block[sel]
        for _ in range(_SCAN_STEPS):
            nx = wpack[np.minimum(p, nw - 1)]
            step = ((nx >> i_bits) == blk) & (write_t[nx & i_mask] <= t)
            sel, p, t, blk = sel[step], p[step] + 1, t[step], blk[step]
            pos[sel] = p
            if sel.size == 0:
                break
        if sel.size:  # long runs in one block (ties, bursts, one bucket): exact time rank, binary search
            rank = np.searchsorted(write_t, t, side="right")  # index < rank <=> committed by t
            pos[sel] = np.searchsorted(wpack, (blk << i_bits) | rank)
    pos -= 1  # the write just before: the latest of the read's key, if its key matches
    none = pos < 0
    pos[none] = 0
    prev = np.take(wpack, pos, out=nxt)
    block >>= b_bits
    found = (prev >> (b_bits + i_bits)) == block
    found &= ~none
    prev &= i_mask
    prev[~found] = -1
    latest = np.empty(nr, dtype=np.int64)  # latest write of the read's key by its time, -1 if none
    latest[order] = prev
    del block, order, pos, prev, found, none
    has = latest >= 0
    has &= key_ok
    flat = np.maximum(latest, 0)
    if n_rep > 1:
        flat *= n_rep
        flat += rep
    stale = np.take(apply_flat, flat) > read_t
    stale &= has
    del flat, has

    # Read-your-writes violations are stale reads (the session's latest write to the key is applied no
    # later than the key's latest), so only stale reads are examined. With writes in key order, the
    # candidates of a read are its key's writes at positions < p (one past its latest write): the
    # session's latest is the last (session, position) pair before (session, p), if its key matches.
    sub = np.flatnonzero(stale)
    if sub.size == 0:
        return stale, ryw
    key_pos = np.empty(nw, dtype=np.int64)  # position of each write in key order
    key_pos[wpack & i_mask] = np.arange(nw, dtype=np.int64)
    sub_bits = (sub.size - 1).bit_length()
    ses_w, ses_r, s_bits, ses_ok = _groups(write_session, read_session[sub], _WORD_BITS - i_bits - sub_bits)
    if s_bits + i_bits > _WORD_BITS:  # never at 63 bits, as above
        raise ValueError("too many writes to pack into int64 sort keys")
    spack = np.sort((ses_w[wpack & i_mask] << i_bits) | np.arange(nw, dtype=np.int64))
    sblock = ses_r  # reused: (session id, p) of each stale read, then sorted
    sblock <<= i_bits
    sblock |= key_pos[latest[sub]] + 1
    sblock, order2 = _sort_with_order(sblock, s_bits + i_bits)
    pos2 = np.searchsorted(spack, sblock)
    pos2 -= 1
    none = pos2 < 0
    pos2[none] = 0
    prev2 = spack[pos2]
    found = (prev2 >> i_bits) == (sblock >> i_bits)  # the same session...
    found &= ~none
    cand = np.take(wpack, prev2 & i_mask, out=prev2)
    key_bits = b_bits + i_bits
    found &= (cand >> key_bits) == (wpack[(sblock & i_mask) - 1] >> key_bits)  # ...and the same key
    cand &= i_mask
    cand[~found] = -1
    own = np.empty(sub.size, dtype=np.int64)  # the session's latest write to the key, -1 if none
    own[order2] = cand
    has = own >= 0
    has &= ses_ok
    np.maximum(own, 0, out=own)
    if n_rep > 1:
        own *= n_rep
        own += rep[sub]
    ryw[sub] = has & (np.take(apply_flat, own) > read_t[sub])
    return stale, ryw


def replica_lag_at(write_t: npt.ArrayLike, apply_col: npt.ArrayLike, at: npt.ArrayLike) -> np.ndarray:
    """RDS ``ReplicaLag`` (s) at each time of ``at``: the age of the oldest write committed by then
    but not yet applied (``apply_col > at``), 0.0 when none.

    ``apply_col`` is one replica's apply times, non-decreasing, so the unapplied writes at time a are a
    suffix starting at the first apply time after a; that write counts if it committed by a.
    """
    write_t = np.asarray(write_t, dtype=np.float64)
    apply_col = np.asarray(apply_col, dtype=np.float64)
    at = np.asarray(at, dtype=np.float64)
    if write_t.size == 0:
        return np.zeros(at.shape, dtype=np.float64)
    first_unapplied = np.searchsorted(apply_col, at, side="right")
    committed = np.searchsorted(write_t, at, side="right")
    age = at - write_t[np.minimum(first_unapplied, write_t.size - 1)]
    return np.where(first_unapplied < committed, age, 0.0)


def mean_lag_per_bin(write_t: npt.ArrayLike, apply_col: npt.ArrayLike, edges: npt.ArrayLike) -> np.ndarray:
    """Mean apply lag ``apply_col - write_t`` of the writes committed in each bin
    ``[edges[k], edges[k+1])`` (``edges`` ascending), in the units given; 0.0 for an empty bin."""
    write_t = np.asarray(write_t, dtype=np.float64)
    apply_col = np.asarray(apply_col, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    n_bins = max(edges.size - 1, 0)
    if n_bins == 0 or write_t.size == 0:
        return np.zeros(n_bins, dtype=np.float64)
    b = np.searchsorted(edges, write_t, side="right") - 1  # bins are closed on the left
    keep = (b >= 0) & (b < n_bins)
    b = b[keep]
    total = np.bincount(b, weights=(apply_col - write_t)[keep], minlength=n_bins)
    count = np.bincount(b, minlength=n_bins)
    return np.divide(total, count, out=np.zeros(n_bins, dtype=np.float64), where=count > 0)
