"""One release of a tag at a time, across processes, hosts and launchers.

Two runs of one partition (the CLI beside the sensor's run, a double click in the UI, two CI
jobs) would share the release's work folder, remove each other's export and race to bump the
env. The instance is the one thing every run shares, so every step that writes asks it which
runs of this partition are in progress; the one that started first holds the release and the
others stop before doing anything, naming it. Started runs are ordered by their start time (the
run ID breaks ties), and every run asks only after it started itself, so two runs never both
proceed: the later one always sees the earlier. Runs still queued or starting do not hold it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

PARTITION_TAG = "dagster/partition"
HOLDING_STATUSES = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


class ReleaseBusy(RuntimeError):
    """Another run is releasing this partition right now."""


@dataclass(frozen=True)
class RunningRelease:
    run_id: str
    started_at: float | None  # epoch seconds; None when the instance has no start time yet
    status: str = "STARTED"

    @property
    def order(self) -> tuple[float, str]:
        return (self.started_at if self.started_at is not None else math.inf, self.run_id)


def holder_of(runs: list[RunningRelease], mine: str) -> RunningRelease | None:
    """The run that holds the release, if it is not `mine`: the earliest-started running run.

    `mine` counts as running even when absent from `runs` (it is asking, so it has started)."""
    own = next((r for r in runs if r.run_id == mine), RunningRelease(mine, None))
    earlier = [r for r in runs if r.run_id != mine and r.order < own.order]
    return min(earlier, key=lambda r: r.order) if earlier else None


def running_releases(instance: dg.DagsterInstance, partition: str) -> list[RunningRelease]:
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={PARTITION_TAG: partition}, statuses=HOLDING_STATUSES)
    )
    return [
        RunningRelease(r.dagster_run.run_id, r.start_time, r.dagster_run.status.value)
        for r in records
    ]


def claim_release(instance: dg.DagsterInstance, run_id: str, partition: str) -> None:
    """Return if this run may work on the partition; raise ReleaseBusy naming the holder if not."""
    holder = holder_of(running_releases(instance, partition), run_id)
    if holder is None:
        return
    since = (
        datetime.fromtimestamp(holder.started_at, UTC).isoformat(timespec="seconds")
        if holder.started_at is not None
        else "an unknown time"
    )
    raise ReleaseBusy(
        f"{partition} is already being released by run {holder.run_id} ({holder.status} since {since}); "
        "this run stops before changing anything. Wait for that run to finish (re-run this one "
        "afterwards if it failed); if that run is dead, terminate it in the Dagster UI first."
    )
