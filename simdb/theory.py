"""Analytic expectations printed beside simulated values: Erlang C, Little's law, the connection budget;
and the same over arrays of scenario points (``*_vec``, :func:`evaluate_points`) to screen a sweep's grid.

>>> round(erlang_c(1, 0.8), 6)   # M/M/1: P(wait) = rho
0.8
>>> round(mmc(800.0, 0.001, 1)["wq_s"] * 1000, 6)   # M/M/1: Wq = rho / (mu - lambda)
4.0
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model.workload import rate_steps
from .scenario import Deploy, Query, QueryPlan, ScaleService, Scenario


def erlang_c(c: int, a: float) -> float:
    """P(wait) in M/M/c with offered load ``a`` = λ/μ (FACTS: theory.erlang_c); 1.0 when unstable."""
    if a >= c:
        return 1.0
    b = 1.0  # Erlang B by its stable recurrence
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def mmc(arrival_rate: float, mean_service_s: float, c: int) -> dict[str, float]:
    """M/M/c steady state: utilization, P(wait), mean wait Wq and sojourn W (seconds)."""
    a = arrival_rate * mean_service_s
    rho = a / c
    if rho >= 1.0:
        return {"utilization": rho, "p_wait": 1.0, "wq_s": math.inf, "w_s": math.inf}
    p_wait = erlang_c(c, a)
    wq = p_wait * mean_service_s / (c - a)
    return {"utilization": rho, "p_wait": p_wait, "wq_s": wq, "w_s": wq + mean_service_s}


def service_scv(weights: list[float], means: list[float], exponential: list[bool]) -> float:
    """Squared coefficient of variation of a mixture of exponential / constant service times."""
    total = sum(weights)
    m1 = sum(w * m for w, m in zip(weights, means, strict=True)) / total
    m2 = sum(w * (2 if e else 1) * m * m for w, m, e in zip(weights, means, exponential, strict=True)) / total
    return m2 / (m1 * m1) - 1.0


def queueing(scenario: Scenario, vcpu: int) -> dict[str, Any] | None:
    """Expected CPU queueing on the writer when the whole workload is stationary Poisson to one instance.

    M/M/c when every query's CPU time is exponential with one mean; otherwise M/G/c by the
    Allen-Cunneen approximation Wq ≈ Wq(M/M/c)·(1 + Cs²)/2. None when no closed form applies.
    """
    if scenario.events:
        return None  # rates or pool capacity change over time: no steady state
    queries = [q for s in scenario.services for q in s.workload]
    if any((q.route or "writer") != "writer" for q in queries) and scenario.cluster.readers:
        return None
    if not queries or any(q.rate is None or q.bursts or q.arrival != "poisson" for q in queries):
        return None
    if any(q.plan is not None and q.plan.growth > 0 for q in queries):
        return None  # a growing table: the CPU times drift, no steady state
    if any(q.transaction is not None and q.transaction.locks for q in queries):
        return None  # row-lock waits come before the CPU queue and add to what is measured as CPU wait
    rates = [q.rate or 0.0 for q in queries]
    lam = sum(rates)
    if lam <= 0:
        return None
    means = [plan_cost_s(q, 0.0) for q in queries]
    expo = [q.cpu_distribution == "exponential" for q in queries]
    mean_s = sum(r * m for r, m in zip(rates, means, strict=True)) / lam
    scv = service_scv(rates, means, expo)
    exact = all(expo) and max(means) - min(means) < 1e-15
    base = mmc(lam, mean_s, vcpu)
    if not _pools_never_bind(scenario, lam, vcpu, base):
        return None
    factor = 1.0 if exact else (1.0 + scv) / 2.0
    wq = base["wq_s"] * factor
    return {
        "model": "M/M/c (Erlang C)" if exact else "M/G/c (Allen-Cunneen approximation)",
        "servers": vcpu,
        "arrival_rate_per_s": lam,
        "mean_service_ms": mean_s * 1000,
        "utilization": base["utilization"],
        "p_wait": base["p_wait"] if exact else None,
        "wq_ms": wq * 1000 if math.isfinite(wq) else None,
        "w_ms": (wq + mean_s) * 1000 if math.isfinite(wq) else None,
        "stable": base["utilization"] < 1.0,
        "little_l": lam * (wq + mean_s) if math.isfinite(wq) else None,
    }


def _pools_never_bind(scenario: Scenario, lam: float, vcpu: int, base: dict[str, float]) -> bool:
    """True when the pools hold so many connections that they almost never limit the CPU queue.

    Connections in use = queries at the DB (M/M/c: P(N ≥ c + k) = C·ρ^k) + connections held after the
    query (about λ·hold, Poisson). Require P(pool full) below 0.1%.
    """
    if base["utilization"] >= 1.0:
        return False
    slots = sum(s.tasks * s.pool.max_size for s in scenario.services)
    held = sum(
        (q.rate or 0.0) * ((q.transaction.hold + q.transaction.external_call) if q.transaction else 0.0)
        for s in scenario.services
        for q in s.workload
    )
    spare = slots - held - 4.0 * math.sqrt(held) - vcpu
    if spare <= 0:
        return False
    return base["p_wait"] * base["utilization"] ** spare < 1e-3


def task_steps(scenario: Scenario, service: str) -> list[tuple[float, int]]:
    """(time, change in tasks) for one service: initial tasks, deploy waves and scaling."""
    spec = next(s for s in scenario.services if s.name == service)
    return [(t, int(d[0])) for t, d in task_steps_vec(scenario, service, np.array([spec.tasks]))]


def peak_of_steps(steps: list[tuple[float, float]], start: float = 0.0, end: float = math.inf) -> float:
    """Highest level of a step function within [start, end), changes at one instant applied together."""
    level = sum(d for t, d in steps if t <= start)
    peak = level
    for t in sorted({t for t, _ in steps if start < t < end}):
        level += sum(d for ts, d in steps if ts == t)
        peak = max(peak, level)
    return peak


def connection_budget(
    scenario: Scenario, max_connections: dict[str, int], members: dict[str, list[str]]
) -> dict:
    """Worst case connections per endpoint: live tasks × pool max_size over time, vs max_connections.

    ``members`` maps endpoint → instance names; ``max_connections`` maps instance → limit.
    """
    per_endpoint: dict[str, list[tuple[float, float]]] = {}
    fleets = []
    proxied: set[str] = set()
    unreserved = scenario.account.lambda_concurrency - sum(
        s.reserved_concurrency or 0 for s in scenario.services if s.kind == "lambda"
    )
    for svc in scenario.services:
        routes = [r for r in svc.routes() if not r.startswith("proxy")]
        proxied.update(r for r in svc.routes() if r.startswith("proxy"))
        if svc.kind == "lambda":
            # one connection per environment; a new environment starts only when none is free, so they
            # never outnumber the function's concurrency limit (FACTS: lambda.reserved, lambda.account)
            cap = svc.reserved_concurrency if svc.reserved_concurrency is not None else unreserved
            steps, size = [(0.0, cap)], 1
            fleet = {"service": svc.name, "kind": "lambda", "environments": cap}
        else:
            steps, size = task_steps(scenario, svc.name), svc.pool.max_size
            fleet = {
                "service": svc.name,
                "kind": "ecs",
                "tasks": svc.tasks,
                "peak_tasks": int(peak_of_steps([(t, float(d)) for t, d in steps])),
            }
        fleets.append({**fleet, "pool_max_size": size, "endpoints": svc.routes()})
        for route in routes:
            per_endpoint.setdefault(route, []).extend((t, d * size) for t, d in steps)
    proxy = scenario.cluster.proxy
    if proxy is not None and proxied:
        # the proxy holds at most max_connections_percent of each target's max_connections
        for route, direct in (("proxy", "writer"), ("proxy:reader", "reader")):
            if route in proxied:
                cap = sum(
                    math.floor(proxy.max_connections_percent * max_connections[m] / 100.0 + 1e-9)
                    for m in members[direct]
                )
                per_endpoint.setdefault(direct, []).append((0.0, float(cap)))
                fleets.append(
                    {"service": route, "kind": "proxy", "max_db_connections": cap, "endpoints": [direct]}
                )
    endpoints = {}
    per_instance: dict[str, list[tuple[float, float]]] = {}
    for route, steps in per_endpoint.items():
        limit = sum(max_connections[m] for m in members[route])
        endpoints[route] = {"peak_demand": int(peak_of_steps(steps)), "max_connections": limit}
        # an endpoint spreads new connections evenly (in expectation) over its members
        share = 1.0 / len(members[route])
        for m in members[route]:
            per_instance.setdefault(m, []).extend((t, d * share) for t, d in steps)
    instances = {}
    for name, steps in per_instance.items():
        peak = peak_of_steps(steps)
        instances[name] = {
            "peak_demand": round(peak, 1),
            "max_connections": max_connections[name],
            "fits": peak <= max_connections[name],
        }
    all_steps = [s for steps in per_endpoint.values() for s in steps]
    total_limit = sum(max_connections[m] for m in instances)
    return {
        "formula": "peak over time of sum(live tasks x pool max_size), Lambda concurrency limits (one connection "
        "per environment) and RDS Proxy caps, per endpoint and spread over its instances",
        "fleets": fleets,
        "endpoints": endpoints,
        "instances": instances,
        "peak_demand": int(peak_of_steps(all_steps)) if all_steps else 0,
        "max_connections": total_limit,
        "fits": all(i["fits"] for i in instances.values()),
    }


# ------------------------------------------------------------------------------------- storage, replication


def quorum_availability(n: int, k: int, p: float) -> float:
    """P(at least ``k`` of ``n`` independent copies are up), each up with probability ``p`` (FACTS: theory.quorum).

    >>> round(quorum_availability(6, 4, 0.99), 9)   # Aurora's write quorum with 99% copies
    0.999980446
    """
    return sum(math.comb(n, i) * p**i * (1.0 - p) ** (n - i) for i in range(k, n + 1))


def az_quorum_availability(azs: int, copies_per_az: int, k: int, p_copy: float, p_az: float) -> float:
    """P(at least ``k`` copies reachable) when copies fail independently (``p_copy`` up) and whole AZs fail
    independently (``p_az`` up): AZ failures are correlated failures of their copies, so condition on
    how many AZs are up (FACTS: theory.quorum).

    >>> round(az_quorum_availability(3, 2, 4, 1.0, 0.99), 6)   # writes survive one AZ: 3 AZ states of 8
    0.999702
    """
    total = 0.0
    for up in range(azs + 1):
        p_state = math.comb(azs, up) * p_az**up * (1.0 - p_az) ** (azs - up)
        total += (
            p_state * quorum_availability(up * copies_per_az, k, p_copy) if up * copies_per_az >= k else 0.0
        )
    return total


def aurora_lag_s(
    write_rate: float, base_s: float, per_1000_s: float, load_factor: float, cpu: float
) -> float:
    """Aurora reader lag at a write rate (writes/s) and reader CPU utilisation 0-1 (FACTS: replication.aurora_lag)."""
    return (base_s + per_1000_s * write_rate / 1000.0) * (1.0 + load_factor * cpu)


def async_lag_growth(write_rate: float, apply_rate: float) -> float:
    """Seconds of lag an async replica gains per second while writes outpace its apply rate; 0 when not.

    >>> async_lag_growth(3000.0, 2000.0)
    0.5
    """
    return max(0.0, (write_rate - apply_rate) / apply_rate)


def write_rate_steps(scenario: Scenario) -> list[tuple[float, float]] | None:
    """Total open-workload write rate as steps [(start, rate)], or None when a write has no fixed rate."""
    cuts: set[float] = set()
    parts = []
    for svc in scenario.services:
        for q in svc.workload:
            if q.kind != "write":
                continue
            if q.users is not None or q.follows is not None:
                return None
            starts, rates = rate_steps(scenario, svc, q)  # every step list starts at 0
            parts.append((starts, rates))
            cuts.update(starts)
    return [
        (t, sum(rates[bisect.bisect_right(starts, t) - 1] for starts, rates in parts)) for t in sorted(cuts)
    ]


def async_peak_lag_s(steps: list[tuple[float, float]], end: float, apply_rate: float) -> float:
    """Fluid estimate of the largest lag of an async replica: the apply backlog grows at (λw − μ) while
    writes outpace apply and drains at (μ − λw) after; a write waits backlog/μ.

    >>> async_peak_lag_s([(0.0, 800.0), (120.0, 3200.0), (180.0, 800.0)], 360.0, 2000.0)
    36.0
    """
    backlog = peak = 0.0
    for (t, rate), t_next in zip(steps, [s for s, _ in steps[1:]] + [end], strict=True):
        backlog = max(0.0, backlog + (rate - apply_rate) * (t_next - t))
        peak = max(peak, backlog)
    return peak / apply_rate


# ------------------------------------------------------------------------------------------------ query plans

PLAN_FORMULA = (
    "the instance saturates when (rate / members) x cost(rows) + the other queries' load on it = vCPUs; "
    "cost(rows) = cpu + cost_per_row x log2(rows) (index) or cpu + cost_per_row x rows (scan); rows(t) = rows + "
    "growth x t; rates are the run's mean arrival rates, spread evenly over an endpoint's members; the other "
    "queries' load is theirs at the start of the run (rate x mean CPU, their plans at t = 0)"
)


def plan_rows(plan: QueryPlan, t: float) -> float:
    """The plan's table rows at time ``t`` (s)."""
    return plan.rows + plan.growth * t


