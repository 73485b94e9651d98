"""Timed events: operations and faults at simulated times. One handler per `action`.

A new mechanism registers its handler in ``HANDLERS``; the engine does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..units import format_duration

if TYPE_CHECKING:
    from ..engine import Sim
    from .services import Task


def _deploy(sim: Sim, ev: Any) -> None:
    service = sim.service(ev.service)
    env = sim.env

    def stop_later(tasks: list[Task], delay: float, wave: int):  # type: ignore[no-untyped-def]
        yield env.timeout(delay)
        service.stop_tasks(tasks)
        sim.rec.event(
            env.now, "tasks_stopped", ev.service, f"wave {wave}: {len(tasks)} replaced tasks stopped"
        )

    def run():  # type: ignore[no-untyped-def]
        yield env.timeout(ev.at)
        old = list(service.serving)
        sizes = [len(old) // ev.waves + (1 if w < len(old) % ev.waves else 0) for w in range(ev.waves)]
        offset = 0
        for wave, size in enumerate(sizes, start=1):
            if wave > 1:
                yield env.timeout(ev.wave_interval)
            replaced = old[offset : offset + size]
            offset += size
            service.start_tasks(size)
            sim.rec.event(
                env.now,
                "deploy_wave",
                ev.service,
                f"wave {wave}/{ev.waves}: {size} new tasks; {size} old stop after {format_duration(ev.overlap)}",
            )
            env.process(stop_later(replaced, ev.overlap, wave))

    env.process(run())


def _scale_service(sim: Sim, ev: Any) -> None:
    service = sim.service(ev.service)
    env = sim.env

    def run():  # type: ignore[no-untyped-def]
        yield env.timeout(ev.at)
        current = len(service.serving)
        if ev.tasks > current:
            service.start_tasks(ev.tasks - current)
        elif ev.tasks < current:
            # scale-in stops the newest tasks first
            service.stop_tasks(service.serving[ev.tasks :])
        sim.rec.event(env.now, "scale_service", ev.service, f"{current} -> {ev.tasks} tasks")

    env.process(run())


def _write_spike(sim: Sim, ev: Any) -> None:
    # the rate change itself is part of each write query's rate steps (workload.rate_steps)
    env = sim.env

    def run():  # type: ignore[no-untyped-def]
        yield env.timeout(ev.at)
        sim.rec.event(
            env.now, "write_spike", ev.service, f"writes x{ev.factor:g} for {format_duration(ev.for_)}"
        )
        yield env.timeout(ev.for_)
        sim.rec.event(env.now, "write_spike_end", ev.service, "")

    env.process(run())


HANDLERS: dict[str, Callable[[Sim, Any], None]] = {
    "deploy": _deploy,
    "scale_service": _scale_service,
    "write_spike": _write_spike,
}


def schedule_all(sim: Sim, events: list[Any]) -> None:
    for ev in events:
        HANDLERS[ev.action](sim, ev)
