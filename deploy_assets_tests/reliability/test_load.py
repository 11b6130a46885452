"""Many tags at once, the per-env queue, and two envs releasing at the same time.

Fifty tags are checked with one sensor evaluation (each requested exactly once). The queue is
checked end to end with three tags, not fifty: a real `dagster-daemon` on a temporary sqlite
DAGSTER_HOME configured with the project's own misc/configs/dagster.local.yaml runs the tag
sensor, queues what it launches and starts each run as its own process. Daemon-launched runs
use the multiprocess executor (each step a fresh process that loads the code location), about
a minute per dev release on two busy cores: fifty would not fit the suite's budget; one dev
release and two prod tags refused by policy show the per-env limit. The same daemon runs are
the secrets scan's richest source: compute logs are only captured for launched runs.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.config import REPO_ROOT
from deploy_assets.plan import job_name
from deploy_assets.records.history import latest_for_partition
from deploy_assets.resources.git import run_git
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.sensors.release_tags import SENSOR_NAME
from deploy_assets.tags import parse_tag
from deploy_assets_tests.instances import load_instance
from deploy_assets_tests.reliability.conftest import (
    MS,
    SECRETS,
    CliDeployment,
    cli_deployment_at,
    failure,
    leaks,
    new_bucket,
    scenario_stack,
)

pytestmark = pytest.mark.reliability


def fifty_tags() -> list[str]:
    dev = [
        f"v1.{minor}.0-{channel}.{n}"
        for minor in range(5)
        for channel in ("alpha", "beta")
        for n in (1, 2)
    ]
    staging = [f"v1.{minor}.0-rc.{n}" for minor in range(5) for n in (1, 2, 3)]
    prod = [f"v1.{minor}.{patch}" for minor in range(5) for patch in range(3)]
    return dev + staging + prod  # 20 + 15 + 15


def test_fifty_tags_pushed_at_once_are_each_requested_exactly_once(rig, s3_bucket):
    harness = rig("registry.test:5000", *s3_bucket)
    sensor = harness.defs.resolve_sensor_def(SENSOR_NAME)

    def tick(cursor):
        with dg.build_sensor_context(
            instance=harness.instance,
            cursor=cursor,
            definitions=harness.defs,
            resources=dict(harness.defs.resources),
        ) as context:
            return sensor(context)

    baseline = tick(None)
    tags = fifty_tags()
    for tag in tags:
        run_git(["tag", tag], cwd=harness.monorepo.clone)
    run_git(["push", "--quiet", "origin", "--tags"], cwd=harness.monorepo.clone)  # all at once
    commit = harness.monorepo.head()

    result = tick(baseline.cursor)

    requests = result.run_requests
    assert len(requests) == 50 and len({r.run_key for r in requests}) == 50
    assert {r.run_key for r in requests} == {f"{tag}@{commit}" for tag in tags}
    for request in requests:
        release = parse_tag(request.tags["deploy_assets/tag"])
        assert (
            request.job_name == job_name(release.env)
            and request.tags["deploy_assets/env"] == release.env
        )
        assert request.partition_key == f"{release.env}|{release.tag}"
    assert Counter(r.tags["deploy_assets/env"] for r in requests) == {
        "dev": 20,
        "staging": 15,
        "prod": 15,
    }
    [added] = result.dynamic_partitions_requests
    assert sorted(added.partition_keys) == sorted(tags)
    again = tick(result.cursor)
    assert not getattr(again, "run_requests", None)


# Prod tags that policy refuses (no staging release of their version), pushed at once: three runs
# of one env that must never overlap, each ending refused by policy. (Real dev releases through
# a daemon are a minute each here: deploy_assets_tests/production covers them with Postgres.)
QUEUED_TAGS = ["v7.5.0", "v7.6.0", "v7.7.0"]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class DaemonRun:
    deployment: CliDeployment
    instance: dg.DagsterInstance
    runs: list
    most_started_per_env: Counter
    waited_in_queue: bool  # a poll saw a run QUEUED while another of its env was STARTED
    daemon_log: str


@pytest.fixture(scope="module")
def through_the_daemon(tmp_path_factory, s3_server, docker_engine):
    """`dagster-daemon run` on the project's workspace and dagster.local.yaml; tags pushed after
    the sensor's baseline tick; polled until every run it launched has finished."""
    root = tmp_path_factory.mktemp("daemon")
    with scenario_stack(root) as stack:
        deployment = cli_deployment_at(
            root,
            stack.monorepo,
            stack.git_root,
            stack.registry.host,
            s3_server,
            new_bucket(s3_server),
        )
        deployment.home.mkdir(parents=True)
        shutil.copyfile(
            REPO_ROOT / "misc" / "configs" / "dagster.local.yaml", deployment.home / "dagster.yaml"
        )
        instance = load_instance(str(deployment.home))
        log_path = root / "daemon.log"
        with open(log_path, "wb") as log:
            daemon = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "dagster-daemon"),
                    "run",
                    "-w",
                    str(REPO_ROOT / "workspace.yaml"),
                ],
                cwd=REPO_ROOT,
                env=deployment.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:

            def baseline_stored() -> bool:  # the first tick has finished and committed its cursor
                return any(
                    s.instigator_name == SENSOR_NAME and getattr(s.instigator_data, "cursor", None)
                    for s in instance.all_instigator_state()
                )

            _wait(
                baseline_stored, "the daemon's first sensor tick (the baseline)", daemon, log_path
            )
            for tag in QUEUED_TAGS:
                run_git(["tag", tag], cwd=stack.monorepo.clone)
            run_git(["push", "--quiet", "origin", "--tags"], cwd=stack.monorepo.clone)
            most: Counter[str] = Counter()
            waited = []

            def all_done() -> bool:
                records = instance.get_run_records()
                by_status = {
                    status: Counter(
                        r.dagster_run.tags.get("deploy_assets/env")
                        for r in records
                        if r.dagster_run.status == status
                    )
                    for status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.QUEUED)
                }
                for env, count in by_status[dg.DagsterRunStatus.STARTED].items():
                    most[env] = max(most[env], count)
                    waited.append(by_status[dg.DagsterRunStatus.QUEUED][env] > 0)
                return len(records) >= len(QUEUED_TAGS) and all(
                    r.dagster_run.is_finished for r in records
                )

            _wait(all_done, "every launched run to finish", daemon, log_path, interval=0.1)
        finally:
            _stop(daemon)
        runs = [r.dagster_run for r in instance.get_run_records()]
        yield DaemonRun(
            deployment, instance, runs, most, any(waited), log_path.read_text(errors="replace")
        )
        instance.dispose()