def plan_cost_s(query: Query, t: float) -> float:
    """Mean CPU seconds per execution of ``query`` arriving at time ``t``: its `cpu`, plus what its plan's
    table costs then (FACTS: plan.scan, plan.index).

    >>> from simdb.scenario import Query
    >>> plan = {"access": "scan", "rows": 1000, "growth": 10, "cost_per_row": 1e-6}
    >>> round(plan_cost_s(Query(query="q", rate=1, cpu=0.001, plan=plan), 100.0), 9)   # 1 ms + 2000 rows x 1 µs
    0.003
    """
    return query.cpu + plan_extra_s(query.plan, t) if query.plan is not None else query.cpu


def plan_extra_s(plan: QueryPlan | None, t: float) -> float:
    """What a plan's table adds to the mean CPU per execution at time ``t`` (0 without a plan)."""
    if plan is None:
        return 0.0
    assert plan.cost_per_row is not None
    rows = plan_rows(plan, t)
    return plan.cost_per_row * (math.log2(rows) if plan.access == "index" else rows)


def plan_mean_extra_s(plan: QueryPlan | None, duration: float) -> float:
    """:func:`plan_extra_s` averaged over arrivals spread evenly in [0, duration].

    >>> from simdb.scenario import QueryPlan
    >>> plan = QueryPlan(access="index", rows=1, growth=1, cost_per_row=1.0)
    >>> round(plan_mean_extra_s(plan, 7.0), 6)   # (8 ln 8 - 8 + 1) / (7 ln 2), the mean of log2(r) over [1, 8]
    1.985876
    """
    if plan is None or plan.growth == 0.0 or duration <= 0.0:
        return plan_extra_s(plan, 0.0)
    if plan.access == "scan":
        return plan_extra_s(plan, duration / 2.0)  # linear in time
    assert plan.cost_per_row is not None
    r0, r1 = plan.rows, plan_rows(plan, duration)
    if r1 - r0 < 1e-6 * r0:  # too little growth for the integral's difference to be exact: the midpoint
        return plan_extra_s(plan, duration / 2.0)
    # rows grow linearly in time, so the mean of log2(rows) over time is its mean over [r0, r1]
    mean_log2 = (r1 * math.log(r1) - r1 - r0 * math.log(r0) + r0) / ((r1 - r0) * math.log(2.0))
    return plan.cost_per_row * mean_log2


