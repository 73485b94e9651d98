"""RDS Proxy: the DB connection cap, borrow timeouts, borrow waits against M/M/c theory, pinning, and
routing to a new writer without DNS."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import simdb
from simdb import scenario as sc
from simdb import theory
from simdb.engine import RawRun, simulate
from simdb.record import CODE, CONN_CLOSED, CONN_OPENED


def proxied(
    *,
    rate: float,
    cpu_s: float,
    pct: float,
    max_connections: int = 100,
    duration_s: float = 120.0,
    seed: int = 1,
    proxy: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
    pool: int = 200,
) -> dict[str, Any]:
    """One writer with plenty of vCPUs behind a proxy; one ECS service whose client pools never bind."""
    return {
        "name": "proxied",
        "seed": seed,
        "duration": duration_s,
        "cluster": {
            "writer": {"vcpu": 256},
            "readers": [{"az": "b"}],
            "parameters": {"max_connections": max_connections},
            "proxy": {"max_connections_percent": pct, "overhead": 0, **(proxy or {})},
        },
        "services": [
            {
                "name": "api",
                "tasks": 2,
                "pool": {"max_size": pool // 2, "max_lifetime": 0},
                "connect_via": "proxy",
                "workload": [{"query": "q", "rate": rate, "cpu": cpu_s, **(query or {})}],
            }
        ],
    }


def run_raw(data: dict[str, Any]) -> RawRun:
    return simulate(sc.validate(data))


def open_close(kind: np.ndarray) -> np.ndarray:
    return np.where(kind == CONN_OPENED, 1, np.where(kind == CONN_CLOSED, -1, 0))


def proxy_db_level(raw: RawRun) -> tuple[np.ndarray, np.ndarray]:
    """(time, level after each change) of the proxy's DB connections, no change merged with another."""
    conn = raw.recorder.connections()  # in time order
    mine = conn["service"] == -1
    return conn["t"][mine], np.cumsum(open_close(conn["kind"][mine]))


