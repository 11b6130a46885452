"""Run a release in-process on the configured Dagster instance: the CLI's and the demo's path.

It executes the very job the sensor requests, with the same partition key, tags and instance,
so a release started from a terminal or an existing CI is indistinguishable in the UI from one
the sensor launched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
from deploy_assets.cli.logs import dagster_home
from deploy_assets.cli.progress import ReleaseProgress, error_reason
from deploy_assets.config import REPO_ROOT, PipelineConfig, Settings
from deploy_assets.names import PROCESS_TAG, VERSION_TAG, job_name, release_run_tags
from deploy_assets.sensors.release_tags import SENSOR_NAME
from deploy_assets.state.services import Refresh, refresh
from deploy_assets.tags import parse_tag


def release_definitions(
    settings: Settings, config: PipelineConfig
) -> tuple[dg.Definitions, Refresh]:
    """The definitions of a release in this process, on a service state refreshed first.

    A code location reads the recorded services and never fetches; a one-off release from a
    terminal or CI has no code server whose list it must match, so it refreshes explicitly and
    a service added since the last refresh is released without a separate step."""
    from deploy_assets.definitions import build_definitions  # the code location, loaded on demand

    done = refresh(settings, config)
    return build_definitions(settings, config, list(done.after.services)), done


def get_instance() -> dg.DagsterInstance:
    """The instance at DAGSTER_HOME (default .local/dagster_home, sqlite)."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(
            REPO_ROOT / "misc" / "configs" / "dagster.local.yaml", home / "dagster.yaml"
        )
    follow_moved_storage_module(home / "dagster.yaml")
    return dg.DagsterInstance.get()


MOVED_STORAGE_MODULE = ("deploy_assets.local_instance", "deploy_assets.local.instance")


def follow_moved_storage_module(config: Path) -> bool:
    """A dagster.yaml copied before the local instance moved to deploy_assets/local/ names its
    old module, and Dagster would refuse to load the instance: point it at the new one (the only
    edit made to that file), so a DAGSTER_HOME from an earlier checkout keeps its runs."""
    old, new = MOVED_STORAGE_MODULE
    text = config.read_text()
    if f"module: {old}" not in text:
        return False
    config.write_text(text.replace(f"module: {old}", f"module: {new}"))
    return True


@dataclass(frozen=True)
class RunOutcome:
    tag: str
    env: str
    run_id: str
    success: bool
    error: str
    failed_step: str = ""  # the first failed step's key
    error_class: str = ""  # the class of what that step raised (unwrapped from Dagster's error)
    reason: str = ""  # its message without the module path, e.g. "PlanError: ..." -> "..."


def _first_failure(result: dg.ExecuteInProcessResult) -> tuple[str, str, str, str]:
    """(error, failed step, error class, reason) of the run's first step failure."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            err = event.step_failure_data.error
            while err is not None and err.cause is not None:  # Dagster wraps our exception
                err = err.cause
            error = f"step {event.step_key}: {err.message.strip() if err else 'failed'}"
            return error, event.step_key or "", err.cls_name if err else "", error_reason(err)
    return ("run failed" if not result.success else ""), "", "", ""


def fail_abandoned_runs(instance: dg.DagsterInstance, tag: str) -> list[str]:
    """Mark as failed this tag's in-process runs still STARTED whose process is gone (killed hard):
    nothing else would, since no run monitor watches the CLI path."""
    failed = []
    records = instance.get_runs(
        filters=dg.RunsFilter(tags={VERSION_TAG: tag}, statuses=[dg.DagsterRunStatus.STARTED])
    )
    for run in records:
        host, _, pid = run.tags.get(PROCESS_TAG, "").rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        instance.report_run_failed(
            run,
            f"process {pid} of this release ended without finishing "
            "the run (killed); a new run of the same release follows",
        )
        failed.append(run.run_id)
    return failed


def run_release(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    tag: str,
    extra_tags: dict[str, str] | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    log_level: str | None = None,
) -> RunOutcome:
    """Execute TAG's release job in this process; `progress` receives lines a person can follow
    (deploy_assets.cli.progress), and `log_level` sets the threshold of the job's console logger
    (default DEPLOY_ASSETS_LOG_LEVEL or INFO; the CLI's logger writes to a file, cli_logs)."""
    release = parse_tag(tag)
    if not instance.has_dynamic_partition(VERSION_PARTITIONS_NAME, tag):
        instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [tag])
    job = defs.resolve_job_def(job_name(release.env))
    fail_abandoned_runs(instance, tag)
    run_id = str(uuid.uuid4())  # known before the run starts, so the listener can subscribe to it
    watcher = ReleaseProgress(progress) if progress else None
    if watcher:
        instance.add_event_listener(run_id, watcher)
    with watcher or contextlib.nullcontext():
        result = job.execute_in_process(
            instance=instance,
            partition_key=release_partition_key(release.env, tag),
            run_id=run_id,
            tags={
                **release_run_tags(release.env, tag),
                PROCESS_TAG: f"{socket.gethostname()}:{os.getpid()}",
                **(extra_tags or {}),
            },
            raise_on_error=False,
            run_config={
                "loggers": {
                    "console": {
                        "config": {
                            "log_level": log_level
                            or os.environ.get("DEPLOY_ASSETS_LOG_LEVEL", "INFO")
                        }
                    }
                }
            },
        )
    return RunOutcome(tag, release.env, result.run_id, result.success, *_first_failure(result))


def sensor_tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor_file: Path
) -> list[dg.RunRequest]:
    """Evaluate the tag sensor once (cursor kept in cursor_file) and register its partitions."""
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    cursor = cursor_file.read_text() if cursor_file.exists() else None
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=dict(defs.resources or {})
    ) as context:
        result = sensor(context)
    if isinstance(result, dg.SkipReason) or result is None:
        return []
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    if result.cursor:
        cursor_file.parent.mkdir(parents=True, exist_ok=True)
        cursor_file.write_text(result.cursor)
    return list(result.run_requests or [])


def outcome_json(outcome: RunOutcome) -> str:
    return json.dumps(outcome.__dict__)
