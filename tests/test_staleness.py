"""simdb.analysis.staleness against literal, slow pure-Python readings of its definitions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simdb.analysis import staleness
from simdb.analysis.staleness import mean_lag_per_bin, replica_lag_at, stale_reads

# ------------------------------------------------------------------------------------------ references


def reference_stale_reads(
    write_t: Any,
    write_key: Any,
    write_session: Any,
    apply_t: Any,
    read_t: Any,
    read_key: Any,
    read_session: Any,
    read_replica: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """The definitions word for word: does any write to the key, committed at or before the read, not
    yet show on the read's replica? (And any such write by the reading session?)"""
    stale = np.zeros(len(read_t), dtype=bool)
    ryw = np.zeros(len(read_t), dtype=bool)
    for r in range(len(read_t)):
        for w in range(len(write_t)):
            if (
                int(write_key[w]) == int(read_key[r])
                and write_t[w] <= read_t[r]
                and apply_t[w][int(read_replica[r])] > read_t[r]
            ):
                stale[r] = True
                if int(write_session[w]) == int(read_session[r]):
                    ryw[r] = True
    return stale, ryw


def reference_replica_lag_at(write_t: Any, apply_col: Any, at: Any) -> np.ndarray:
    out = np.zeros(len(at))
    for k, a in enumerate(at):
        for i in range(len(write_t)):  # the first such write is the oldest
            if write_t[i] <= a and apply_col[i] > a:
                out[k] = a - write_t[i]
                break
    return out


def reference_mean_lag_per_bin(write_t: Any, apply_col: Any, edges: Any) -> np.ndarray:
    out = np.zeros(max(len(edges) - 1, 0))
    for k in range(len(out)):
        lags = [
            apply_col[i] - write_t[i] for i in range(len(write_t)) if edges[k] <= write_t[i] < edges[k + 1]
        ]
        if lags:
            out[k] = sum(lags) / len(lags)
    return out


def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    for g, w, name in zip(got, want, ("stale", "ryw"), strict=True):
        assert g.dtype == bool and g.shape == w.shape, name
        np.testing.assert_array_equal(g, w, err_msg=name)


# ------------------------------------------------------------------------------------------ strategies

MS = 1000.0  # times on a 1 ms grid: ties between writes, and between writes and reads, are common


@st.composite
def replication_logs(draw: st.DrawFn, max_writes: int = 25) -> dict[str, np.ndarray]:
    """Writes sorted by commit time; per replica, apply times non-decreasing and never before commit."""
    n_rep = draw(st.integers(1, 3))
    n_w = draw(st.integers(0, max_writes))
    write_ms = np.sort(
        np.array(draw(st.lists(st.integers(0, 40), min_size=n_w, max_size=n_w)), dtype=np.int64)
    )
    # lags: about a third exactly 0 (applied at commit: apply time equal to read times), else a few ms
    lags = draw(st.lists(st.integers(-12, 25), min_size=n_w * n_rep, max_size=n_w * n_rep))
    lag_ms = np.maximum(np.array(lags, dtype=np.int64), 0).reshape(n_w, n_rep)
    apply_ms = np.maximum(np.maximum.accumulate(write_ms[:, None] + lag_ms, axis=0), write_ms[:, None])
    return {
        "write_t": write_ms / MS,
        "write_key": np.array(draw(st.lists(st.integers(0, 5), min_size=n_w, max_size=n_w)), dtype=np.int64),
        "write_session": np.array(
            draw(st.lists(st.integers(0, 3), min_size=n_w, max_size=n_w)), dtype=np.int64
        ),
        "apply_t": apply_ms / MS,  # exact division: ms ties stay ties, order is kept
    }


