"""Many tags at once, the per-env queue, and two envs releasing at the same time.

Fifty tags are checked with one sensor evaluation (each requested exactly once). The queue is
checked end to end with six tags, not fifty: a real `dagster-daemon` on a temporary sqlite
DAGSTER_HOME configured with the project's own misc/configs/dagster.local.yaml runs the tag
sensor, queues what it launches and starts each run as its own process; fifty real releases
would not fit the suite's time budget on two cores, six (two per env) show the same limits.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.config import REPO_ROOT
from deploy_assets.plan import job_name
from deploy_assets.release import parse_tag
from deploy_assets.resources.git import run_git
from deploy_assets.runner import run_release
from deploy_assets.sensors.release_tags import SENSOR_NAME
from deploy_assets_tests.reliability.conftest import MS, failure, leaks

pytestmark = pytest.mark.reliability


def fifty_tags() -> list[str]:
    dev = [f"v1.{minor}.0-{channel}.{n}" for minor in range(5) for channel in ("alpha", "beta") for n in (1, 2)]
    staging = [f"v1.{minor}.0-rc.{n}" for minor in range(5) for n in (1, 2, 3)]
    prod = [f"v1.{minor}.{patch}" for minor in range(5) for patch in range(3)]
    return dev + staging + prod  # 20 + 15 + 15


def test_fifty_tags_pushed_at_once_are_each_requested_exactly_once(rig, s3_bucket):
    harness = rig("registry.test:5000", *s3_bucket)
    sensor = harness.defs.resolve_sensor_def(SENSOR_NAME)

    def tick(cursor):
        with dg.build_sensor_context(instance=harness.instance, cursor=cursor, definitions=harness.defs,
                                     resources=dict(harness.defs.resources)) as context:
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
        assert request.job_name == job_name(release.env) and request.tags["deploy_assets/env"] == release.env
        assert request.partition_key == f"{release.env}|{release.tag}"
    assert Counter(r.tags["deploy_assets/env"] for r in requests) == {"dev": 20, "staging": 15, "prod": 15}
    [added] = result.dynamic_partitions_requests
    assert sorted(added.partition_keys) == sorted(tags)
    again = tick(result.cursor)
    assert not getattr(again, "run_requests", None)


QUEUED_TAGS = ["v7.0.0-alpha.1", "v7.0.0-beta.1", "v7.0.0-rc.1", "v7.0.0-rc.2", "v7.5.0", "v7.6.0"]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_daemon_launches_each_tag_once_and_runs_one_release_per_env_at_a_time(
        cli_deployment, fresh_registry, s3_bucket, monorepo, tmp_path):
    deployment = cli_deployment(fresh_registry, *s3_bucket)
    deployment.home.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "misc" / "configs" / "dagster.local.yaml", deployment.home / "dagster.yaml")
    log = open(tmp_path / "daemon.log", "wb")
    daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run",
                               "-w", str(REPO_ROOT / "workspace.yaml")], cwd=REPO_ROOT, env=deployment.env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    os.environ["DAGSTER_HOME"], saved_home = str(deployment.home), os.environ.get("DAGSTER_HOME")
    try:
        instance = dg.DagsterInstance.get()

        def sensor_ticks() -> list:
            return [t for s in instance.all_instigator_state() if s.name == SENSOR_NAME
                    for t in instance.get_ticks(s.instigator_origin_id, s.selector_id)]

        _wait(lambda: sensor_ticks(), "the daemon's first sensor tick (the baseline)", daemon, tmp_path)
        for tag in QUEUED_TAGS:
            run_git(["tag", tag], cwd=monorepo.clone)
        run_git(["push", "--quiet", "origin", "--tags"], cwd=monorepo.clone)

        started_together: Counter[str] = Counter()

        def all_done() -> bool:
            records = instance.get_run_records()
            running = Counter(r.dagster_run.tags.get("deploy_assets/env") for r in records
                              if r.dagster_run.status == dg.DagsterRunStatus.STARTED)
            for env, count in running.items():
                started_together[env] = max(started_together[env], count)
            return len(records) >= len(QUEUED_TAGS) and all(r.dagster_run.is_finished for r in records)

        _wait(all_done, "all six runs to finish", daemon, tmp_path, interval=0.1)
        runs = [r.dagster_run for r in instance.get_run_records()]
    finally:
        _stop(daemon)
        log.close()
        os.environ.pop("DAGSTER_HOME") if saved_home is None else os.environ.update(DAGSTER_HOME=saved_home)

    assert sorted(r.tags["deploy_assets/tag"] for r in runs) == sorted(QUEUED_TAGS)  # each exactly once
    assert len({r.tags["dagster/run_key"] for r in runs}) == len(QUEUED_TAGS)
    assert max(started_together.values()) == 1, started_together  # the per-env limit held
    by_tag = {r.tags["deploy_assets/tag"]: r for r in runs}
    for tag in QUEUED_TAGS[:4]:
        assert by_tag[tag].status == dg.DagsterRunStatus.SUCCESS, failure(instance, by_tag[tag].run_id)
    for tag in QUEUED_TAGS[4:]:  # prod without a staging release of its version: refused by policy
        assert by_tag[tag].status == dg.DagsterRunStatus.FAILURE
        assert "promotion gate" in failure(instance, by_tag[tag].run_id)
    assert leaks([deployment.home], [(tmp_path / "daemon.log").read_text(errors="replace")]) == []


def _wait(condition, what: str, daemon: subprocess.Popen, tmp_path: Path, timeout: float = 400,
          interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}; daemon log:\n" + (tmp_path / "daemon.log").read_text()[-3000:])


def test_two_envs_release_concurrently_without_interfering(rig, fresh_registry, s3_bucket):
    harness = rig(fresh_registry, *s3_bucket)
    tags = {"dev": "v7.1.0-alpha.1", "staging": "v7.1.0-rc.1"}
    for tag in tags.values():
        harness.monorepo.tag(tag)
    harness.defs  # definitions built once, before the threads share them
    outcomes = {}
    threads = [threading.Thread(target=lambda env=env, tag=tag: outcomes.__setitem__(
        env, run_release(harness.defs, harness.instance, tag))) for env, tag in tags.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for env, tag in tags.items():
        assert outcomes[env].success, failure(harness.instance, outcomes[env].run_id)
        root = harness.settings.work_dir / env / tag
        assert (root / "src" / "go.mod").is_file() and (root / "out" / "routes.json").is_file()
        source = harness.metadata("source", f"{env}|{tag}")
        assert source["commit"] == harness.monorepo.head()
        for name in MS:
            assert harness.metadata(f"image/{name}", f"{env}|{tag}")["digest"] == \
                harness.registry.manifest_digest(name, tag)
    assert harness.settings.work_dir / "dev" != harness.settings.work_dir / "staging"
    for repo, tag in (("gitops-development", tags["dev"]), ("gitops-staging", tags["staging"])):
        log = harness.gitops_log(repo)
        assert len(log) == 2 and log[0].endswith(f"-> {tag}")
