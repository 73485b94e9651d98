"""Timed events: operations and faults at simulated times. One handler per `action`.

A new mechanism registers its handler in ``HANDLERS``; the engine does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..rng import exponentials
from ..units import format_duration
from .restore import schedule_restore, schedule_snapshot
from .sessions import schedule_sessions
from .storage import AuroraVolume

if TYPE_CHECKING:
    from ..engine import Sim
    from .services import Task


def _deploy(sim: Sim, ev: Any, index: int) -> None:
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


def _scale_service(sim: Sim, ev: Any, index: int) -> None:
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


def _write_spike(sim: Sim, ev: Any, index: int) -> None:
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


def az_down(sim: Sim, az: str, cause: str, blackhole: bool = False) -> None:
    """An AZ is lost: its instances fail (the writer fails over), its storage copies become unreachable.
    Outages may overlap; instances come back through their recovery once the AZ is back."""
    count = sim.az_outages.get(az, 0)
    sim.az_outages[az] = count + 1
    if count:
        return
    sim.rec.event(sim.env.now, "az_outage", az, cause)
    sim.storage.az_down(az)
    for inst in sim.instances:
        if inst.az == az:
            sim.failovers.lose(inst, f"AZ {az} outage", blackhole)


def az_up(sim: Sim, az: str, cause: str) -> None:
    sim.az_outages[az] -= 1
    if sim.az_outages[az]:
        return
    sim.rec.event(sim.env.now, "az_recovered", az, cause)
    sim.storage.az_up(az)
    sim.failovers.az_back(az)


def _az_outage(sim: Sim, ev: Any, index: int) -> None:
    env = sim.env

    def run():  # type: ignore[no-untyped-def]
        yield env.timeout(ev.at)
        az_down(sim, ev.az, f"for {format_duration(ev.for_)}", ev.mode == "blackhole")
        yield env.timeout(ev.for_)
        az_up(sim, ev.az, "outage over")

    env.process(run())


def _storage_node_failure(sim: Sim, ev: Any, index: int) -> None:
    volume = sim.storage
    assert isinstance(volume, AuroraVolume)  # validated: Aurora only
    env = sim.env
    rng = sim.stream(f"events.{index}")
    repair = sim.scenario.cluster.storage.segment_repair

    def run():  # type: ignore[no-untyped-def]
        yield env.timeout(ev.at)
        alive = [c for c, down in enumerate(volume.node_down) if not down]
        order = list(rng.permutation(alive))
        if ev.az is not None:  # copies in the named AZ first
            order.sort(key=lambda c: volume.azs[c] != ev.az)
        lost = sorted(int(c) for c in order[: ev.count])
        if not lost:
            return
        names = ", ".join(f"{volume.azs[c]}{c % 2 + 1}" for c in lost)
        volume.fail_copies(lost)
        back = [t for t in (ev.for_, repair if repair > 0 else None) if t is not None]
        sim.rec.event(
            env.now,
            "storage_node_failure",
            "volume",
            f"copies {names} lost; {volume.reachable()}/6 reachable"
            + (f"; back in {format_duration(min(back))}" if back else "; not repaired"),
        )
        if not back:
            return
        yield env.timeout(min(back))
        volume.repair_copies(lost)
        how = "repaired" if repair > 0 and (ev.for_ is None or repair <= ev.for_) else "nodes back"
        sim.rec.event(
            env.now, "storage_repaired", "volume", f"copies {names} {how}; {volume.reachable()}/6 reachable"
        )

    env.process(run())


def _at(sim: Sim, at: float, action: Callable[[], None]) -> None:
    """Run ``action`` at simulated time ``at``."""

    def run():  # type: ignore[no-untyped-def]
        yield sim.env.timeout(at)
        action()

    sim.env.process(run())


def _failover(sim: Sim, ev: Any, index: int) -> None:
    def action() -> None:
        sim.failovers.lose(sim.failovers.writer, "planned failover", False, planned=True, to=ev.to)

    _at(sim, ev.at, action)


def _instance_failure(sim: Sim, ev: Any, index: int) -> None:
    _at(
        sim,
        ev.at,
        lambda: sim.failovers.lose(sim.instance(ev.target), "instance failure", ev.mode == "blackhole"),
    )


def _reboot(sim: Sim, ev: Any, index: int) -> None:
    _at(sim, ev.at, lambda: sim.failovers.reboot(sim.instance(ev.target)))


def _global_switchover(sim: Sim, ev: Any, index: int) -> None:
    assert sim.global_db is not None  # validated: aurora-global only
    _at(sim, ev.at, lambda: sim.global_db.switchover(ev.to))  # type: ignore[union-attr]


def _global_failover(sim: Sim, ev: Any, index: int) -> None:
    assert sim.global_db is not None  # validated: aurora-global only
    _at(sim, ev.at, lambda: sim.global_db.failover(ev.to))  # type: ignore[union-attr]


def _region_outage(sim: Sim, ev: Any, index: int) -> None:
    global_db = sim.global_db
    assert global_db is not None  # validated: aurora-global only
    env = sim.env

    def run():  # type: ignore[no-untyped-def]
        yield env.timeout(ev.at)
        length = f"for {format_duration(ev.for_)}" if ev.for_ is not None else "to the end of the run"
        global_db.region_down(ev.region, length, ev.mode == "blackhole")
        if ev.for_ is not None:
            yield env.timeout(ev.for_)
            global_db.region_up(ev.region)

    env.process(run())


# handler(sim, event, index in scenario.events): the index names the event's random stream (events.<index>)
HANDLERS: dict[str, Callable[[Sim, Any, int], None]] = {
    "deploy": _deploy,
    "scale_service": _scale_service,
    "write_spike": _write_spike,
    "az_outage": _az_outage,
    "storage_node_failure": _storage_node_failure,
    "failover": _failover,
    "instance_failure": _instance_failure,
    "reboot": _reboot,
    "idle_in_transaction": schedule_sessions,
    "long_transaction": schedule_sessions,
    "snapshot": schedule_snapshot,
    "restore": schedule_restore,
    "global_switchover": _global_switchover,
    "global_failover": _global_failover,
    "region_outage": _region_outage,
    "batch_update": schedule_sessions,
}


def schedule_random_failures(sim: Sim) -> None:
    """Aurora storage copies and AZs failing at random (cluster.storage.failures), each alternating up/down.

    Up and down times are exponential; each copy and each AZ has its own stream, so the long-run share of
    time a copy is up is mtbf / (mtbf + mttr), independently of the others (FACTS: theory.quorum).
    """
    spec = sim.scenario.cluster.storage
    failures = spec.failures
    volume = sim.storage
    if not isinstance(volume, AuroraVolume):
        return
    env = sim.env
    if failures.segment_mtbf is not None:
        mttr = failures.segment_mttr or spec.segment_repair
        for copy in range(volume.total_copies()):
            draws = exponentials(sim.stream(f"cluster.storage.failures.copy.{copy}"))

            def copy_life(copy: int = copy, draws: Any = draws):  # type: ignore[no-untyped-def]
                while True:
                    yield env.timeout(failures.segment_mtbf * next(draws))
                    volume.fail_copies([copy])
                    yield env.timeout(mttr * next(draws))
                    volume.repair_copies([copy])

            env.process(copy_life())
    if failures.az_mtbf is not None:
        for az in spec.azs:
            draws = exponentials(sim.stream(f"cluster.storage.failures.az.{az}"))

            def az_life(az: str = az, draws: Any = draws):  # type: ignore[no-untyped-def]
                while True:
                    yield env.timeout(failures.az_mtbf * next(draws))
                    az_down(sim, az, "random AZ failure")
                    yield env.timeout(failures.az_mttr * next(draws))
                    az_up(sim, az, "random AZ failure over")

            env.process(az_life())


def schedule_all(sim: Sim, events: list[Any]) -> None:
    for index, ev in enumerate(events):
        HANDLERS[ev.action](sim, ev, index)