def test_the_daemon_launches_each_tag_once_and_runs_one_release_per_env_at_a_time(
    through_the_daemon,
):
    run = through_the_daemon
    assert sorted(r.tags["deploy_assets/tag"] for r in run.runs) == sorted(
        QUEUED_TAGS
    )  # each exactly once
    assert len({r.tags["dagster/run_key"] for r in run.runs}) == len(QUEUED_TAGS)
    assert run.most_started_per_env == {"prod": 1}, (
        run.most_started_per_env
    )  # the per-env limit held...
    assert run.waited_in_queue  # ...while the others waited their turn
    for launched in run.runs:  # every run ended refused by policy, before any side effect
        assert launched.status == dg.DagsterRunStatus.FAILURE
        assert "promotion gate" in failure(run.instance, launched.run_id)
        assert "refused before any side effect" in failure(run.instance, launched.run_id)


def test_no_secret_in_dagster_storage_compute_logs_or_daemon_output(through_the_daemon):
    run = through_the_daemon
    compute_logs = [
        p for p in (run.deployment.home / "storage").rglob("*") if p.suffix in (".out", ".err")
    ]
    assert compute_logs, "no compute logs were captured: nothing to scan"
    assert leaks([run.deployment.home], [run.daemon_log]) == []
    # The scan itself finds a value where there is one.
    probe = run.deployment.home.parent / "probe.txt"
    probe.write_text(f"x {SECRETS['AWS_SECRET_ACCESS_KEY']} y")
    assert leaks([probe], []) == [f"AWS_SECRET_ACCESS_KEY in {probe}"]


def _wait(
    condition,
    what: str,
    daemon: subprocess.Popen,
    log: Path,
    timeout: float = 400,
    interval: float = 0.5,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert daemon.poll() is None, log.read_text()[-3000:]
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}; daemon log:\n" + log.read_text()[-3000:])


def test_two_envs_release_concurrently_without_interfering(
    cli_deployment, fresh_registry, s3_bucket, monorepo, git_root
):
    """Two `deploy-assets release` processes at once (two CI jobs, say), sharing the Dagster
    instance, the build cache and the source mirror. (Threads in one process cannot do this:
    Dagster's in-process execution reconfigures process-wide logging and deadlocks.)"""
    deployment = cli_deployment(fresh_registry, *s3_bucket)
    tags = {"dev": "v7.1.0-alpha.1", "staging": "v7.1.0-rc.1"}
    for tag in tags.values():
        monorepo.tag(tag)
    # The instance's sqlite schema is created once, first: two processes creating it at the same
    # moment race in Dagster's migrations (see the report); sharing an existing one is the point.
    deployment.home.mkdir(parents=True)
    shutil.copyfile(
        REPO_ROOT / "misc" / "configs" / "dagster.local.yaml", deployment.home / "dagster.yaml"
    )
    load_instance(str(deployment.home)).dispose()
    processes = {env: deployment.spawn(tag) for env, tag in tags.items()}
    results = {env: deployment.finish(proc) for env, proc in processes.items()}

    work = Path(deployment.env["DEPLOY_ASSETS_WORK_DIR"])
    instance = load_instance(str(deployment.home))
    for env, tag in tags.items():
        code, out = results[env]
        assert code == 0 and "succeeded" in out.splitlines()[-1], out
        root = work / env / tag
        assert (root / "src" / "go.mod").is_file() and (root / "out" / "routes.json").is_file()
        source = latest_for_partition(instance, dg.AssetKey("source"), f"{env}|{tag}")
        assert source.metadata["commit"] == monorepo.head()
        for name in MS:
            image = latest_for_partition(instance, dg.AssetKey(["image", name]), f"{env}|{tag}")
            assert image.metadata["digest"] == RegistryResource(
                host=fresh_registry
            ).manifest_digest(name, tag)
    for repo, tag in (("gitops-development", tags["dev"]), ("gitops-staging", tags["staging"])):
        log = (
            run_git(["log", "--format=%s", "main"], cwd=git_root / f"{repo}.git")
            .decode()
            .splitlines()
        )
        assert len(log) == 2 and log[0].endswith(f"-> {tag}")
    instance.dispose()
