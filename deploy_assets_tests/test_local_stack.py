"""Tests of the local stack: the stand-ins must behave like the systems they replace where the
release relies on it (a pushed image is retrievable by digest, the bucket exists, repos have a
main branch), and stopping must work even when a process does not cooperate."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from deploy_assets.local import stack as local_stack, stack_docker
from deploy_assets.local.stack import StackError

# The main conftest imports these too; importing them here keeps this module runnable alone.
from deploy_assets_tests.stack_fixtures import *  # noqa: F403
from deploy_assets_tests.stack_fixtures import S3_TEST_BUCKET, S3_TEST_REGION

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def _stat_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Alive and not a zombie (orphans are reparented to an init that may not reap them)."""
    return _stat_state(pid) not in ("", "Z")


def _s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_TEST_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


# --- registry


def test_registry_answers_v2(registry: str) -> None:
    response = requests.get(f"http://{registry}/v2/", timeout=5)
    assert response.status_code == 200


def test_pushed_image_is_retrievable_by_digest(
    docker_engine, registry: str, tmp_path: Path
) -> None:
    import docker

    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text(f"hello {uuid.uuid4()}\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    repository, tag = f"{registry}/local-stack-test", f"t-{uuid.uuid4().hex[:12]}"

    client = docker.from_env(timeout=120)
    try:
        image, _ = client.images.build(
            path=str(context), tag=f"{repository}:{tag}", platform="linux/arm64", rm=True
        )
        pushed_digest, errors = None, []
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                errors.append(event["error"])
            pushed_digest = event.get("aux", {}).get("Digest", pushed_digest)
        assert not errors
        assert pushed_digest and pushed_digest.startswith("sha256:")

        url = f"http://{registry}/v2/local-stack-test/manifests/{tag}"
        head = requests.head(url, headers={"Accept": MANIFEST_TYPES}, timeout=10)
        assert head.status_code == 200
        assert head.headers["Docker-Content-Digest"] == pushed_digest

        # The platform asked for is what the registry holds (the release builds arm64 images).
        manifest = requests.get(url, headers={"Accept": MANIFEST_TYPES}, timeout=10).json()
        config_digest = manifest["config"]["digest"]
        config = requests.get(
            f"http://{registry}/v2/local-stack-test/blobs/{config_digest}", timeout=10
        ).json()
        assert config["architecture"] == "arm64"

        # Deletes are enabled (cleanup code relies on it): the digest goes, and the tag with it.
        deleted = requests.delete(
            f"http://{registry}/v2/local-stack-test/manifests/{pushed_digest}", timeout=10
        )
        assert deleted.status_code == 202
        assert requests.head(url, headers={"Accept": MANIFEST_TYPES}, timeout=10).status_code == 404
    finally:
        client.images.remove(f"{repository}:{tag}", force=True)
        client.close()


def test_start_registry_is_idempotent_and_stoppable(tmp_path: Path) -> None:
    port, state_dir = local_stack.free_port(), tmp_path / "stack"
    pid = local_stack.start_registry(port, tmp_path / "data", state_dir)
    try:
        assert local_stack.start_registry(port, tmp_path / "data", state_dir) == pid
        assert (state_dir / "registry.pid").read_text().strip() == str(pid)
    finally:
        assert local_stack.stop_process(state_dir / "registry.pid", grace=5)
    assert not _alive(pid)
    assert not (state_dir / "registry.pid").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2)


