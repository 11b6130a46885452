"""Real components for every test: Docker engine, a registry, an S3 API server, bare git repos,
the Go toolchain, and a temporary Dagster instance. Nothing of ours is mocked.

Each release test gets its own registry (on a free port), bucket, git repos and build cache, so
tests cannot see each other's images or objects; the Go compiler cache is shared by the session
because it only speeds builds up and never changes their bytes.
"""

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.cli.demo import EXAMPLE_MONOREPO, create_monorepo
from deploy_assets.cli.runner import RunOutcome, run_release
from deploy_assets.config import PipelineConfig, Settings, load_pipeline_config
from deploy_assets.definitions import build_definitions
from deploy_assets.local import stack as local_stack
from deploy_assets.records.history import latest_for_partition
from deploy_assets.resources.git import run_git
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets_tests.instances import local_instance_for_test
from deploy_assets_tests.stack_fixtures import *  # noqa: F401,F403  (docker_engine, registry, s3_server, git_root)
from deploy_assets_tests.stack_fixtures import STOP_GRACE

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test-key")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session", autouse=True)
def shared_go_cache(tmp_path_factory):
    cache = Path(os.environ.get("DEPLOY_ASSETS_TEST_GOCACHE") or tmp_path_factory.mktemp("gocache"))
    os.environ["DEPLOY_ASSETS_GOCACHE"] = str(cache)
    yield cache


@pytest.fixture
def fresh_registry(tmp_path, docker_engine):
    """A registry of this test alone: image tags of other tests cannot clash with ours."""
    state = tmp_path / "registry"
    port = local_stack.free_port()
    local_stack.start_registry(port, state / "data", state)
    yield f"127.0.0.1:{port}"
    local_stack.stop_process(state / "registry.pid", grace=STOP_GRACE, expect="docker-registry")


@dataclass
class Monorepo:
    """The source remote (bare) and a working clone to commit and tag in."""

    bare: Path
    clone: Path

    def write(self, relpath: str, text: str) -> None:
        path = self.clone / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str) -> str:
        run_git(["add", "-A"], cwd=self.clone)
        run_git(["commit", "--quiet", "-m", message], cwd=self.clone)
        run_git(["push", "--quiet", "origin", "main"], cwd=self.clone)
        return self.head()

    def head(self) -> str:
        return run_git(["rev-parse", "HEAD"], cwd=self.clone).decode().strip()

    def tag(self, name: str, ref: str = "HEAD") -> str:
        run_git(["tag", "-f", name, ref], cwd=self.clone)
        run_git(["push", "--quiet", "--force", "origin", f"refs/tags/{name}"], cwd=self.clone)
        return run_git(["rev-parse", f"{name}^{{commit}}"], cwd=self.clone).decode().strip()


@pytest.fixture
def monorepo(tmp_path) -> Monorepo:
    repo = Monorepo(bare=tmp_path / "git" / "monorepo.git", clone=tmp_path / "monorepo")
    create_monorepo(repo.bare, repo.clone, EXAMPLE_MONOREPO)
    return repo


@dataclass
class Harness:
    """One isolated deployment: settings, definitions and a temporary Dagster instance."""

    settings: Settings
    config: PipelineConfig
    instance: dg.DagsterInstance
    monorepo: Monorepo
    _defs: dg.Definitions | None = None

    @property
    def defs(self) -> dg.Definitions:
        if self._defs is None:
            self._defs = build_definitions(self.settings, self.config)
        return self._defs

    def reload(self, config: PipelineConfig | None = None) -> None:
        self.config = config or self.config
        self._defs = None

    def release(self, tag: str, commit_ref: str = "HEAD") -> RunOutcome:
        self.monorepo.tag(tag, commit_ref)
        return run_release(self.defs, self.instance, tag)

    def metadata(self, key: dg.AssetKey | str, partition: str) -> dict:
        key = dg.AssetKey.from_user_string(key) if isinstance(key, str) else key
        found = latest_for_partition(self.instance, key, partition)
        assert found is not None, f"no materialization of {key.to_user_string()} for {partition}"
        return found.metadata

    @property
    def s3(self) -> S3Resource:
        return S3Resource(
            bucket=self.settings.bucket,
            path=self.settings.s3_path,
            region=self.settings.aws_region,
            endpoint_url=self.settings.s3_endpoint or "",
        )

    @property
    def registry(self) -> RegistryResource:
        return RegistryResource(host=self.settings.registry)

    def gitops_log(self, repo: str) -> list[str]:
        out = run_git(
            ["log", "--format=%H %s", "main"], cwd=Path(self.settings.git_root) / f"{repo}.git"
        )
        return out.decode().splitlines()


def make_settings(
    tmp_path: Path,
    registry: str,
    s3_endpoint: str,
    git_root: Path,
    source: Path,
    bucket: str,
    **extra: str,
) -> Settings:
    return Settings.from_env(
        {
            "DEPLOY_ASSETS_SOURCE_REPO": str(source),
            "DEPLOY_ASSETS_REGISTRY": registry,
            "DEPLOY_ASSETS_S3_ENDPOINT": s3_endpoint,
            "APP_ARCHIVER_BUCKET": bucket,
            "APP_ARCHIVER_AWS_REGION": "eu-west-1",
            "APP_ARCHIVER_PATH": "binaries",
            "DEPLOY_ASSETS_GITOPS_ROOT": str(git_root),
            "DEPLOY_ASSETS_WORK_DIR": str(tmp_path / "work"),
            "DEPLOY_ASSETS_CACHE_DIR": str(tmp_path / "cache"),
            # The session shares one GOCACHE (shared_go_cache): archiving it into every test's bucket
            # would only cost time. Tests of the fresh-worker path turn it on.
            "DEPLOY_ASSETS_GO_COMPILE_CACHE": "",
            **extra,
        }
    )


@pytest.fixture
def harness(tmp_path, fresh_registry, s3_server, git_root, monorepo) -> Harness:
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    settings = make_settings(tmp_path, fresh_registry, s3_server, git_root, monorepo.bare, bucket)
    S3Resource(bucket=bucket, endpoint_url=s3_server).ensure_bucket()
    with local_instance_for_test(tmp_path / "dagster_home") as instance:
        yield Harness(settings, load_pipeline_config(), instance, monorepo)
    shutil.rmtree(tmp_path / "work", ignore_errors=True)
