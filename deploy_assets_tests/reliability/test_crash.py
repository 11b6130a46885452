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
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.assets.gitops import UPDATE_VERSION_WORKFLOW
from deploy_assets.config import REPO_ROOT
from deploy_assets.local import stack as local_stack
from deploy_assets.resources.git import GitSourceResource, run_git
from deploy_assets.resources.s3 import S3Resource
from deploy_assets_tests.github_standin import GitHubStandin
from deploy_assets_tests.instances import load_instance
from deploy_assets_tests.reliability.conftest import (
    MS,
    SECRETS,
    CliDeployment,
    Stack,
    cli_deployment_at,
    leaks,
    new_bucket,
    scenario_stack,
)
from deploy_assets_tests.reliability.faults import missing_blobs, when_log_line

pytestmark = pytest.mark.reliability

TAG = "v6.0.0-alpha.1"
OWNER = "example-org"


def session_commands(sid: int) -> list[list[str]]:
    """Command lines of the live processes in session sid."""
    commands = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            if stat[0] != "Z" and int(stat[3]) == sid:
                commands.append(
                    (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                )
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


def assert_images_and_objects_complete(
    deployment, registry: str, endpoint: str, bucket: str
) -> None:
    s3 = S3Resource(bucket=bucket, endpoint_url=endpoint)
    for name in MS:
        assert missing_blobs(registry, name, TAG) == []
        built = deployment.home.parent / "work" / "dev" / TAG / "out" / "bin_arm64" / "ms" / name
        assert (
            s3.download_sha256(f"binaries/{TAG}/{name}")[0]
            == hashlib.sha256(built.read_bytes()).hexdigest()
        )


def assert_release_complete(
    deployment, registry: str, endpoint: str, bucket: str, git_root: Path
) -> None:
    log = (
        run_git(["log", "--format=%s", "main"], cwd=git_root / "gitops-development.git")
        .decode()
        .splitlines()
    )
    assert log == [f"deploy(dev): {' '.join(MS)} -> {TAG}", "Initialise gitops-development"]
    assert_images_and_objects_complete(deployment, registry, endpoint, bucket)


@dataclass
class MidBuild:
    stack: Stack
    deployment: CliDeployment
    killed: bool
    killed_code: int
    group_left: list
    after_kill: dict
    commits_after_kill: int
    dead_registry: str
    failed: tuple[int, str]
    rerun: tuple[int, str]
    github: GitHubStandin


@pytest.fixture(scope="module")
def killed_mid_build(tmp_path_factory, s3_server, docker_engine):
    """SIGKILL the release (CLI and `go build`) while go builds; release it once with the registry
    gone (a failing release); then release it again. The dev env dispatches its GitOps workflow
    through the GitHub stand-in, so WORKFLOW_PAT is really sent by the release that completes."""
    root = tmp_path_factory.mktemp("killed-mid-build")
    config = root / "pipeline.yaml"
    config.write_text(
        (REPO_ROOT / "misc" / "configs" / "pipeline.yaml")
        .read_text()
        .replace(
            "    gitops_repo: gitops-development\n",
            "    gitops_repo: gitops-development\n    gitops_mode: dispatch\n",
            1,
        )
    )
    with scenario_stack(root) as stack, GitHubStandin(token=SECRETS["WORKFLOW_PAT"]) as github:
        github.add_workflow(
            f"{OWNER}/gitops-development",
            UPDATE_VERSION_WORKFLOW,
            queued_polls=0,
            in_progress_polls=0,
        )
        bucket = new_bucket(s3_server)
        dispatch = {
            "DEPLOY_ASSETS_CONFIG": str(config),
            "DEPLOY_ASSETS_GITHUB_API": github.url,
            "DEPLOY_ASSETS_GITHUB_OWNER": OWNER,
        }
        deployment = cli_deployment_at(
            root, stack.monorepo, stack.git_root, stack.registry.host, s3_server, bucket, **dispatch
        )
        stack.monorepo.tag(TAG)
        proc = deployment.spawn(TAG)
        killed = kill_session_when(proc, lambda: go_build_running(proc.pid))
        code, _ = deployment.finish(proc)
        deadline = time.monotonic() + 10  # children die a moment after the SIGKILL reaches them
        while (left := session_commands(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        after_kill = {name: missing_blobs(stack.registry.host, name, TAG) for name in MS}
        commits = len(
            run_git(
                ["log", "--format=%H", "main"], cwd=stack.git_root / "gitops-development.git"
            ).split()
        )
        dead = f"127.0.0.1:{local_stack.free_port()}"
        broken = cli_deployment_at(
            root, stack.monorepo, stack.git_root, dead, s3_server, bucket, **dispatch
        )
        failed = broken.release(TAG)
        deployment.outputs += broken.outputs
        rerun = deployment.release(TAG)
        yield MidBuild(
            stack, deployment, killed, code, left, after_kill, commits, dead, failed, rerun, github
        )


def test_killed_mid_build_the_rerun_completes_with_one_bump(killed_mid_build):
    run = killed_mid_build
    assert run.killed, run.deployment.outputs[0]
    assert run.killed_code == -signal.SIGKILL and run.group_left == []  # the go build died with it
    assert (
        all(missing is None for missing in run.after_kill.values()) and run.commits_after_kill == 1
    )
    # with the registry down, the release is refused by the preflight (exit 4), nothing changed
    assert run.failed[0] == 4 and "deploy-assets: refused:" in run.failed[1], run.failed[1]
    code, out = run.rerun
    assert code == 0 and "succeeded" in out.splitlines()[-1], out
    assert_images_and_objects_complete(
        run.deployment,
        run.stack.registry.host,
        run.deployment.env["DEPLOY_ASSETS_S3_ENDPOINT"],
        run.deployment.env["APP_ARCHIVER_BUCKET"],
    )
    # Exactly one GitOps dispatch: the killed and the failed release never got that far.
    assert run.github.dispatches(f"{OWNER}/gitops-development") == [
        {
            "ref": "main",
            "inputs": {"newVersion": TAG, "projectNames": " ".join(MS), "updatesRoutes": "true"},
            "return_run_details": True,
        }
    ]


def test_no_secret_in_dagster_storage_or_cli_output_of_killed_failed_and_good_releases(
    killed_mid_build,
):
    run = killed_mid_build
    pat = SECRETS["WORKFLOW_PAT"]
    assert run.github.requests and all(
        pat in r.headers.get("Authorization", "") for r in run.github.requests
    )
    assert len(run.deployment.outputs) == 3 and (run.deployment.home / "history").is_dir()
    assert (
        leaks([run.deployment.home, run.deployment.home.parent / "work"], run.deployment.outputs)
        == []
    )


def test_the_killed_run_is_not_left_started_after_the_rerun(killed_mid_build):
    run = killed_mid_build
    instance = load_instance(str(run.deployment.home))
    try:
        statuses = [r.dagster_run.status for r in instance.get_run_records()]
    finally:
        instance.dispose()
    assert len(statuses) == 3 and dg.DagsterRunStatus.STARTED not in statuses, statuses


def test_a_failed_cli_release_prints_the_cause(killed_mid_build):
    run = killed_mid_build
    assert f"registry {run.dead_registry} unreachable" in run.failed[1], run.failed[1]


@pytest.fixture(scope="module")
def killed_mid_push(tmp_path_factory, s3_server, docker_engine):
    """SIGKILL the release right after its first image's manifest was accepted: that image is
    complete in the registry, not yet recorded by Dagster, and the others are mid-push or not
    started. Then `deploy-assets release TAG` again."""
    root = tmp_path_factory.mktemp("killed-mid-push")
    with scenario_stack(root) as stack:
        deployment = cli_deployment_at(
            root,
            stack.monorepo,
            stack.git_root,
            stack.registry.host,
            s3_server,
            new_bucket(s3_server),
        )
        stack.monorepo.tag(TAG)
        proc = deployment.spawn(TAG)
        pushed = threading.Event()
        when_log_line(
            stack.registry.log, rf'"PUT /v2/ms_\w+/manifests/{TAG} HTTP/1.1" 201', pushed.set
        )
        killed = kill_session_when(proc, pushed.is_set)
        deployment.finish(proc)
        after_kill = {name: missing_blobs(stack.registry.host, name, TAG) for name in MS}
        bumps_after_kill = run_git(
            ["log", "--format=%H", "main"], cwd=stack.git_root / "gitops-development.git"
        )
        rerun = deployment.release(TAG)
        yield stack, deployment, killed, after_kill, len(bumps_after_kill.split()), rerun


def test_killed_mid_push_leaves_no_tag_on_a_half_pushed_image(killed_mid_push):
    stack, deployment, killed, after_kill, commits, _ = killed_mid_push
    assert killed, deployment.outputs[0]
    assert any(missing == [] for missing in after_kill.values())  # the kill came after a whole push
    # Every tag is absent or complete: never a manifest whose blobs are missing.
    assert all(missing in (None, []) for missing in after_kill.values()), after_kill
    assert commits == 1  # no GitOps bump
    assert leaks([deployment.home], deployment.outputs) == []


def test_killed_mid_push_the_rerun_completes_with_one_bump(killed_mid_push):
    stack, deployment, _, _, _, (code, out) = killed_mid_push
    assert code == 0 and "succeeded" in out.splitlines()[-1], out
    assert_release_complete(
        deployment,
        stack.registry.host,
        deployment.env["DEPLOY_ASSETS_S3_ENDPOINT"],
        deployment.env["APP_ARCHIVER_BUCKET"],
        stack.git_root,
    )


# --- git killed holding its locks; exports killed midway --------------------------------------


def test_a_git_killed_holding_a_ref_lock_does_not_block_the_next_fetch(monorepo, tmp_path):
    git = GitSourceResource(remote=str(monorepo.bare), cache_dir=str(tmp_path / "cache"))
    mirror = git.fetch()
    # A real git holding a real lock: a ref transaction prepared and left waiting for input...
    holder = subprocess.Popen(
        ["git", "update-ref", "--stdin"],
        cwd=mirror,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
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
