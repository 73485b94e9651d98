"""Analytic expectations printed beside simulated values: Erlang C, Little's law, the connection budget.

>>> round(erlang_c(1, 0.8), 6)   # M/M/1: P(wait) = rho
0.8
>>> round(mmc(800.0, 0.001, 1)["wq_s"] * 1000, 6)   # M/M/1: Wq = rho / (mu - lambda)
4.0
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from .model.workload import rate_steps
from .scenario import Deploy, ScaleService, Scenario


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
    if any(q.transaction is not None and q.transaction.locks for q in queries):
        return None  # row-lock waits come before the CPU queue and add to what is measured as CPU wait
    rates = [q.rate or 0.0 for q in queries]
    lam = sum(rates)
    if lam <= 0:
        return None
    means = [q.cpu for q in queries]
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
    steps: list[tuple[float, int]] = [(0.0, spec.tasks)]

    def tasks_at(t: float) -> int:
        return sum(d for ts, d in steps if ts <= t)

    for ev in sorted(
        (e for e in scenario.events if getattr(e, "service", None) == service), key=lambda e: e.at
    ):
        if isinstance(ev, Deploy):
            n = tasks_at(ev.at)
            interval = ev.wave_interval if ev.wave_interval is not None else ev.overlap
            for w in range(ev.waves):
                size = n // ev.waves + (1 if w < n % ev.waves else 0)
                start = ev.at + w * interval
                steps += [(start, size), (start + ev.overlap, -size)]
        elif isinstance(ev, ScaleService):
            steps.append((ev.at, ev.tasks - tasks_at(ev.at)))
    return steps


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