@st.composite
def staleness_cases(draw: st.DrawFn) -> dict[str, np.ndarray]:
    case = draw(replication_logs())
    n_rep = case["apply_t"].shape[1]
    n_r = draw(st.integers(0, 30))

    def ints(lo: int, hi: int) -> np.ndarray:
        return np.array(draw(st.lists(st.integers(lo, hi), min_size=n_r, max_size=n_r)), dtype=np.int64)

    case["read_t"] = ints(-2, 70) / MS  # in any order, some before the first write or after the last
    case["read_key"] = ints(0, 6)  # key 6 is never written
    case["read_session"] = ints(0, 3)
    case["read_replica"] = ints(0, n_rep - 1)
    return case


# ------------------------------------------------------------------------------------------ stale_reads


@settings(derandomize=True, max_examples=300, deadline=None)
@given(staleness_cases())
def test_stale_reads_matches_definition(case: dict[str, np.ndarray]) -> None:
    assert_same(stale_reads(**case), reference_stale_reads(**case))


@pytest.mark.parametrize("bits", [12, 8])
@settings(derandomize=True, max_examples=150, deadline=None)
@given(case=staleness_cases())
def test_stale_reads_fallbacks_match_definition(bits: int, case: dict[str, np.ndarray]) -> None:
    """Narrower sort keys push small cases down the paths big ones take: dense key and session ids
    instead of raw offsets, few or no time buckets, argsort instead of packed sorts."""
    saved = staleness._WORD_BITS
    staleness._WORD_BITS = bits
    try:
        got = stale_reads(**case)
    except ValueError:  # the write indexes alone do not fit: cannot happen with 63 bits
        assert 2 * len(case["write_t"]).bit_length() > bits
        return
    finally:
        staleness._WORD_BITS = saved
    assert_same(got, reference_stale_reads(**case))


def one_write(apply_s: list[float], key: int = 1, session: int = 7, t: float = 1.0) -> dict[str, Any]:
    return {
        "write_t": np.array([t]),
        "write_key": np.array([key]),
        "write_session": np.array([session]),
        "apply_t": np.array([apply_s]),
    }


def reads(t: list[float], key: list[int], session: list[int], replica: list[int]) -> dict[str, Any]:
    return {
        "read_t": np.array(t),
        "read_key": np.array(key),
        "read_session": np.array(session),
        "read_replica": np.array(replica),
    }


def test_read_at_commit_time() -> None:
    # replica 0 applied the write at commit, replica 1 a millisecond later; both read exactly at commit
    case = one_write([1.0, 1.001]) | reads([1.0, 1.0], [1, 1], [7, 7], [0, 1])
    stale, ryw = stale_reads(**case)
    assert stale.tolist() == [False, True]  # a write committed at the read's instant counts as before it
    assert ryw.tolist() == [False, True]


def test_other_sessions_write_is_stale_but_not_ryw() -> None:
    case = one_write([1.0, 1.5]) | reads([1.2, 1.2, 1.6], [1, 1, 1], [8, 7, 8], [1, 1, 1])
    stale, ryw = stale_reads(**case)
    assert stale.tolist() == [True, True, False]
    assert ryw.tolist() == [False, True, False]


def test_key_never_written_is_not_stale() -> None:
    case = one_write([1.0, 9.0]) | reads([0.5, 1.0, 2.0], [2, 0, 2**31 - 1], [7, 7, 7], [1, 1, 1])
    stale, ryw = stale_reads(**case)
    assert not stale.any() and not ryw.any()


def test_replica_without_lag_is_never_stale() -> None:
    rng = np.random.default_rng(5)
    write_t = np.sort(rng.integers(0, 50, 200)) / MS
    apply_t = np.column_stack([write_t, write_t + 0.01])  # replica 0 applies at commit
    n = 500
    case = {
        "write_t": write_t,
        "write_key": rng.integers(0, 4, write_t.size),
        "write_session": rng.integers(0, 3, write_t.size),
        "apply_t": apply_t,
    } | reads(
        list(rng.integers(0, 60, n) / MS), list(rng.integers(0, 4, n)), list(rng.integers(0, 3, n)), [0] * n
    )
    stale, ryw = stale_reads(**case)
    assert not stale.any() and not ryw.any()
    case["read_replica"] = np.ones(n, dtype=np.int64)
    assert stale_reads(**case)[0].any()  # the lagging replica does serve stale reads here