def plan_saturation_rows(
    access: str, cpu_s: float, cost_per_row: float, rate_per_s: float, vcpu: float, other_load: float
) -> float | None:
    """Table rows at which rate·cost(rows) + other_load = vcpu: beyond them the instance's CPU queue grows
    without bound (utilisation ≥ 1). 0.0 when it is saturated whatever the table's size; None when no table
    size saturates it (no load, or an index whose log2 would need more than 2^1024 rows).

    >>> round(plan_saturation_rows("scan", 0.001, 1e-7, 2.0, 4.0, 0.5))   # (3.5 / 2 - 0.001) / 1e-7
    17490000
    >>> plan_saturation_rows("index", 0.0, 1e-3, 100.0, 2.0, 0.0)   # log2(rows) = 20
    1048576.0
    """
    if rate_per_s <= 0.0:
        return None
    budget = (vcpu - other_load) / rate_per_s - cpu_s  # CPU seconds per execution the table may take
    if budget <= 0.0:
        return 0.0
    units = budget / cost_per_row
    if access == "scan":
        return units
    return 2.0**units if units < 1024.0 else None


# ------------------------------------------------------------------------------ vectorised: many points at once
#
# The same formulas over numpy arrays, one element per scenario point, for screening a sweep's grid without
# simulating it. Each mirrors its scalar function above step by step (same operations in the same order), so
# the two agree to the last bit, or within 1e-12 where numpy's power differs from Python's.