@pytest.mark.parametrize("pct", [10.0, 37.0, 55.5])
def test_db_connections_never_exceed_the_proxy_cap(pct: float) -> None:
    # offered load far above what the cap can serve: the proxy wants every connection it may have
    raw = run_raw(proxied(rate=3000.0, cpu_s=0.05, pct=pct, max_connections=100, duration_s=30.0))
    cap = int(pct * 100 // 100)
    _, level = proxy_db_level(raw)
    assert level.max() == cap
    writer = raw.recorder.connections()
    on_writer = writer["instance"] == 0
    assert np.cumsum(open_close(writer["kind"][on_writer])).max() == cap  # the database agrees
    assert raw.samples["MaxDatabaseConnectionsAllowed"][-1] == cap


def test_borrow_timeout_happens_exactly_at_the_configured_wait() -> None:
    timeout = 2.0
    data = proxied(
        rate=500.0,
        cpu_s=0.1,
        pct=10.0,
        duration_s=40.0,
        pool=4000,
        proxy={"connection_borrow_timeout": timeout},
    )
    result = simdb.run(data, plots=False)
    r = result.requests
    timed_out = r[r["code"] == "borrow_timeout"]
    assert len(timed_out) > 1000
    # the client connection is lent at once (the pools never bind), so the borrow starts at t_acquired
    waited = (timed_out["t_end"] - timed_out["t_acquired"]).to_numpy()
    np.testing.assert_allclose(waited, timeout, rtol=0, atol=1e-9)
    # no borrow that succeeded waited longer
    log = run_raw(data).extra["proxy"]
    assert 0.5 * timeout < log["borrow_wait"].max() <= timeout
    assert result.summary["proxy"]["borrow_timeouts"] == len(timed_out)
    assert result.summary["requests"]["errors"]["borrow_timeout"] == len(timed_out)


def test_mean_borrow_wait_matches_erlang_c() -> None:
    # Poisson transactions, exponential hold (CPU on an instance with far more vCPUs than connections),
    # servers = the proxy's DB connection cap: an M/M/c queue
    c, hold, rho = 10, 0.010, 0.8
    rate = rho * c / hold
    expected = theory.mmc(rate, hold, c)
    waits, p_wait = [], []
    for seed in range(3):
        raw = run_raw(proxied(rate=rate, cpu_s=hold, pct=c, max_connections=100, duration_s=300.0, seed=seed))
        log = raw.extra["proxy"]
        keep = log["borrow_t"] > 20.0  # after the connections are open
        waits.append(log["borrow_wait"][keep].mean())
        p_wait.append((log["borrow_wait"][keep] > 0).mean())
    # about 650k borrows in all
    assert np.mean(waits) == pytest.approx(expected["wq_s"], rel=0.05)
    assert np.mean(p_wait) == pytest.approx(expected["p_wait"], rel=0.03)


def test_pinned_sessions_hold_db_connections_and_starve_the_rest() -> None:
    shared = run_raw(proxied(rate=100.0, cpu_s=0.005, pct=5.0, duration_s=30.0, pool=40))
    pinned = run_raw(
        proxied(
            rate=100.0,
            cpu_s=0.005,
            pct=5.0,
            duration_s=30.0,
            pool=40,
            proxy={"pinning_fraction": 1.0, "connection_borrow_timeout": 1.0},
        )
    )
    # 5 DB connections multiplex 100 transactions/s easily ...
    assert not (shared.recorder.requests()["code"] != 0).any()
    # ... but once 5 client connections pin them, the other clients can only time out
    pins = pinned.extra["proxy"]
    assert np.cumsum(pins["pin_delta"]).max() == 5
    codes = pinned.recorder.requests()["code"]
    assert (codes == CODE["borrow_timeout"]).sum() > 100


def test_a_pinning_query_pins_its_client_connection() -> None:
    raw = run_raw(proxied(rate=4000.0, cpu_s=0.01, pct=50.0, duration_s=20.0, pool=20, query={"pins": True}))
    pins = raw.extra["proxy"]
    # every client connection that ran a transaction is now pinned, one DB connection each
    _, level = proxy_db_level(raw)
    assert np.cumsum(pins["pin_delta"]).max() == level.max() == 20


def test_proxy_sends_writes_to_the_new_writer_before_dns_names_it() -> None:
    via_proxy = simdb.run("failover-proxy", plots=False)
    direct = simdb.run("failover-dns-cache", plots=False)
    f = via_proxy.summary["failovers"][0]
    assert f["first_write_ok_s"] < f["dns_updated_s"]
    assert f["clients_not_recovered"] == 0
    assert via_proxy.summary["requests"]["errors"]["read_only"] == 0
    # same failure, same seed: the direct clients are still stuck on the old writer
    assert direct.summary["failovers"][0]["writer_available_s"] == pytest.approx(f["writer_available_s"])
    assert direct.summary["availability"]["clients_not_recovered"] > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_same_lambda_burst_direct_exhausts_connections_and_through_the_proxy_does_not(seed: int) -> None:
    direct = simdb.run("lambda-burst-direct", seed=seed, plots=False).summary
    proxy = simdb.run("lambda-burst-proxy", seed=seed, plots=False).summary
    assert direct["requests"]["errors"]["too_many_connections"] > 0
    assert proxy["requests"]["errors"]["too_many_connections"] == 0
    assert proxy["proxy"]["peak_db_connections"] < direct["connections"]["peak_db"]
    # paired: the same invocations arrive in both runs
    assert proxy["requests"]["total"] == direct["requests"]["total"]


def test_fixed_proxy_configuration_has_fewer_borrow_timeouts() -> None:
    broken = simdb.run("proxy-borrow-timeout", plots=False).summary
    fixed = simdb.run("proxy-borrow-fixed", plots=False).summary
    assert broken["proxy"]["borrow_timeouts"] > 0
    assert fixed["proxy"]["borrow_timeouts"] < broken["proxy"]["borrow_timeouts"]
    assert fixed["proxy"]["borrow_timeouts"] == 0
