"""Case (e): a promotion the way production launches it. `dagster-daemon run` on the bench's
instance, with a workspace naming the code location; the tag sensor sees the pushed prod tag
and requests the run, the run queue dequeues it, the run launcher starts a worker process that
loads the code location and executes the job (in one process: definitions.py's executor).

The figure is RUN_STARTING -> RUN_SUCCESS from the instance's event log: RUN_STARTING is
written as the launcher hands the run to its worker, so it is the run's launch; the worker's
start-up and code-location load are inside it, as the CLI's wall time holds its own load. The
wait for the sensor's tick (minimum_interval_seconds) and for the queue are shown apart.

The daemon runs in a session of its own (its code server and run workers with it) and is
stopped by pid: SIGTERM to all of them, SIGKILL after a grace (procs.stop).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from deploy_assets.config import REPO_ROOT
from deploy_assets.sensors.release_tags import SENSOR_NAME
from misc.bench.events import go_builds, instance_at, launch_timings
from misc.bench.procs import Started, stop
from misc.bench.release_child import step_timings

DAEMON = Path(sys.executable).parent / "dagster-daemon"  # the venv's, next to this Python
WORKSPACE = """load_from:
  - python_module:
      module_name: deploy_assets.definitions
      working_directory: {repo}
      location_name: deploy_assets
"""
STOP_GRACE = 10
VERSION = "v1.0.1"  # a prod tag on the commit ours promoted as v1.0.0; its rc.1 by ours first


def start(folder: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, Started]:
    """`dagster-daemon run -w folder/workspace.yaml` in a session of its own, cwd in folder."""
    with instance_at(
        env["DAGSTER_HOME"]
    ):  # the schema first: two processes creating it at once race
        pass
    folder.mkdir(parents=True, exist_ok=True)
    workspace = folder / "workspace.yaml"
    workspace.write_text(WORKSPACE.format(repo=REPO_ROOT))
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(DAEMON), "run", "-w", str(workspace)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, Started.of("dagster-daemon", proc.pid)


def wait_for(
    condition, what: str, proc: subprocess.Popen, log: Path, timeout: float, interval: float = 0.2
):
    """condition()'s first truthy value; an exited daemon or the timeout raise with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        if proc.poll() is not None:
            raise RuntimeError(
                f"dagster-daemon exited ({proc.returncode}) while waiting for {what}; "
                f"log {log}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(interval)
    raise RuntimeError(
        f"gave up after {timeout:.0f}s waiting for {what}; daemon log {log}:\n"
        f"{log.read_text(errors='replace')[-3000:]}"
    )


def baseline_taken(instance) -> bool:
    """The sensor's first tick has committed its cursor: tags pushed from now on are new to it."""
    return any(
        state.instigator_name == SENSOR_NAME and getattr(state.instigator_data, "cursor", None)
        for state in instance.all_instigator_state()
    )


def finished_run(instance, tag: str):
    import dagster as dg

    runs = instance.get_runs(filters=dg.RunsFilter(tags={"deploy_assets/tag": tag}))
    return next((run for run in runs if run.is_finished), None)


def promote(bench, tag: str, started: list[Started], timeout: float = 900) -> dict:
    """Start the daemon, wait for the sensor's baseline, push tag, wait for its run; the daemon
    is stopped whatever happens (and again by the bench's teardown, from `started`)."""
    env = bench.ours_env(bench.remote)
    log = bench.root / "logs" / "daemon.log"
    proc, daemon = start(bench.root / "daemon", env, log)
    started.append(daemon)
    try:
        with instance_at(env["DAGSTER_HOME"]) as instance:
            wait_for(
                lambda: baseline_taken(instance),
                "the sensor's baseline tick",
                proc,
                log,
                timeout=300,
            )
            pushed = time.time()
            bench.tag(tag)
            run = wait_for(
                lambda: finished_run(instance, tag), f"the run of {tag}", proc, log, timeout
            )
            times = launch_timings(instance, run.run_id)
            builds = go_builds(instance, run.run_id)
            steps = step_timings(instance, run.run_id)
    finally:
        killed = stop(daemon, grace=STOP_GRACE)
        proc.wait(timeout=10)
    if run.status.value != "SUCCESS" or "ended" not in times or "starting" not in times:
        raise RuntimeError(
            f"the daemon's run {run.run_id} of {tag} ended {run.status.value}; daemon log {log}"
        )
    return {
        "tag": tag,
        "run_id": run.run_id,
        "wall_s": times["ended"] - times["starting"],
        "steps": steps,
        "sensor_s": times["created"] - pushed,
        "queue_s": times["starting"] - times["created"],
        "worker_start_s": times.get("started", times["starting"]) - times["starting"],
        "killed_hard": killed,
        **builds,
    }


def case(bench) -> None:
    """(e): ours' promotion again, on a new prod tag of the same commit, through the daemon."""
    from misc.bench import report
    from misc.bench.procs import load_average

    bench.ours("daemon_rc", f"{VERSION}-rc.1")
    result = promote(bench, VERSION, bench.started)
    bench.results["daemon_promotion"] = {**result, "load": load_average()}
    report.progress(f"daemon promotion ({VERSION}), run launch to success", result["wall_s"])