def erlang_b_vec(c: Any, a: Any) -> np.ndarray:
    """Erlang B (blocking in M/M/c/c) elementwise, by the recurrence B(k) = a·B(k−1) / (k + a·B(k−1)), B(0) = 1.

    No factorials or powers, so no overflow at any c; the cost is Σc array steps. Points are sorted by c so
    that step k touches only the points with c ≥ k, a prefix (a view, no copy).

    >>> [round(float(b), 6) for b in erlang_b_vec([1, 2, 5000], [0.8, 1.0, 4900.0])]
    [0.444444, 0.2, 0.002216]
    """
    c_arr, a_arr = np.broadcast_arrays(np.asarray(c, dtype=np.int64), np.asarray(a, dtype=np.float64))
    cs, av = c_arr.ravel(), a_arr.ravel()
    if cs.size and cs.min() < 0:
        raise ValueError("servers c must be ≥ 0")
    order = np.argsort(-cs, kind="stable")
    cs, av = cs[order], av[order]
    b = np.ones(cs.size)
    top = int(cs[0]) if cs.size else 0
    # how many points have c ≥ k, for k = 1..top
    active = np.searchsorted(-cs, -np.arange(1, top + 1), side="right")
    for k, m in enumerate(active.tolist(), start=1):
        ab = av[:m] * b[:m]
        b[:m] = ab / (k + ab)
    out = np.empty_like(b)
    out[order] = b
    return out.reshape(c_arr.shape)


def erlang_c_vec(c: Any, a: Any) -> np.ndarray:
    """:func:`erlang_c` elementwise: P(wait) in M/M/c at offered load a = λ/μ; 1.0 where a ≥ c."""
    c_arr, a_arr = np.broadcast_arrays(np.asarray(c, dtype=np.int64), np.asarray(a, dtype=np.float64))
    b = erlang_b_vec(c_arr, a_arr)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = a_arr / c_arr
        p = b / (1.0 - rho + rho * b)
    return np.where(a_arr >= c_arr, 1.0, p)