def test_start_registry_refuses_a_port_held_by_someone_else(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        with pytest.raises(StackError, match="taken"):
            local_stack.start_registry(
                squatter.getsockname()[1], tmp_path / "data", tmp_path / "stack"
            )
    assert not (tmp_path / "stack" / "registry.pid").exists()


# --- S3


def test_s3_answers_and_bucket_exists(s3_server: str) -> None:
    s3 = _s3_client(s3_server)
    s3.head_bucket(Bucket=S3_TEST_BUCKET)
    key = f"tests/{uuid.uuid4()}.txt"
    s3.put_object(Bucket=S3_TEST_BUCKET, Key=key, Body=b"artifact")
    assert s3.get_object(Bucket=S3_TEST_BUCKET, Key=key)["Body"].read() == b"artifact"
    location = s3.get_bucket_location(Bucket=S3_TEST_BUCKET)["LocationConstraint"]
    assert location == S3_TEST_REGION


def test_start_s3_is_idempotent_and_keeps_state(tmp_path: Path) -> None:
    port = local_stack.free_port()
    pid = local_stack.start_s3(port, tmp_path, "bucket-one", S3_TEST_REGION)
    try:
        s3 = _s3_client(f"http://127.0.0.1:{port}")
        s3.put_object(Bucket="bucket-one", Key="k", Body=b"v")
        assert local_stack.start_s3(port, tmp_path, "bucket-one", S3_TEST_REGION) == pid
        assert local_stack.start_s3(port, tmp_path, "bucket-two", S3_TEST_REGION) == pid
        assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {"bucket-one", "bucket-two"}
        assert s3.get_object(Bucket="bucket-one", Key="k")["Body"].read() == b"v"
    finally:
        assert local_stack.stop_process(tmp_path / "s3.pid", grace=5)
    assert not _alive(pid)


# --- stop_process

STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
helper = subprocess.Popen(["sleep", "300"])  # same process group
print(helper.pid, flush=True)
time.sleep(300)
"""


def test_stop_process_hard_kills_a_process_ignoring_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        helper_pid = int(proc.stdout.readline())  # printed once SIGTERM is ignored
        pidfile = tmp_path / "stubborn.pid"
        pidfile.write_text(f"{proc.pid}\n")

        started = time.monotonic()
        assert local_stack.stop_process(pidfile, grace=1)
        elapsed = time.monotonic() - started

        assert proc.wait(timeout=5) == -signal.SIGKILL
        assert 1 <= elapsed < 8
        assert not pidfile.exists()
        deadline = time.monotonic() + 5  # the helper in its group went down with it
        while _alive(helper_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(helper_pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_stop_process_uses_sigterm_first(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    pidfile = tmp_path / "sleep.pid"
    pidfile.write_text(str(proc.pid))
    started = time.monotonic()
    assert local_stack.stop_process(pidfile, grace=10)
    assert proc.wait(timeout=5) == -signal.SIGTERM
    assert time.monotonic() - started < 5


def test_stop_process_tolerates_stale_pidfiles(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile = tmp_path / "x.pid"
    for content in (str(dead.pid), "not a pid", ""):
        pidfile.write_text(content)
        assert local_stack.stop_process(pidfile, grace=0.1) is False
        assert not pidfile.exists()
    assert local_stack.stop_process(pidfile, grace=0.1) is False  # no file at all

    # A live pid running something else (the pid was reused) is not ours to signal; nor is
    # the caller itself.
    pidfile.write_text(str(os.getpid()))
    assert local_stack.stop_process(pidfile, grace=0.1, expect="docker-registry") is False
    assert not pidfile.exists()
    pidfile.write_text(str(os.getpid()))
    assert local_stack.stop_process(pidfile, grace=0.1) is False


# --- docker engine


def test_stale_docker_pidfile_is_removed_unless_dockerd_runs(docker_engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "docker.pid"
    assert local_stack.remove_stale_pidfile(pidfile) is False  # nothing there

    dead = subprocess.Popen(["true"])
    dead.wait()
    # Left by a hard-killed dockerd: the pid is gone, or reused by an unrelated process.
    for content in (str(dead.pid), str(os.getpid()), "garbage"):
        pidfile.write_text(content)
        assert local_stack.remove_stale_pidfile(pidfile) is True
        assert not pidfile.exists()

    # A zombie, as a SIGKILLed dockerd's containerd is under an init that does not reap:
    # dockerd's own liveness check (kill 0) would wait for it forever.
    zombie = subprocess.Popen(["true"])
    try:
        while _stat_state(zombie.pid) != "Z":
            time.sleep(0.01)
        pidfile.write_text(str(zombie.pid))
        assert local_stack.remove_stale_pidfile(pidfile, "containerd") is True
    finally:
        zombie.wait()

    running = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and stack_docker.is_program(int(p.name), "dockerd")
    ]
    if running:  # the docker_engine fixture's dockerd, if it started one
        pidfile.write_text(str(running[0]))
        assert local_stack.remove_stale_pidfile(pidfile) is False
        assert pidfile.exists()


def test_ensure_docker_engine_needs_root_to_start_dockerd(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stack_docker, "_docker_answers", lambda: False)
    monkeypatch.setattr(stack_docker.os, "geteuid", lambda: 1000)
    with pytest.raises(
        StackError, match="no Docker engine answers and we are not root to start one"
    ):
        local_stack.ensure_docker_engine(tmp_path)
    assert not (tmp_path / "dockerd.pid").exists()


def test_ensure_docker_engine_returns_when_engine_answers(docker_engine, tmp_path: Path) -> None:
    local_stack.ensure_docker_engine(tmp_path, timeout=5)
    assert not (tmp_path / "dockerd.pid").exists()  # nothing started


# --- git


def test_bare_repos_have_one_commit_on_main(git_root: Path) -> None:
    assert sorted(p.name for p in git_root.iterdir()) == sorted(
        f"{n}.git" for n in local_stack.REPO_NAMES
    )
    for name in local_stack.REPO_NAMES:
        repo = git_root / f"{name}.git"
        assert _git(repo, "rev-parse", "--is-bare-repository") == "true"
        assert _git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
        assert _git(repo, "rev-list", "--count", "main") == "1"
        assert (
            _git(repo, "log", "-1", "--format=%an <%ae>", "main")
            == "deploy-assets <deploy-assets@localhost>"
        )
        assert name in _git(repo, "show", "main:README.md")


def test_init_bare_repos_is_idempotent(git_root: Path) -> None:
    heads = {n: _git(git_root / f"{n}.git", "rev-parse", "main") for n in local_stack.REPO_NAMES}
    local_stack.init_bare_repos(git_root, local_stack.REPO_NAMES)
    for name, head in heads.items():
        assert _git(git_root / f"{name}.git", "rev-parse", "main") == head
        assert _git(git_root / f"{name}.git", "rev-list", "--count", "main") == "1"
    assert not [p for p in git_root.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_init_bare_repos_needs_no_git_config_and_clones(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    local_stack.init_bare_repos(tmp_path / "git", ["gitops-staging"])
    subprocess.run(
        [
            "git",
            "clone",
            "-q",
            str(tmp_path / "git" / "gitops-staging.git"),
            str(tmp_path / "clone"),
        ],
        check=True,
    )
    assert _git(tmp_path / "clone", "branch", "--show-current") == "main"
    assert (tmp_path / "clone" / "README.md").read_text().startswith("# gitops-staging")


# --- whole stack


def test_up_is_idempotent_and_down_stops_what_it_started(docker_engine, tmp_path: Path) -> None:
    registry_port, s3_port = local_stack.free_port(), local_stack.free_port()
    try:
        info = local_stack.up(
            tmp_path, registry_port=registry_port, s3_port=s3_port, bucket="stack-bucket"
        )
        assert info == local_stack.StackInfo(
            f"127.0.0.1:{registry_port}",
            f"http://127.0.0.1:{s3_port}",
            tmp_path / "git",
            tmp_path / "stack",
        )
        pids = {n: (info.state_dir / f"{n}.pid").read_text() for n in ("registry", "s3")}
        assert (
            local_stack.up(
                tmp_path, registry_port=registry_port, s3_port=s3_port, bucket="stack-bucket"
            )
            == info
        )
        assert {n: (info.state_dir / f"{n}.pid").read_text() for n in ("registry", "s3")} == pids
        assert requests.get(f"http://{info.registry}/v2/", timeout=5).status_code == 200
        _s3_client(info.s3_endpoint).head_bucket(Bucket="stack-bucket")
        assert sorted(p.name for p in info.git_root.iterdir()) == sorted(
            f"{n}.git" for n in local_stack.REPO_NAMES
        )
    finally:
        stopped = local_stack.down(tmp_path)
    # The engine already answered, so up() did not start dockerd and down() leaves it alone.
    assert stopped == ["registry", "s3"]
    assert local_stack.down(tmp_path) == []
