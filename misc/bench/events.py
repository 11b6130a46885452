"""What a finished run did, read back from the instance's event log: the bench times and counts
from the same records the UI shows, so a figure cannot come from a clock the run never saw.

- `run_facts`: seconds per step, the run's own RUN_START -> RUN_SUCCESS, and its go builds.
- `launch_timings`: when the run record was created (the sensor's request), queued, dequeued,
  launched (RUN_STARTING, written as the run launcher hands the run to a worker), started in
  the worker (RUN_START) and finished. A daemon-launched run is timed from RUN_STARTING.
  `go_builds` counts the binaries `go build` produced in the run, from each binary
  materialization's metadata.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def instance_at(home: str | Path) -> Iterator:
    """The instance at home. Its storage config reads DAGSTER_HOME from the environment, so
    that is set while the instance is open and put back after."""
    import dagster as dg

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before


def launch_timings(instance, run_id: str) -> dict[str, float]:
    """Unix timestamps of the run's life: created, enqueued, dequeued, starting (launch),
    started, ended (success or failure). Events the run never had are absent."""
    import dagster as dg

    kinds = {
        dg.DagsterEventType.RUN_ENQUEUED: "enqueued",
        dg.DagsterEventType.RUN_DEQUEUED: "dequeued",
        dg.DagsterEventType.RUN_STARTING: "starting",
        dg.DagsterEventType.RUN_START: "started",
        dg.DagsterEventType.RUN_SUCCESS: "ended",
        dg.DagsterEventType.RUN_FAILURE: "ended",
    }
    record = instance.get_run_record_by_id(run_id)
    found = {"created": record.create_timestamp.timestamp()}
    for entry in instance.all_logs(run_id, of_type=set(kinds)):
        found.setdefault(kinds[entry.dagster_event.event_type], entry.timestamp)
    return found


def _count_built(metadata: dict, partition: str) -> tuple[int, str]:
    """(binaries built by go in this materialization, the field that said so). `build_<platform>`
    ("built" / "local cache" / "bucket cache") when the release records it; before that,
    `built_in_<platform>` naming this very partition (the cache entry was made by this run)."""
    platforms = [key.removeprefix("sha256_") for key in metadata if key.startswith("sha256_")]
    built, field = 0, "build_"
    for platform in platforms:
        if f"build_{platform}" in metadata:
            built += metadata[f"build_{platform}"] == "built"
        else:
            field = "built_in_"
            built += metadata.get(f"built_in_{platform}") == partition
    return built, field


def go_builds(instance, run_id: str) -> dict:
    """Binaries `go build` produced in the run: the count, which ones, and the metadata read."""
    import dagster as dg

    built, names, fields = 0, [], set()
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization
        if materialization.asset_key.path[0] != "binary":
            continue  # images and artifacts carry content keys too; only binaries are built by go
        metadata = {
            key: getattr(value, "value", value) for key, value in materialization.metadata.items()
        }
        count, field = _count_built(metadata, str(materialization.partition))
        if count:
            built += count
            names.append(materialization.asset_key.to_user_string())
        fields.add(field)
    return {"go_builds": built, "built": sorted(names), "counted_from": sorted(fields)}


def run_facts(run_id: str, home: str | Path) -> dict:
    """Steps and go builds of a finished run, in one opening of the instance."""
    from misc.bench.release_child import step_timings

    with instance_at(home) as instance:
        return {"steps": step_timings(instance, run_id), **go_builds(instance, run_id)}