def mmc_vec(arrival_rate: Any, mean_service_s: Any, c: Any) -> dict[str, np.ndarray]:
    """:func:`mmc` elementwise: utilization, p_wait, wq_s, w_s (inf where unstable)."""
    lam, s, c_arr = np.broadcast_arrays(
        np.asarray(arrival_rate, dtype=np.float64),
        np.asarray(mean_service_s, dtype=np.float64),
        np.asarray(c, dtype=np.int64),
    )
    a = lam * s
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = a / c_arr
        stable = rho < 1.0
        p_wait = np.where(stable, erlang_c_vec(c_arr, a), 1.0)
        wq = np.where(stable, p_wait * s / (c_arr - a), np.inf)
    return {"utilization": rho, "p_wait": p_wait, "wq_s": wq, "w_s": wq + s}


def mmc_wait_quantile(arrival_rate: float, mean_service_s: float, c: int, q: float) -> float:
    """The ``q`` quantile (0 < q < 1) of the wait in queue of M/M/c, in seconds; inf when unstable.

    P(Wq > t) = C(c, a)·exp(−(cμ − λ)t), so the quantile is 0 when q ≤ 1 − C, else ln(C / (1 − q)) / (cμ − λ)
    (FACTS: theory.erlang_c).

    >>> round(mmc_wait_quantile(800.0, 0.001, 1, 0.99) * 1000, 3)   # M/M/1, ρ 0.8: ln(0.8/0.01) / 200/s
    21.91
    """
    m = mmc(arrival_rate, mean_service_s, c)
    if m["utilization"] >= 1.0:
        return math.inf
    if q <= 1.0 - m["p_wait"]:
        return 0.0
    return math.log(m["p_wait"] / (1.0 - q)) * mean_service_s / (c - arrival_rate * mean_service_s)


def mmc_wait_quantile_vec(arrival_rate: Any, mean_service_s: Any, c: Any, q: float) -> np.ndarray:
    """:func:`mmc_wait_quantile` elementwise."""
    lam, s, c_arr = np.broadcast_arrays(
        np.asarray(arrival_rate, dtype=np.float64),
        np.asarray(mean_service_s, dtype=np.float64),
        np.asarray(c, dtype=np.int64),
    )
    m = mmc_vec(lam, s, c_arr)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(m["p_wait"] / (1.0 - q)) * s / (c_arr - lam * s)
    return np.where(m["utilization"] >= 1.0, np.inf, np.where(q <= 1.0 - m["p_wait"], 0.0, t))


def quorum_availability_vec(n: int, k: int, p: Any) -> np.ndarray:
    """:func:`quorum_availability` elementwise over the copies' up probability ``p``."""
    p = np.asarray(p, dtype=np.float64)
    return sum((math.comb(n, i) * p**i * (1.0 - p) ** (n - i) for i in range(k, n + 1)), np.zeros(p.shape))


def az_quorum_availability_vec(azs: int, copies_per_az: int, k: int, p_copy: Any, p_az: Any) -> np.ndarray:
    """:func:`az_quorum_availability` elementwise over ``p_copy`` and ``p_az``."""
    p_copy, p_az = np.broadcast_arrays(
        np.asarray(p_copy, dtype=np.float64), np.asarray(p_az, dtype=np.float64)
    )
    total = np.zeros(p_copy.shape)
    for up in range(azs + 1):
        if up * copies_per_az < k:
            continue
        p_state = math.comb(azs, up) * p_az**up * (1.0 - p_az) ** (azs - up)
        total = total + p_state * quorum_availability_vec(up * copies_per_az, k, p_copy)
    return total


def peak_of_steps_vec(
    steps: list[tuple[float, Any]], n: int, start: float = 0.0, end: float = math.inf
) -> np.ndarray:
    """:func:`peak_of_steps` for ``n`` step functions that change at the same times by different amounts
    (each change an array of ``n``)."""
    level = sum((d for t, d in steps if t <= start), np.zeros(n))
    peak = level
    for t in sorted({t for t, _ in steps if start < t < end}):
        level = level + sum(d for ts, d in steps if ts == t)
        peak = np.maximum(peak, level)
    return peak


