"""pytest fixtures that run the local stack's servers (imported by the main conftest).

Each server gets a free port and its own temporary state directory, so tests never touch a
developer's running stack (``.local/``) and two sessions on one machine do not collide. The
servers are stopped by the pid recorded at start, SIGTERM first and SIGKILL after a grace
period, so a wedged server cannot outlive the session and hold its port. The Docker engine is
the exception: see ``docker_engine``.
"""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy_assets.local import stack as local_stack

__all__ = [
    "DOCKERD_STATE_DIR",
    "S3_TEST_BUCKET",
    "S3_TEST_REGION",
    "docker_engine",
    "git_root",
    "registry",
    "s3_server",
]

S3_TEST_BUCKET = "app-artifacts"
S3_TEST_REGION = "eu-west-1"
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL in teardown
DOCKERD_STATE_DIR = Path(tempfile.gettempdir()) / f"deploy-assets-test-dockerd-{os.getuid()}"


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine that answers; dockerd is started (as root) when none does.

    Unlike the servers below, dockerd is left running at the end: it is one per machine, and
    another pytest session or a `deploy-assets up` may be building on it right now; stopping
    it would break their builds. Its pid and log go to a temp dir that outlives the session,
    so a dockerd started here can still be found and stopped by hand:
    ``stop_process(DOCKERD_STATE_DIR / "dockerd.pid")``.
    """
    local_stack.ensure_docker_engine(DOCKERD_STATE_DIR)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A distribution registry on a free loopback port; yields "127.0.0.1:PORT"."""
    state_dir = tmp_path_factory.mktemp("registry")
    port = local_stack.free_port()
    local_stack.start_registry(port, state_dir / "data", state_dir)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        local_stack.stop_process(
            state_dir / "registry.pid", grace=STOP_GRACE, expect="docker-registry"
        )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 on a free loopback port with bucket S3_TEST_BUCKET; yields the endpoint URL.

    The bucket is shared by the whole session: tests should write under their own keys.
    """
    state_dir = tmp_path_factory.mktemp("s3")
    port = local_stack.free_port()
    local_stack.start_s3(port, state_dir, S3_TEST_BUCKET, S3_TEST_REGION)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        local_stack.stop_process(state_dir / "s3.pid", grace=STOP_GRACE, expect="moto_server")


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    """A fresh directory holding the four bare repos (gitops-*, terraform-apps-production)."""
    root = tmp_path / "git"
    local_stack.init_bare_repos(root, local_stack.REPO_NAMES)
    return root