def test_ties_in_commit_time_use_the_last_write() -> None:
    # three writes to key 1 at the same instant: the last one in array order is applied last
    case = {
        "write_t": np.array([1.0, 1.0, 1.0]),
        "write_key": np.array([1, 1, 1]),
        "write_session": np.array([5, 6, 5]),
        "apply_t": np.array([[1.0], [1.2], [1.3]]),
    } | reads([1.0, 1.25, 1.25, 1.3], [1, 1, 1, 1], [6, 6, 5, 5], [0, 0, 0, 0])
    assert_same(stale_reads(**case), reference_stale_reads(**case))
    stale, ryw = stale_reads(**case)
    assert stale.tolist() == [True, True, True, False]
    assert ryw.tolist() == [True, False, True, False]


@pytest.mark.parametrize("key_dtype", [np.int32, np.int64])
def test_large_keys_and_sessions(key_dtype: type) -> None:
    """Ids at the limits: packing must neither truncate nor let distinct keys or sessions collide."""
    rng = np.random.default_rng(11)
    info = np.iinfo(key_dtype)
    key_pool = np.array([info.max, info.max - 1, info.min, 0, 1, 2**31 - 1], dtype=key_dtype)
    if key_dtype is np.int64:  # differ only above bit 31; and the widest possible span
        key_pool = np.concatenate([key_pool, np.array([1 + 2**32, 2**31 - 1 + 2**40], dtype=np.int64)])
    session_pool = np.array([0, 10**8, 10**8 - 1, 2**26, 1 + 2**26], dtype=np.int64)
    n_w, n_r = 120, 400
    write_t = np.sort(rng.integers(0, 80, n_w)) / MS
    lag = rng.integers(0, 6, (n_w, 2)) / MS
    apply_t = np.maximum.accumulate(write_t[:, None] + lag, axis=0)
    case = {
        "write_t": write_t,
        "write_key": rng.choice(key_pool, n_w),
        "write_session": rng.choice(session_pool, n_w),
        "apply_t": apply_t,
        "read_t": rng.integers(0, 90, n_r) / MS,
        "read_key": rng.choice(np.concatenate([key_pool, key_pool[:3] ^ 1]), n_r).astype(key_dtype),
        "read_session": rng.choice(np.concatenate([session_pool, [7]]), n_r),
        "read_replica": rng.integers(0, 2, n_r),
    }
    want = reference_stale_reads(**case)
    assert want[0].sum() > 20 and want[1].sum() > 5  # the case exercises both answers
    assert_same(stale_reads(**case), want)


def test_empty_inputs() -> None:
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0)
    no_reads = {"read_t": empty_f, "read_key": empty_i, "read_session": empty_i, "read_replica": empty_i}
    # no writes, no reads, no replicas
    got = stale_reads(empty_f, empty_i, empty_i, np.zeros((0, 0)), **no_reads)
    assert_same(got, (np.zeros(0, bool), np.zeros(0, bool)))
    # writes but no reads (and no replicas)
    got = stale_reads(np.array([1.0]), np.array([1]), np.array([1]), np.zeros((1, 0)), **no_reads)
    assert_same(got, (np.zeros(0, bool), np.zeros(0, bool)))
    # reads but no writes
    got = stale_reads(
        empty_f, empty_i, empty_i, np.zeros((0, 2)), **reads([1.0, 2.0], [1, 2], [1, 1], [0, 1])
    )
    assert_same(got, (np.zeros(2, bool), np.zeros(2, bool)))