def task_steps_vec(scenario: Scenario, service: str, tasks: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """:func:`task_steps` for an array of initial task counts (deploy waves split each count the same way)."""
    steps: list[tuple[float, np.ndarray]] = [(0.0, np.asarray(tasks, dtype=np.int64))]

    def tasks_at(t: float) -> np.ndarray:
        return sum(d for ts, d in steps if ts <= t)

    for ev in sorted(
        (e for e in scenario.events if getattr(e, "service", None) == service), key=lambda e: e.at
    ):
        if isinstance(ev, Deploy):
            n = tasks_at(ev.at)
            interval = ev.wave_interval if ev.wave_interval is not None else ev.overlap
            for w in range(ev.waves):
                size = n // ev.waves + (w < n % ev.waves)
                start = ev.at + w * interval
                steps += [(start, size), (start + ev.overlap, -size)]
        elif isinstance(ev, ScaleService):
            steps.append((ev.at, ev.tasks - tasks_at(ev.at)))
    return steps


@dataclass
class PointInputs:
    """The numbers that differ between ``n`` points of one scenario, as arrays of ``n``: what the vectorised
    theory reads instead of the scenario's own values. Build with :meth:`of`, then replace arrays."""

    n: int
    tasks: list[np.ndarray]  # per service (ECS tasks at start)
    pool_max_size: list[np.ndarray]  # per service
    rate: list[list[np.ndarray | None]]  # per service and query; None: the query has no fixed rate
    cpu: list[list[np.ndarray]]  # per service and query: mean CPU seconds (a plan's `cpu`, its fixed part)
    vcpu: dict[str, np.ndarray]  # per instance (Serverless v2: the maximum capacity's, not an integer)
    max_connections: dict[str, np.ndarray]  # per instance
    # storage failures (seconds; NaN = not set)
    segment_mtbf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    segment_mttr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    az_mtbf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    az_mttr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    segment_repair: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # per service and query: what a plan's table adds to `cpu`, averaged over the run (0 without a plan)
    plan_extra: list[list[float]] = field(default_factory=list)
    # any query's table grows: its CPU times drift, so no point has a steady-state queue
    plan_grows: bool = False

    @classmethod
    def of(cls, scenario: Scenario, instances: list[Any], n: int) -> PointInputs:
        """The scenario's own values repeated ``n`` times; ``instances`` as in a RawRun (name, vcpu,
        max_connections)."""

        def full(value: float | None, dtype: Any = np.float64) -> np.ndarray:
            return np.full(n, np.nan if value is None else value, dtype=dtype)

        failures = scenario.cluster.storage.failures
        return cls(
            n=n,
            tasks=[full(s.tasks, np.int64) for s in scenario.services],
            pool_max_size=[full(s.pool.max_size, np.int64) for s in scenario.services],
            rate=[
                [full(q.rate) if q.rate is not None else None for q in s.workload] for s in scenario.services
            ],
            cpu=[[full(q.cpu) for q in s.workload] for s in scenario.services],
            vcpu={i.name: full(i.vcpu) for i in instances},
            max_connections={i.name: full(i.max_connections, np.int64) for i in instances},
            segment_mtbf=full(failures.segment_mtbf),
            segment_mttr=full(failures.segment_mttr),
            az_mtbf=full(failures.az_mtbf),
            az_mttr=full(failures.az_mttr),
            segment_repair=full(scenario.cluster.storage.segment_repair),
            plan_extra=[
                [plan_mean_extra_s(q.plan, scenario.duration) for q in s.workload] for s in scenario.services
            ],
            plan_grows=any(
                q.plan is not None and q.plan.growth > 0 for s in scenario.services for q in s.workload
            ),
        )


def endpoint_members(scenario: Scenario, instances: list[Any]) -> dict[str, list[str]]:
    """Endpoint → instance names, as the summary's theory block builds them from a run's instances."""
    members = {"writer": [instances[0].name]}
    regions = scenario.cluster.regions()
    home = regions[0] if regions else ""
    readers = [i.name for i in instances if i.role == "reader" and i.region == home]
    members["reader"] = readers or [instances[0].name]
    if regions:  # aurora-global: the secondary cluster's reader endpoint
        members[f"reader:{regions[1]}"] = [i.name for i in instances if i.region == regions[1]]
    for r, inst in zip(scenario.cluster.readers, instances[1:], strict=False):
        if r.endpoint:
            members.setdefault(f"custom:{r.endpoint}", []).append(inst.name)
    return members


def queueing_vec(scenario: Scenario, inputs: PointInputs, writer: str) -> dict[str, np.ndarray] | None:
    """:func:`queueing` for every point: arrays of its numbers, NaN where the summary would have no
    `theory.queueing` block (pools may bind, no load); None when no point has one (events, routes, arrivals)."""
    if scenario.events:
        return None
    queries = [q for s in scenario.services for q in s.workload]
    if any((q.route or "writer") != "writer" for q in queries) and scenario.cluster.readers:
        return None
    rates = [r for row in inputs.rate for r in row]
    if (
        not queries
        or any(r is None or q.bursts or q.arrival != "poisson" for q, r in zip(queries, rates, strict=True))
        or inputs.plan_grows
    ):
        return None
    rates_: list[np.ndarray] = [r for r in rates if r is not None]
    vcpu = inputs.vcpu[writer]
    # a plan that does not grow costs the same all run: cpu + its table's part, as plan_cost_s adds them
    extra = [e for row in inputs.plan_extra for e in row] or [0.0] * len(queries)
    means = [
        m + e if q.plan is not None else m
        for m, e, q in zip([m for row in inputs.cpu for m in row], extra, queries, strict=True)
    ]
    expo = [q.cpu_distribution == "exponential" for q in queries]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lam = sum(rates_)
        mean_s = sum(r * m for r, m in zip(rates_, means, strict=True)) / lam
        scv = service_scv(rates_, means, expo)
        stacked = np.stack(means)
        exact = all(expo) & (stacked.max(axis=0) - stacked.min(axis=0) < 1e-15)
        base = mmc_vec(lam, mean_s, vcpu)
        # _pools_never_bind, elementwise
        slots = sum(t * p for t, p in zip(inputs.tasks, inputs.pool_max_size, strict=True))
        held = sum(
            r * ((q.transaction.hold + q.transaction.external_call) if q.transaction else 0.0)
            for q, r in zip(queries, rates_, strict=True)
        )
        spare = slots - held - 4.0 * np.sqrt(held) - vcpu
        binds_never = (
            (base["utilization"] < 1.0) & (spare > 0) & (base["p_wait"] * base["utilization"] ** spare < 1e-3)
        )
        # a Serverless v2 writer's vCPUs need not be a whole number of servers: no Erlang C there
        applies = (lam > 0) & binds_never & (vcpu == np.floor(vcpu))
        factor = np.where(exact, 1.0, (1.0 + scv) / 2.0)
        wq = base["wq_s"] * factor
        finite = np.isfinite(wq)
        p99 = mmc_wait_quantile_vec(lam, mean_s, vcpu, 0.99)

    def only(x: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        keep = applies if where is None else applies & where
        return np.where(keep, x, np.nan)

    return {
        "servers": only(vcpu),
        "arrival_rate_per_s": only(lam),
        "mean_service_ms": only(mean_s * 1000),
        "utilization": only(base["utilization"]),
        "p_wait": only(base["p_wait"], exact),
        "wq_ms": only(wq * 1000, finite),
        "w_ms": only((wq + mean_s) * 1000, finite),
        "stable": only((base["utilization"] < 1.0).astype(np.float64)),
        "little_l": only(lam * (wq + mean_s), finite),
        "wq_p99_ms": only(p99 * 1000, exact),
    }


def connection_budget_vec(
    scenario: Scenario, inputs: PointInputs, members: dict[str, list[str]]
) -> dict[str, Any]:
    """:func:`connection_budget` for every point: the same keys (without `formula` and `fleets`), each an
    array of ``inputs.n``; ``endpoints`` and ``instances`` map names to such dicts."""
    n = inputs.n
    max_connections = inputs.max_connections
    per_endpoint: dict[str, list[tuple[float, Any]]] = {}
    proxied: set[str] = set()
    unreserved = scenario.account.lambda_concurrency - sum(
        s.reserved_concurrency or 0 for s in scenario.services if s.kind == "lambda"
    )
    for index, svc in enumerate(scenario.services):
        routes = [r for r in svc.routes() if not r.startswith("proxy")]
        proxied.update(r for r in svc.routes() if r.startswith("proxy"))
        if svc.kind == "lambda":
            cap = svc.reserved_concurrency if svc.reserved_concurrency is not None else unreserved
            steps: list[tuple[float, Any]] = [(0.0, np.full(n, cap, dtype=np.int64))]
            size: Any = 1
        else:
            steps, size = task_steps_vec(scenario, svc.name, inputs.tasks[index]), inputs.pool_max_size[index]
        for route in routes:
            per_endpoint.setdefault(route, []).extend((t, d * size) for t, d in steps)
    proxy = scenario.cluster.proxy
    if proxy is not None and proxied:
        for route, direct in (("proxy", "writer"), ("proxy:reader", "reader")):
            if route in proxied:
                cap = sum(
                    np.floor(proxy.max_connections_percent * max_connections[m] / 100.0 + 1e-9)
                    for m in members[direct]
                )
                per_endpoint.setdefault(direct, []).append((0.0, cap.astype(np.float64)))
    endpoints = {}
    per_instance: dict[str, list[tuple[float, Any]]] = {}
    for route, steps in per_endpoint.items():
        limit = sum(max_connections[m] for m in members[route])
        endpoints[route] = {"peak_demand": np.floor(peak_of_steps_vec(steps, n)), "max_connections": limit}
        share = 1.0 / len(members[route])
        for m in members[route]:
            per_instance.setdefault(m, []).extend((t, d * share) for t, d in steps)
    instances = {}
    for name, steps in per_instance.items():
        peak = peak_of_steps_vec(steps, n)
        instances[name] = {
            "peak_demand": np.round(peak, 1),
            "max_connections": max_connections[name],
            "fits": peak <= max_connections[name],
        }
    all_steps = [s for steps in per_endpoint.values() for s in steps]
    return {
        "endpoints": endpoints,
        "instances": instances,
        "peak_demand": np.floor(peak_of_steps_vec(all_steps, n)) if all_steps else np.zeros(n),
        "max_connections": sum((max_connections[m] for m in instances), np.zeros(n, dtype=np.int64)),
        "fits": np.logical_and.reduce([i["fits"] for i in instances.values()] or [np.ones(n, dtype=bool)]),
    }


def storage_vec(scenario: Scenario, inputs: PointInputs) -> dict[str, np.ndarray] | None:
    """The summary's `theory.storage` expectations for every point (NaN where no random failures are set);
    None off Aurora."""
    if not scenario.cluster.is_aurora:
        return None
    has_segment = ~np.isnan(inputs.segment_mtbf)
    has_az = ~np.isnan(inputs.az_mtbf)
    applies = has_segment | has_az
    mttr = np.where(np.isnan(inputs.segment_mttr), inputs.segment_repair, inputs.segment_mttr)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_copy = np.where(has_segment, inputs.segment_mtbf / (inputs.segment_mtbf + mttr), 1.0)
        p_az = np.where(has_az, inputs.az_mtbf / (inputs.az_mtbf + inputs.az_mttr), 1.0)
    lost = {
        kind: 1.0 - az_quorum_availability_vec(3, 2, k, p_copy, p_az)
        for kind, k in (("write", 4), ("read", 3))
    }
    return {
        key: np.where(applies, value, np.nan)
        for key, value in (
            ("copy_up_probability", p_copy),
            ("az_up_probability", p_az),
            ("write_quorum_lost_fraction", lost["write"]),
            ("read_quorum_lost_fraction", lost["read"]),
        )
    }


def offered_cpu_vec(
    scenario: Scenario, inputs: PointInputs, members: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    """Offered CPU utilisation per instance: Σ mean rate × mean CPU over the queries routed to it (an endpoint
    spreads them evenly over its members), ÷ vCPUs. A query with a plan costs its mean over the run. The mean rate is over the whole run (schedules, bursts
    and write spikes included). NaN on an instance a closed loop (`users`) or a `follows` query reaches:
    their rate depends on the response time."""
    n = inputs.n
    offered = {name: np.zeros(n) for name in inputs.vcpu}
    for s_index, svc in enumerate(scenario.services):
        for q_index, q in enumerate(svc.workload):
            route = q.route or svc.connect_via
            target = {"proxy": "writer", "proxy:reader": "reader"}.get(route, route)
            if q.users is not None or q.follows is not None:
                mean_rate: Any = np.full(n, np.nan)
            elif q.rate is None:  # a schedule: the same at every point
                mean_rate = _mean_rate(scenario, svc, q)
            else:
                # the run's mean rate is linear in the base rate: bursts add, write spikes multiply
                m0 = _mean_rate(scenario, svc, q.model_copy(update={"rate": 0.0}))
                m1 = _mean_rate(scenario, svc, q.model_copy(update={"rate": 1.0}))
                rate = inputs.rate[s_index][q_index]
                mean_rate = m0 + (m1 - m0) * (rate if rate is not None else q.rate)
            reached = members.get(target, [])
            cpu = inputs.cpu[s_index][q_index]
            if q.plan is not None and inputs.plan_extra:
                cpu = cpu + inputs.plan_extra[s_index][q_index]  # its table's part, averaged over the run
            for m in reached:
                offered[m] = offered[m] + mean_rate * cpu / len(reached)
    return {name: offered[name] / inputs.vcpu[name] for name in offered}


def _mean_rate(scenario: Scenario, service: Any, query: Any) -> float:
    starts, rates = rate_steps(scenario, service, query)
    ends = [*starts[1:], scenario.duration]
    return sum(r * (e - t) for t, e, r in zip(starts, ends, rates, strict=True)) / scenario.duration


def evaluate_points(scenario: Scenario, instances: list[Any], inputs: PointInputs) -> dict[str, np.ndarray]:
    """Every theory number for ``inputs.n`` points of ``scenario`` at once, as flat columns: `theory.*` are the
    summary's `theory` block as `sweep.csv` names it (unrounded; 1.0/0.0 for booleans; NaN where the summary
    has no such number), `analytic.*` extra screening numbers (offered CPU per instance, the M/M/c p99 wait).
    Replication lag is not computed here."""
    members = endpoint_members(scenario, instances)
    cols: dict[str, np.ndarray] = {}
    q = queueing_vec(scenario, inputs, instances[0].name)
    if q is not None:
        p99 = q.pop("wq_p99_ms")
        cols.update({f"theory.queueing.{k}": v for k, v in q.items()})
        cols["analytic.wq_p99_ms"] = p99
    budget = connection_budget_vec(scenario, inputs, members)
    for route, e in budget["endpoints"].items():
        for k, v in e.items():
            cols[f"theory.connection_budget.endpoints.{route}.{k}"] = v
    for name, i in budget["instances"].items():
        for k, v in i.items():
            cols[f"theory.connection_budget.instances.{name}.{k}"] = v
    for k in ("peak_demand", "max_connections", "fits"):
        cols[f"theory.connection_budget.{k}"] = budget[k]
    storage = storage_vec(scenario, inputs)
    if storage is not None:
        cols.update({f"theory.storage.{k}": v for k, v in storage.items()})
    for name, u in offered_cpu_vec(scenario, inputs, members).items():
        cols[f"analytic.cpu_utilization.{name}"] = u
    return {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
