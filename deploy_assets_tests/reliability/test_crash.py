"""The release process is SIGKILLed mid-build and mid-push; git is killed holding its locks.

`deploy-assets release TAG` runs as a subprocess in its own session, and the whole session is
SIGKILLed (the CLI and its `go build`, as when a container dies) at the moment the build or the
push is seen happening. The re-run must complete with nothing stale in its way, one GitOps
commit, and no image tag that points at a manifest whose blobs are missing.
"""

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deploy_assets.resources.git import GitSourceResource, run_git
from deploy_assets.resources.s3 import S3Resource
from deploy_assets_tests.reliability.conftest import MS, leaks
from deploy_assets_tests.reliability.faults import missing_blobs, when_log_line

pytestmark = pytest.mark.reliability

TAG = "v6.0.0-alpha.1"


def session_commands(sid: int) -> list[list[str]]:
    """Command lines of the live processes in session sid."""
    commands = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            if stat[0] != "Z" and int(stat[3]) == sid:
                commands.append((entry / "cmdline").read_bytes().decode(errors="replace").split("\0"))
        except (OSError, IndexError, ValueError):
            continue
    return commands


def kill_session_when(proc: subprocess.Popen, seen, timeout: float = 300) -> bool:
    """SIGKILL proc's whole session as soon as seen() is true; False if proc ended first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if seen():
            os.killpg(proc.pid, signal.SIGKILL)
            return True
        time.sleep(0.005)
    return False


def go_build_running(sid: int) -> bool:
    return any(Path(c[0]).name == "go" and c[1:2] == ["build"] for c in session_commands(sid))


def assert_release_complete(deployment, registry: str, endpoint: str, bucket: str, git_root: Path) -> None:
    s3 = S3Resource(bucket=bucket, endpoint_url=endpoint)
    log = run_git(["log", "--format=%s", "main"], cwd=git_root / "gitops-development.git").decode().splitlines()
    assert log == [f"deploy(dev): {' '.join(MS)} -> {TAG}", "Initialise gitops-development"]
    for name in MS:
        assert missing_blobs(registry, name, TAG) == []
        built = deployment.home.parent / "work" / "dev" / TAG / "out" / "bin_arm64" / "ms" / name
        assert s3.download_sha256(f"binaries/{TAG}/{name}")[0] == hashlib.sha256(built.read_bytes()).hexdigest()


def test_killed_mid_build_the_rerun_completes_with_one_bump(cli_deployment, fresh_registry, s3_bucket, monorepo,
                                                            git_root):
    deployment = cli_deployment(fresh_registry, *s3_bucket)
    monorepo.tag(TAG)
    proc = deployment.spawn(TAG)

    assert kill_session_when(proc, lambda: go_build_running(proc.pid)), deployment.finish(proc)[1]
    code, out = deployment.finish(proc)

    assert code == -signal.SIGKILL
    assert session_commands(proc.pid) == []  # the go build died with it
    assert all(missing_blobs(fresh_registry, name, TAG) is None for name in MS)
    assert len(run_git(["log", "--format=%H", "main"], cwd=git_root / "gitops-development.git").split()) == 1

    code, out = deployment.release(TAG)

    assert code == 0 and "succeeded" in out.splitlines()[-1], out
    assert_release_complete(deployment, fresh_registry, *s3_bucket, git_root)
    assert leaks([deployment.home], deployment.outputs) == []


def test_killed_mid_push_leaves_no_half_pushed_tag_and_the_rerun_completes(cli_deployment, killable_registry,
                                                                          s3_bucket, monorepo, git_root):
    deployment = cli_deployment(killable_registry.host, *s3_bucket)
    monorepo.tag(TAG)
    proc = deployment.spawn(TAG)
    pushing = threading.Event()
    when_log_line(killable_registry.log, r'"POST /v2/ms_\w+/blobs/uploads/', pushing.set)

    assert kill_session_when(proc, pushing.is_set), deployment.finish(proc)[1]
    deployment.finish(proc)

    for name in MS:  # a tag is absent, or complete: never a manifest with missing blobs
        assert missing_blobs(killable_registry.host, name, TAG) in (None, [])
    assert len(run_git(["log", "--format=%H", "main"], cwd=git_root / "gitops-development.git").split()) == 1

    code, out = deployment.release(TAG)

    assert code == 0 and "succeeded" in out.splitlines()[-1], out
    assert_release_complete(deployment, killable_registry.host, *s3_bucket, git_root)
    assert leaks([deployment.home], deployment.outputs) == []


@pytest.mark.xfail(strict=True, reason="needs wiring: images.py must adopt a tag whose image was pushed by a killed "
                   "run but not recorded (registry tag exists, no materialization): compare the image config's "
                   "io.deploy-assets.content-key label with this build's content key and record it instead of "
                   "refusing it as a foreign digest")
def test_killed_right_after_an_image_was_pushed_the_rerun_completes(cli_deployment, killable_registry, s3_bucket,
                                                                   monorepo, git_root):
    deployment = cli_deployment(killable_registry.host, *s3_bucket)
    monorepo.tag(TAG)
    proc = deployment.spawn(TAG)
    pushed = threading.Event()
    when_log_line(killable_registry.log, rf'"PUT /v2/ms_\w+/manifests/{TAG} HTTP/1.1" 201', pushed.set)

    assert kill_session_when(proc, pushed.is_set), deployment.finish(proc)[1]
    deployment.finish(proc)
    assert any(missing_blobs(killable_registry.host, name, TAG) == [] for name in MS)

    code, out = deployment.release(TAG)

    assert code == 0 and "succeeded" in out.splitlines()[-1], out
    assert_release_complete(deployment, killable_registry.host, *s3_bucket, git_root)


# --- git killed holding its locks; exports killed midway --------------------------------------

def test_a_git_killed_holding_a_ref_lock_does_not_block_the_next_fetch(monorepo, tmp_path):
    git = GitSourceResource(remote=str(monorepo.bare), cache_dir=str(tmp_path / "cache"))
    mirror = git.fetch()
    # A real git holding a real lock: a ref transaction prepared and left waiting for input...
    holder = subprocess.Popen(["git", "update-ref", "--stdin"], cwd=mirror, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, text=True)
    holder.stdin.write(f"start\nupdate refs/heads/main {git.resolve('HEAD')}\nprepare\n")
    holder.stdin.flush()
    lock = mirror / "refs" / "heads" / "main.lock"
    deadline = time.monotonic() + 30
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(holder.pid, signal.SIGKILL)  # ...and killed: the lock file stays behind
    holder.wait()
    assert lock.exists()
    monorepo.write("NEWS.md", "moved on\n")
    head = monorepo.commit("the remote moved on")

    git.fetch()

    assert git.resolve("HEAD") == head and not lock.exists()


def test_concurrent_fetches_of_one_mirror_all_succeed(monorepo, tmp_path):
    git = GitSourceResource(remote=str(monorepo.bare), cache_dir=str(tmp_path / "cache"))
    errors: list[Exception] = []

    def fetch():
        try:
            git.fetch()
        except Exception as exc:  # collected: every thread must succeed
            errors.append(exc)

    for round_ in range(3):
        monorepo.write("NEWS.md", f"round {round_}\n")
        head = monorepo.commit(f"round {round_}")
        monorepo.tag(f"v0.{round_}.0-alpha.1")
        threads = [threading.Thread(target=fetch) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and git.resolve("HEAD") == head


def test_an_export_killed_midway_neither_blocks_nor_fools_the_next(monorepo, tmp_path):
    git = GitSourceResource(remote=str(monorepo.bare), cache_dir=str(tmp_path / "cache"))
    git.fetch()
    dest = tmp_path / "work" / "src"
    # A process that died mid-export leaves its half-extracted tree beside dest (its pid is in the name).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = dest.parent / f".{dest.name}.{dead.pid}.0badf00d"
    (leftover / "cmd").mkdir(parents=True)
    (leftover / ".deploy-assets-commit").write_text(monorepo.head())

    tree = git.export(monorepo.head(), dest)

    assert tree == dest and (dest / "go.mod").is_file() and not leftover.exists()
    assert (dest / ".deploy-assets-commit").read_text() == monorepo.head()