def test_reads_in_any_order() -> None:
    rng = np.random.default_rng(3)
    n_w, n_r = 300, 2000
    write_t = np.sort(rng.integers(0, 200, n_w)) / MS
    apply_t = np.maximum.accumulate(write_t[:, None] + rng.integers(0, 8, (n_w, 2)) / MS, axis=0)
    case = {
        "write_t": write_t,
        "write_key": rng.integers(0, 10, n_w),
        "write_session": rng.integers(0, 4, n_w),
        "apply_t": apply_t,
        "read_t": rng.integers(0, 210, n_r) / MS,
        "read_key": rng.integers(0, 10, n_r),
        "read_session": rng.integers(0, 4, n_r),
        "read_replica": rng.integers(0, 2, n_r),
    }
    stale, ryw = stale_reads(**case)
    assert_same((stale, ryw), reference_stale_reads(**case))
    perm = rng.permutation(n_r)
    shuffled = case | {k: case[k][perm] for k in ("read_t", "read_key", "read_session", "read_replica")}
    assert_same(stale_reads(**shuffled), (stale[perm], ryw[perm]))


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(4)
    n_w, n_r = 50, 80
    write_t = np.sort(rng.integers(0, 40, n_w)) / MS
    case = {
        "write_t": write_t,
        "write_key": rng.integers(0, 5, n_w),
        "write_session": rng.integers(0, 3, n_w),
        "apply_t": np.maximum.accumulate(write_t[:, None] + rng.integers(0, 5, (n_w, 1)) / MS, axis=0),
        "read_t": rng.integers(0, 50, n_r) / MS,
        "read_key": rng.integers(0, 5, n_r),
        "read_session": rng.integers(0, 3, n_r),
        "read_replica": np.zeros(n_r, dtype=np.int64),
    }
    before = {k: v.copy() for k, v in case.items()}
    stale_reads(**case)
    for k, v in case.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


# ------------------------------------------------------------------------------------------ replica lag


@st.composite
def lag_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    log = draw(replication_logs(max_writes=30))
    j = draw(st.integers(0, log["apply_t"].shape[1] - 1))
    times = np.sort(np.array(draw(st.lists(st.integers(-2, 80), max_size=30)), dtype=np.int64)) / MS
    return log["write_t"], log["apply_t"][:, j], times


@settings(derandomize=True, max_examples=300, deadline=None)
@given(lag_cases())
def test_replica_lag_at_matches_definition(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    write_t, apply_col, at = case
    got = replica_lag_at(write_t, apply_col, at)
    assert got.dtype == np.float64 and got.shape == at.shape
    np.testing.assert_array_equal(got, reference_replica_lag_at(write_t, apply_col, at))


def test_replica_lag_at_examples() -> None:
    write_t = np.array([1.0, 2.0, 3.0])
    apply_col = np.array([1.5, 2.0, 4.0])
    at = np.array([0.5, 1.0, 1.25, 1.5, 2.0, 3.0, 3.5, 4.0])
    want = [0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.5, 0.0]  # at 1.0: committed, not applied; but age 0
    np.testing.assert_array_equal(replica_lag_at(write_t, apply_col, at), want)
    assert replica_lag_at(np.zeros(0), np.zeros(0), at).tolist() == [0.0] * at.size


@settings(derandomize=True, max_examples=300, deadline=None)
@given(lag_cases(), st.lists(st.integers(-5, 90), max_size=8))
def test_mean_lag_per_bin_matches_definition(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], edges_ms: list[int]
) -> None:
    write_t, apply_col, _ = case
    edges = np.sort(np.array(edges_ms, dtype=np.int64)) / MS  # repeated edges: empty bins
    got = mean_lag_per_bin(write_t, apply_col, edges)
    want = reference_mean_lag_per_bin(write_t, apply_col, edges)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0.0)


def test_mean_lag_per_bin_examples() -> None:
    write_t = np.array([0.0, 0.5, 1.0, 2.5])
    apply_col = np.array([0.1, 0.8, 1.0, 3.0])
    got = mean_lag_per_bin(write_t, apply_col, np.array([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got, [0.2, 0.0, 0.5])  # bins are [lo, hi): the write at 1.0 is in bin 1
    assert mean_lag_per_bin(write_t, apply_col, np.array([5.0])).size == 0
    assert mean_lag_per_bin(np.zeros(0), np.zeros(0), np.array([0.0, 1.0])).tolist() == [0.0]
