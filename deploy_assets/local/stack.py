"""Start and stop the local stack that stands in for the production systems.

Locally, a Docker engine, a distribution registry (for ECR), a moto server (for S3) and bare
git repositories (for the gitops / terraform repos on GitHub) replace what a release touches.
Every service runs detached in its own session with a pid file under ``<local_dir>/stack``,
so a later process (another CLI call, a test teardown) can find and stop exactly what was
started, and a crash leaves behind files that the next run recognises as stale.

Heavy imports (docker, boto3) happen inside the functions that need them: the CLI and the
Dagster definitions import this module, and must stay quick to load.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.local.stack_docker import (
    CONTAINERD_PIDFILE,
    DOCKER_PIDFILE,
    ensure_docker_engine,
    remove_stale_pidfile,
)
from deploy_assets.local.stack_processes import (
    StackError,
    read_pid,
    runs,
    spawn,
    stop_process,
    wait_until,
)

__all__ = [
    "CONTAINERD_PIDFILE",
    "DOCKER_PIDFILE",
    "REPO_NAMES",
    "StackError",
    "StackInfo",
    "down",
    "ensure_docker_engine",
    "free_port",
    "init_bare_repos",
    "remove_stale_pidfile",
    "start_registry",
    "start_s3",
    "stop_process",
    "up",
]

REPO_NAMES = (
    "gitops-development",
    "gitops-staging",
    "gitops-production",
    "terraform-apps-production",
)
# Commits must work without a global git config (CI, fresh containers).
GIT_IDENTITY = {
    f"GIT_{who}_{what}": value
    for who in ("AUTHOR", "COMMITTER")
    for what, value in (("NAME", "deploy-assets"), ("EMAIL", "deploy-assets@localhost"))
}


@dataclass(frozen=True)
class StackInfo:
    """Where the running local stack answers."""

    registry: str  # "127.0.0.1:PORT", as used in image references
    s3_endpoint: str  # "http://127.0.0.1:PORT"
    git_root: Path  # holds <name>.git bare repositories
    state_dir: Path  # pid and log files


def free_port() -> int:
    """A TCP port that was free a moment ago (tests start servers on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except Exception:
        return False


def _reusable(pidfile: Path, port: int, ready, expect: str) -> int | None:
    """The pid of the service from an earlier start if it still answers, else None.

    A recorded live process that does not answer is hung and gets stopped. A port held by
    anyone else is an error: our server could not bind, yet the other would answer for it.
    """
    pid = read_pid(pidfile)
    if pid is not None and runs(pid, expect) and ready():
        return pid
    stop_process(pidfile, grace=5, expect=expect)
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise StackError(f"port {port} is taken by a process not recorded in {pidfile}")
    return None


def start_registry(port: int, data_dir: Path, state_dir: Path, timeout: float = 30) -> int:
    """Run a distribution registry on 127.0.0.1:port (stands in for ECR); return its pid.

    Plain http on loopback: dockerd trusts 127.0.0.0/8 registries without TLS.
    """
    url = f"http://127.0.0.1:{port}/v2/"
    pidfile = state_dir / "registry.pid"
    if (pid := _reusable(pidfile, port, lambda: _http_ok(url), "docker-registry")) is not None:
        return pid
    data_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "registry.yml"
    # JSON is YAML. Deletes enabled: retention / cleanup code deletes manifests through the API.
    config.write_text(
        json.dumps(
            {
                "version": "0.1",
                "http": {"addr": f"127.0.0.1:{port}"},
                "storage": {
                    "filesystem": {"rootdirectory": str(data_dir.resolve())},
                    "delete": {"enabled": True},
                },
            },
            indent=2,
        )
    )
    proc = spawn(["docker-registry", "serve", str(config)], pidfile)
    wait_until(lambda: _http_ok(url), proc, pidfile, timeout)
    return proc.pid


def start_s3(port: int, state_dir: Path, bucket: str, region: str, timeout: float = 30) -> int:
    """Run moto's S3 on 127.0.0.1:port with bucket present; return its pid.

    moto keeps state in memory: stopping it loses the bucket contents, as intended for tests.
    """
    endpoint = f"http://127.0.0.1:{port}"
    ready = lambda: _http_ok(f"{endpoint}/moto-api/")  # noqa: E731
    pidfile = state_dir / "s3.pid"
    pid = _reusable(pidfile, port, ready, "moto_server")
    if pid is None:
        exe = Path(sys.executable).parent / "moto_server"
        argv = [str(exe) if exe.exists() else "moto_server", "-H", "127.0.0.1", "-p", str(port)]
        proc = spawn(argv, pidfile)
        wait_until(ready, proc, pidfile, timeout)
        pid = proc.pid
    import boto3

    # moto accepts any credentials, but boto3 refuses to sign without some.
    creds = (
        {}
        if os.environ.get("AWS_ACCESS_KEY_ID")
        else {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    )
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region, **creds)
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        extra = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=bucket, **extra)
    return pid


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    done = subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise StackError(f"git {' '.join(args)} in {repo} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def init_bare_repos(git_root: Path, names: list[str] | tuple[str, ...]) -> None:
    """Create git_root/<name>.git bare repos with one commit on main, unless present.

    The commit is written with plumbing (no clone, no work tree), and a repo is only renamed
    into place once complete, so an interrupted run never leaves a half-made repo behind.
    """
    git_root.mkdir(parents=True, exist_ok=True)
    for name in names:
        final = git_root / f"{name}.git"
        if final.exists():
            continue
        tmp = git_root / f".{name}.git.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted run of this process id
        tmp.mkdir()
        _git(tmp, "init", "--quiet", "--bare", "--initial-branch=main")
        readme = f"# {name}\n\nLocal stand-in for the `{name}` repository, made by deploy_assets.local.stack.\n"
        blob = _git(tmp, "hash-object", "-w", "--stdin", stdin=readme)
        tree = _git(tmp, "mktree", stdin=f"100644 blob {blob}\tREADME.md\n")
        commit = _git(tmp, "commit-tree", tree, "-m", f"Initialise {name}")
        _git(tmp, "update-ref", "refs/heads/main", commit)
        try:
            os.rename(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not final.exists():  # not a concurrent run that won the race
                raise


def up(
    local_dir: Path,
    registry_port: int = 5000,
    s3_port: int = 9000,
    bucket: str = "app-artifacts",
    region: str = "eu-west-1",
) -> StackInfo:
    """Start (or reuse) everything a local release needs; idempotent."""
    state_dir, git_root = local_dir / "stack", local_dir / "git"
    ensure_docker_engine(state_dir)
    start_registry(registry_port, local_dir / "registry", state_dir)
    start_s3(s3_port, state_dir, bucket, region)
    init_bare_repos(git_root, REPO_NAMES)
    return StackInfo(
        f"127.0.0.1:{registry_port}", f"http://127.0.0.1:{s3_port}", git_root, state_dir
    )


def down(local_dir: Path) -> list[str]:
    """Stop what up() started; dockerd only if we started it (its pid file is ours)."""
    stops = [
        ("registry", "docker-registry", 10),
        ("s3", "moto_server", 10),
        ("dockerd", "dockerd", 30),
    ]
    return [
        name
        for name, expect, grace in stops
        if stop_process(local_dir / "stack" / f"{name}.pid", grace, expect)
    ]
