"""An instance lost with its AZ: what was in flight fails, connections break, pools recover after."""

from __future__ import annotations

import numpy as np

import simdb


def _scenario(events: list[dict], cluster: dict | None = None) -> dict:
    return {
        "name": "outage",
        "seed": 8,
        "duration": "40s",
        "cluster": {
            "writer": {"class": "db.r6g.large", "az": "a"},
            "readers": [{"class": "db.r6g.large", "az": "b"}, {"class": "db.r6g.large", "az": "c"}],
            **(cluster or {}),
        },
        "services": [
            {
                "name": "api",
                "tasks": 4,
                "pool": {"max_size": 10},
                "workload": [
                    # ~25 writes in flight at any time: on a vCPU, queued for one, held or committing
                    {
                        "query": "w",
                        "kind": "write",
                        "route": "writer",
                        "rate": 500,
                        "cpu": "3ms",
                        "transaction": {"hold": "40ms"},
                    },
                    {"query": "r", "route": "reader", "rate": 600, "cpu": "1ms"},
                ],
            }
        ],
        "events": events,
    }


OUTAGE_AT, OUTAGE_FOR = 10.0, 5.0


def test_in_flight_failures_equal_the_requests_in_flight_at_the_failure_instant() -> None:
    outage = [{"at": f"{OUTAGE_AT}s", "action": "az_outage", "az": "a", "for": f"{OUTAGE_FOR}s"}]
    result = simdb.run(_scenario(outage), plots=False)
    failed = result.requests
    twin = simdb.run(_scenario([]), plots=False).requests  # the same random numbers up to the outage
    on_writer = twin["instance"] == "writer"
    in_flight = on_writer & (twin["t_acquired"] <= OUTAGE_AT) & (twin["t_end"] > OUTAGE_AT)
    # requests that got a connection later may fail too (a broken connection lent unchecked): not these
    lost = failed[(failed["code"] == "connection_lost") & (failed["t_acquired"] <= OUTAGE_AT)]
    assert in_flight.sum() > 10, "the test needs work in flight at the failure"
    assert len(lost) == in_flight.sum()
    assert result.summary["failovers"][0]["in_flight"] == in_flight.sum()
    assert (lost["instance"] == "writer").all()
    np.testing.assert_array_equal(
        np.sort(lost["t_arrive"].to_numpy()), np.sort(twin.loc[in_flight, "t_arrive"].to_numpy())
    )


def test_connections_break_and_pools_reconnect_when_the_az_returns() -> None:
    # single-az with RDS read replicas: no standby, so the writer is back (in place) when its AZ is
    outage = [{"at": f"{OUTAGE_AT}s", "action": "az_outage", "az": "a", "for": f"{OUTAGE_FOR}s"}]
    cluster = {
        "engine": "postgres",
        "topology": "single-az",
        "failover": {"detection": "0s", "recovery": "0s"},
    }
    result = simdb.run(_scenario(outage, cluster), plots=False)
    ts, req = result.timeseries, result.requests
    during = ts[(ts["time_s"] >= OUTAGE_AT + 1) & (ts["time_s"] < OUTAGE_AT + OUTAGE_FOR)]
    assert (during["DatabaseConnections.writer"] == 0).all()
    after = ts[ts["time_s"] >= OUTAGE_AT + OUTAGE_FOR + 6]  # pools retry at most 5 s apart
    assert (after["DatabaseConnections.writer"] == 40).all()
    writes = req[req["query"] == "w"]
    ok = writes[writes["code"] == "ok"]
    assert not ((ok["t_end"] > OUTAGE_AT) & (ok["t_end"] < OUTAGE_AT + OUTAGE_FOR)).any()
    assert ok["t_end"].max() > 39.0
    # reads never touched AZ a
    reads = req[req["query"] == "r"]
    assert (reads["code"] == "ok").all()
    # writes failed during the outage as refused connections, after waiting for the pool
    codes = set(writes.loc[writes["code"] != "ok", "code"])
    assert codes <= {"connection_lost", "connection_refused", "acquire_timeout"}
    events = result.events
    assert list(events["kind"]) == [
        "az_outage",
        "instance_down",
        "failover_start",
        "failure_detected",
        "az_recovered",
        "instance_up",
        "writer_available",
    ]
