"""The pieces of a production-like Dagster deployment, for tests: instance config, workspace,
environment and the long-running processes (daemon, webserver, `dagster dev`).

The instance config is misc/configs/dagster.production.yaml itself, loaded and changed only
where a test must (the run launcher, the network, an endpoint; never a mount: run containers share
no disk), so the tests exercise the file a team deploys. Processes run in their own session and are stopped by their recorded pid: SIGTERM to
the whole group, SIGKILL after a grace period (deploy_assets.local.stack.stop_process), so a
code server or run worker they spawned cannot outlive the test.
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import yaml

from deploy_assets.config import REPO_ROOT, Settings
from deploy_assets.local import stack as local_stack
from deploy_assets.sensors.release_tags import SENSOR_NAME

PRODUCTION_YAML = REPO_ROOT / "misc" / "configs" / "dagster.production.yaml"
LOCAL_YAML = REPO_ROOT / "misc" / "configs" / "dagster.local.yaml"
BIN = Path(sys.executable).parent
STOP_GRACE = 10.0
T = TypeVar("T")

DEFAULT_RUN_LAUNCHER = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes Settings.from_env() return `settings` (inverse of it)."""
    env = {
        "DEPLOY_ASSETS_SOURCE_REPO": settings.source_repo,
        "DEPLOY_ASSETS_REGISTRY": settings.registry,
        "DEPLOY_ASSETS_S3_ENDPOINT": settings.s3_endpoint or "",
        "APP_ARCHIVER_AWS_REGION": settings.aws_region,
        "APP_ARCHIVER_BUCKET": settings.bucket,
        "APP_ARCHIVER_PATH": settings.s3_path,
        "DEPLOY_ASSETS_GITOPS_ROOT": settings.git_root,
        "DEPLOY_ASSETS_WORK_DIR": str(settings.work_dir),
        "DEPLOY_ASSETS_CACHE_DIR": str(settings.cache_dir),
        "DEPLOY_ASSETS_GITHUB_API": settings.github_api,
        "DEPLOY_ASSETS_GITHUB_OWNER": settings.github_owner,
        "DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING": "1"
        if settings.allow_prod_without_staging
        else "",
        "DEPLOY_ASSETS_GO_COMPILE_CACHE": settings.go_compile_cache,
    }
    # A new Settings field without an env var here would silently fall back to its default.
    assert Settings.from_env(env) == settings, "settings_env() is missing a Settings field"
    return env


def production_config(run_launcher: dict | None = None) -> dict:
    """dagster.production.yaml as a dict; `run_launcher` replaces its launcher when given."""
    config = yaml.safe_load(PRODUCTION_YAML.read_text())
    if run_launcher is not None:
        config["run_launcher"] = run_launcher
    return config


def write_dagster_home(home: Path, config: dict) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home


def write_workspace(path: Path, grpc_port: int | None = None) -> Path:
    """A workspace loading deploy_assets.definitions in a subprocess, or from a code server."""
    location = (
        {"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": "deploy_assets"}}
        if grpc_port
        else {
            "python_module": {
                "module_name": "deploy_assets.definitions",
                "working_directory": str(REPO_ROOT),
                "location_name": "deploy_assets",
            }
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"load_from": [location]}))
    return path


def deployment_env(settings: Settings, home: Path, **extra: str) -> dict[str, str]:
    """The environment of the daemon/webserver: ours, the settings, DAGSTER_HOME, no env file."""
    return {
        **os.environ,
        **settings_env(settings),
        "DAGSTER_HOME": str(home),
        "DEPLOY_ASSETS_ENV_FILE": "/nonexistent",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        **extra,
    }


def start_process(argv: list[str], env: dict[str, str], state_dir: Path, name: str) -> Path:
    """Start argv in its own session, output to state_dir/name.log; returns its pid file."""
    pidfile = state_dir / f"{name}.pid"
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=state_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return pidfile


def stop(pidfile: Path) -> None:
    local_stack.stop_process(pidfile, grace=STOP_GRACE)


def log_tail(pidfile: Path, lines: int = 40) -> str:
    log = pidfile.with_suffix(".log")
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def wait_for(
    probe: Callable[[], T],
    timeout: float,
    what: str,
    pidfile: Path | None = None,
    interval: float = 0.5,
) -> T:
    """Poll probe() until it returns something truthy; fail naming `what` (and the log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(interval)
    detail = f"\n--- {pidfile.with_suffix('.log')} ---\n{log_tail(pidfile)}" if pidfile else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def sensor_cursor(instance: dg.DagsterInstance) -> str | None:
    """The tag sensor's stored cursor: set once the daemon's first tick took the baseline."""
    for state in instance.all_instigator_state():
        if state.instigator_name == SENSOR_NAME and state.instigator_data is not None:
            return getattr(state.instigator_data, "cursor", None)
    return None


def runs_for_tags(instance: dg.DagsterInstance, tags: list[str]) -> dict[str, dg.DagsterRun]:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"deploy_assets/tag": tags}))
    return {run.tags["deploy_assets/tag"]: run for run in runs}
