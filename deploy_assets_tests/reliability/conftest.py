"""The reliability suite's rig: a release deployment whose registry and S3 API this test owns.

The main conftest's `harness` shares one moto server per session; a test that kills its S3 API
or registry needs its own, on its own port, so it can stop and restart it without touching any
other test. Everything else (Go, Docker, git repos, the Dagster instance) is as in `harness`.
"""

import base64
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.cli.demo import EXAMPLE_MONOREPO, create_monorepo
from deploy_assets.config import load_pipeline_config
from deploy_assets.local import stack as local_stack
from deploy_assets.resources.s3 import S3Resource
from deploy_assets_tests.assets.run_events import step_failures
from deploy_assets_tests.conftest import Harness, Monorepo, make_settings
from deploy_assets_tests.reliability.faults import KillableRegistry, KillableS3

MS = ["ms_chat", "ms_core", "ms_payments"]


@pytest.fixture
def killable_registry(tmp_path, docker_engine):
    registry = KillableRegistry(tmp_path / "registry")
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture
def killable_s3(tmp_path):
    s3 = KillableS3(tmp_path / "s3", bucket=f"r-{uuid.uuid4().hex[:12]}")
    s3.start()
    yield s3
    s3.stop()


def new_bucket(endpoint: str) -> str:
    bucket = f"r-{uuid.uuid4().hex[:12]}"
    S3Resource(bucket=bucket, endpoint_url=endpoint).ensure_bucket()
    return bucket


@pytest.fixture
def s3_bucket(s3_server):
    """(endpoint, bucket): a bucket of this test alone on the session's S3 API server."""
    return s3_server, new_bucket(s3_server)


@pytest.fixture
def rig(tmp_path, git_root, monorepo, docker_engine):
    """rig(registry_host, s3_endpoint, bucket) -> Harness on a temporary Dagster instance."""
    with dg.instance_for_test() as instance:

        def make(registry: str, s3_endpoint: str, bucket: str, **settings: str) -> Harness:
            config = make_settings(
                tmp_path, registry, s3_endpoint, git_root, monorepo.bare, bucket, **settings
            )
            return Harness(config, load_pipeline_config(), instance, monorepo)

        yield make
    shutil.rmtree(tmp_path / "work", ignore_errors=True)


@dataclass
class Stack:
    """One deployment's systems for a scenario that several tests assert on (module scope)."""

    root: Path
    registry: KillableRegistry
    git_root: Path
    monorepo: Monorepo

    def harness(self, instance: dg.DagsterInstance, s3_endpoint: str, bucket: str) -> Harness:
        settings = make_settings(
            self.root, self.registry.host, s3_endpoint, self.git_root, self.monorepo.bare, bucket
        )
        return Harness(settings, load_pipeline_config(), instance, self.monorepo)


@contextlib.contextmanager
def scenario_stack(root: Path):
    """A registry of its own, fresh GitOps repos and a monorepo copy under root."""
    registry = KillableRegistry(root / "registry")
    registry.start()
    local_stack.init_bare_repos(root / "git", local_stack.REPO_NAMES)
    monorepo = Monorepo(bare=root / "git" / "monorepo.git", clone=root / "monorepo")
    create_monorepo(monorepo.bare, monorepo.clone, EXAMPLE_MONOREPO)
    try:
        yield Stack(root, registry, root / "git", monorepo)
    finally:
        registry.stop()


def with_resources(harness: Harness, **resources: dg.ConfigurableResource) -> None:
    """Swap some of the code location's resources (e.g. shorter retry limits) for this harness."""
    defs = harness.defs
    harness._defs = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        sensors=defs.sensors,
        schedules=defs.schedules,
        resources={**defs.resources, **resources},
    )


def bucket_objects(s3: S3Resource) -> dict[str, tuple[str, str, int]]:
    """key -> (ETag, LastModified, size) of every object: what a re-run must leave as it was."""
    client = s3._client()
    objects = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket):
        for obj in page.get("Contents", []):
            objects[obj["Key"]] = (obj["ETag"], obj["LastModified"].isoformat(), obj["Size"])
    return objects


def failure(instance: dg.DagsterInstance, run_id: str) -> str:
    """Every failed step of a run as 'step: message' with the causes (our exception is a cause)."""
    return "\n".join(
        f"{step}: {message}" for step, message in step_failures(instance, run_id).items()
    )


