"""A restore drill as the clients saw it: RTO, RPO, the cutover and lost writes, from the model's record and
the request log (vectorised; no loop per request).

Definitions (times in simulated seconds):

- ``rto_s``: restore start (``at``) until the restored cluster is available = provisioning + copy + replay;
  when it never became available, until the run's end.
- ``rpo_s``: restore start minus the restore point (the PITR target or the snapshot's time): the span of
  committed writes the restored cluster does not have.
- ``cutover_s``: restored cluster available until every client is on it. A client (a task of a service)
  is on it from its first successful request there after its last request served by an old instance.
  Until the run's end when some client never got there.
- ``recovery_s``: restore start until every client is on the restored cluster (``rto_s + cutover_s``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .steps import rnd


def neutral() -> dict[str, Any]:
    """The `restore` block of a run without a restore: same keys, zeros and empties."""
    return {
        "restores": 0,
        "from": "",
        "snapshot": "",
        "old_cluster": "",
        "faults": [],
        "restored_instance": "",
        "started_s": 0.0,
        "target_s": 0.0,
        "latest_restorable_s": 0.0,
        "base_snapshot_s": 0.0,
        "size_gib": 0.0,
        "phases": {"provisioning_s": 0.0, "copy_s": 0.0, "replay_s": 0.0},
        "completed": False,
        "available_s": None,
        "failed_s": None,
        "rto_s": 0.0,
        "rpo_s": 0.0,
        "cutover": {
            "enabled": False,
            "update_s": 0.0,
            "dns_ttl_s": 0.0,
            "refresh_pools": False,
            "dns_changed_s": None,
            "pools_refreshed_s": None,
            "failed_s": None,
            "clients": 0,
            "clients_not_cut_over": 0,
            "completed_s": None,
        },
        "cutover_s": 0.0,
        "recovery_s": 0.0,
        "writes_lost": 0,
        "writes_on_old_after_available": 0,
        "requests_on_restored": 0,
        "lazy_load": {"penalty_ms": 0.0, "keys_loaded": 0, "waits": 0, "last_load_s": None},
        "succeeded": False,
        "reason": "",
    }


def clients_cut_over(
    t_arrive: np.ndarray,
    t_end: np.ndarray,
    ok: np.ndarray,
    instance: np.ndarray,
    client: np.ndarray,
    restored: int,
    available: float,
) -> tuple[int, int, float | None]:
    """(clients, clients not cut over, when the last one got there).

    The clients are those sending requests once the restored cluster is available. Each one is on it from
    its first successful request there that ends after its last request served by an old instance
    (successful or not) that ended after ``available``. Requests queued before ``available`` count: after
    an outage the first requests the restored cluster serves are the ones that waited.
    """
    ids = np.unique(client[t_arrive >= available])
    if ids.size == 0:
        return 0, 0, None
    last_old = np.full(ids.size, available)
    old = (t_end >= available) & (instance >= 0) & (instance != restored) & np.isin(client, ids)
    if old.any():
        np.maximum.at(last_old, np.searchsorted(ids, client[old]), t_end[old])
    new = ok & (instance == restored) & np.isin(client, ids)
    first_new = np.full(ids.size, np.inf)
    if new.any():
        slot = np.searchsorted(ids, client[new])
        keep = t_end[new] >= last_old[slot]
        np.minimum.at(first_new, slot[keep], t_end[new][keep])
    moved = np.isfinite(first_new)
    missing = int(ids.size - moved.sum())
    return int(ids.size), missing, (float(first_new.max()) if missing == 0 else None)


def restore_summary(
    log: dict[str, Any] | None,
    t_arrive: np.ndarray,
    t_end: np.ndarray,
    ok: np.ndarray,
    is_write: np.ndarray,
    instance: np.ndarray,
    client: np.ndarray,
    duration: float,
) -> dict[str, Any]:
    """summary.json's `restore` (counts cover the whole run: data is lost whenever it was written)."""
    out = neutral()
    if log is None:
        return out
    restored = log["instance"]
    started, target, available = log["started_s"], log["target_s"], log["available_s"]
    completed = available is not None
    cut = log["cutover"]
    on_old = (instance >= 0) & (instance != restored)
    writes_old = ok & is_write & on_old
    clients, missing, moved_at = (0, 0, None)
    if completed and cut["enabled"]:
        clients, missing, moved_at = clients_cut_over(
            t_arrive, t_end, ok, instance, client, restored, available
        )
    rto = (available if completed else duration) - started
    cutover_s = 0.0
    if completed and cut["enabled"]:
        # with no client to move, the cutover is the record switch alone
        end = moved_at if clients else cut["dns_changed_s"]
        cutover_s = (end if end is not None else duration) - available
    failed = log["failed_s"] is not None or cut["failed_s"] is not None
    succeeded = completed and not failed and (not cut["enabled"] or missing == 0)
    if log["failed_s"] is not None:
        reason = log["reason"]
    elif cut["failed_s"] is not None:
        reason = cut["reason"]
    elif not completed:
        reason = (
            "the run ended before the restored cluster was available "
            f"(planned RTO {sum(log['phases'].values()):g} s)"
        )
    elif missing:
        hint = (
            "their pools keep connections to the old cluster until max_lifetime; refresh the pools"
            if log["old_cluster"] == "available"
            else "DNS caches and reconnect backoff"
        )
        reason = f"{missing} of {clients} clients not on the restored cluster by the end of the run ({hint})"
    else:
        reason = ""
    loads = np.asarray(log["loads"], dtype=np.float64)
    out.update(
        {
            "restores": 1,
            "from": log["from"],
            "snapshot": log["snapshot"],
            "old_cluster": log["old_cluster"],
            "faults": list(log["faults"]),
            "restored_instance": log["name"],
            "started_s": rnd(started),
            "target_s": rnd(target),
            "latest_restorable_s": rnd(log["latest_restorable_s"]),
            "base_snapshot_s": rnd(log["base_snapshot_s"]),
            "size_gib": rnd(log["size_gib"]),
            "phases": {k: rnd(v) for k, v in log["phases"].items()},
            "completed": completed,
            "available_s": rnd(available),
            "failed_s": rnd(log["failed_s"]),
            "rto_s": rnd(rto),
            "rpo_s": rnd(started - target),
            "cutover": {
                "enabled": cut["enabled"],
                "update_s": rnd(cut["update_s"]),
                "dns_ttl_s": rnd(cut["dns_ttl_s"]),
                "refresh_pools": cut["refresh_pools"],
                "dns_changed_s": rnd(cut["dns_changed_s"]),
                "pools_refreshed_s": rnd(cut["pools_refreshed_s"]),
                "failed_s": rnd(cut["failed_s"]),
                "clients": clients,
                "clients_not_cut_over": missing,
                "completed_s": rnd(moved_at),
            },
            "cutover_s": rnd(cutover_s),
            "recovery_s": rnd(rto + cutover_s),
            "writes_lost": int((writes_old & (t_end > target)).sum()),
            "writes_on_old_after_available": int((writes_old & (t_end >= available)).sum())
            if completed
            else 0,
            "requests_on_restored": int((ok & (instance == restored)).sum()),
            "lazy_load": {
                "penalty_ms": rnd(log["lazy_load_s"] * 1000.0),
                "keys_loaded": int(loads.size),
                "waits": int(log["waits"]),
                "last_load_s": rnd(loads.max()) if loads.size else None,
            },
            "succeeded": bool(succeeded),
            "reason": reason,
        }
    )
    return out
