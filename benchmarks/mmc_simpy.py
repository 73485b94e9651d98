"""The reference: M/M/c written the way the SimPy documentation writes queueing models."""

from __future__ import annotations

import random
import time

import simpy


def customer(env: simpy.Environment, servers: simpy.Resource, mean_service: float, waits: list[float]):
    arrive = env.now
    with servers.request() as req:
        yield req
        waits.append(env.now - arrive)
        yield env.timeout(random.expovariate(1.0 / mean_service))


def source(
    env: simpy.Environment, servers: simpy.Resource, rate: float, mean_service: float, waits: list[float]
):
    while True:
        yield env.timeout(random.expovariate(rate))
        env.process(customer(env, servers, mean_service, waits))


def run(customers: int, c: int = 20, rho: float = 0.8, mean_service: float = 0.001, seed: int = 1) -> dict:
    """Simulate about ``customers`` arrivals; return customers/s of wall time and the mean wait."""
    random.seed(seed)
    rate = rho * c / mean_service
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    waits: list[float] = []
    env.process(source(env, servers, rate, mean_service, waits))
    started = time.perf_counter()
    env.run(until=customers / rate)
    wall = time.perf_counter() - started
    return {
        "customers": len(waits),
        "wall_s": wall,
        "per_s": len(waits) / wall,
        "mean_wait_s": sum(waits) / len(waits),
    }


if __name__ == "__main__":
    print(run(200_000))