def gitops_bumps(harness: Harness, partition: str) -> list:
    return harness.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("gitops_bump"), asset_partitions=[partition]),
        limit=10,
    ).records


# --- the CLI as a separate process --------------------------------------------------------------

CLI = Path(sys.executable).parent / "deploy-assets"
SECRETS = {  # distinctive values: any occurrence in stored bytes or output is a leak
    "AWS_ACCESS_KEY_ID": "AKIARELIABILITY7QXZ",
    "AWS_SECRET_ACCESS_KEY": "rel7Secret+Kq2vNw9ZpT4sYb8LmXc3HdJf6GuVa1Ro",
    "WORKFLOW_PAT": "ghp_rel7PatQ3mZx8WvN2bT5kY9cH4jL6dF1sA0gE",
}


@dataclass
class CliDeployment:
    """Environment for `deploy-assets release` subprocesses against this test's stack."""

    env: dict[str, str]
    home: Path
    outputs: list[str] = field(default_factory=list)

    def spawn(self, tag: str) -> subprocess.Popen:
        # Own session: a SIGKILL of the group takes the CLI and its `go build` down together,
        # as a crashed container would.
        return subprocess.Popen(
            [str(CLI), "release", tag],
            env=self.env,
            cwd=self.home.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def finish(self, proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
        out, _ = proc.communicate(timeout=timeout)
        self.outputs.append(out.decode(errors="replace"))
        return proc.returncode, self.outputs[-1]

    def release(self, tag: str) -> tuple[int, str]:
        return self.finish(self.spawn(tag))


def cli_deployment_at(
    root: Path,
    monorepo: Monorepo,
    git_root: Path,
    registry: str,
    s3_endpoint: str,
    bucket: str,
    **extra: str,
) -> CliDeployment:
    """A CliDeployment whose DAGSTER_HOME, work and cache dirs live under root (secrets set)."""
    home = root / "dagster_home"
    env = {
        **os.environ,
        **SECRETS,
        "DAGSTER_HOME": str(home),
        "DEPLOY_ASSETS_ENV_FILE": str(root / "no.env"),
        "DEPLOY_ASSETS_LOCAL_DIR": str(root / "local"),
        "DEPLOY_ASSETS_SOURCE_REPO": str(monorepo.bare),
        "DEPLOY_ASSETS_REGISTRY": registry,
        "DEPLOY_ASSETS_S3_ENDPOINT": s3_endpoint,
        "APP_ARCHIVER_BUCKET": bucket,
        "APP_ARCHIVER_AWS_REGION": "eu-west-1",
        "APP_ARCHIVER_PATH": "binaries",
        "DEPLOY_ASSETS_GITOPS_ROOT": str(git_root),
        "DEPLOY_ASSETS_WORK_DIR": str(root / "work"),
        "DEPLOY_ASSETS_CACHE_DIR": str(root / "cache"),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    return CliDeployment(env, home)


@pytest.fixture
def cli_deployment(tmp_path, monorepo, git_root, docker_engine):
    """cli_deployment(registry, s3_endpoint, bucket, **extra_env) -> CliDeployment (secrets set)."""
    return lambda *args, **extra: cli_deployment_at(tmp_path, monorepo, git_root, *args, **extra)


def leaks(paths: list[Path], texts: list[str]) -> list[str]:
    """Where any secret (or its base64) occurs: every byte of every file under paths, every
    row of every sqlite database (a value split across pages hides from a byte scan), texts."""
    needles = {
        name: [value.encode(), base64.b64encode(value.encode())] for name, value in SECRETS.items()
    }
    found = []
    files = [
        p
        for root in paths
        for p in ([root] if root.is_file() else sorted(root.rglob("*")))
        if p.is_file()
    ]
    # Every file's bytes first: opening a database below checkpoints its -wal file into it and
    # removes the -wal/-shm files a killed process left behind.
    contents = {path: path.read_bytes() for path in files}
    for path, data in contents.items():
        if data.startswith(b"SQLite format 3"):
            with contextlib.closing(sqlite3.connect(path)) as db:
                data += "\n".join(db.iterdump()).encode()
        found += [
            f"{name} in {path}" for name, forms in needles.items() if any(f in data for f in forms)
        ]
    for n, text in enumerate(texts):
        found += [
            f"{name} in output #{n}"
            for name, forms in needles.items()
            if any(f.decode() in text for f in forms)
        ]
    return found
