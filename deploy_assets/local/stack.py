"""Start and stop the local stack that stands in for the production systems.

Locally, a Docker engine, a distribution registry (for ECR), a moto server (for S3) and bare
git repositories (for the gitops / terraform repos on GitHub) replace what a release touches.
Every service runs detached in its own session with a pid file under ``<local_dir>/stack``,
so a later process (another CLI call, a test teardown) can find and stop exactly what was
started, and a crash leaves behind files that the next run recognises as stale.

Heavy imports (docker, boto3) happen inside the functions that need them: the CLI and the
Dagster definitions import this module, and must stay quick to load.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DOCKER_PIDFILE = Path("/var/run/docker.pid")
CONTAINERD_PIDFILE = Path("/var/run/docker/containerd/containerd.pid")  # the one dockerd runs
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


class StackError(RuntimeError):
    """A local service could not be started; the message says which and why."""


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


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return ""


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, ..."""
    return _proc(pid, "stat").rpartition(")")[2].split()


def _runs(pid: int, expect: str | None = None) -> bool:
    """Whether pid is alive and (if given) its command line contains expect. Zombies count as
    dead; they are not reaped here, as that would steal the exit status from a Popen's holder."""
    alive = bool(fields := _stat(pid)) and fields[0] != "Z"
    return alive and (expect is None or expect in _proc(pid, "cmdline").replace("\0", " "))


def _tail(path: Path, lines: int = 20) -> str:
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
    )


def _spawn(argv: list[str], pidfile: Path) -> subprocess.Popen:
    # Own session: the service outlives the CLI that started it, a Ctrl-C meant for the
    # foreground does not reach it, and stop_process can signal its whole process group.
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(pidfile.with_suffix(".log"), "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc


def _wait_until(ready, proc: subprocess.Popen | None, pidfile: Path, timeout: float) -> None:
    """Wait for ready(); if it never comes, stop what we spawned (it could hold the port)."""
    what, log, deadline = pidfile.stem, pidfile.with_suffix(".log"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            pidfile.unlink(missing_ok=True)
            raise StackError(f"{what} exited with code {proc.returncode}; log {log}:\n{_tail(log)}")
        time.sleep(0.2)
    if proc is not None:
        stop_process(pidfile, grace=5)
    raise StackError(f"{what} did not answer within {timeout:.0f}s; log {log}:\n{_tail(log)}")


def stop_process(pidfile: Path, grace: float = 10, expect: str | None = None) -> bool:
    """SIGTERM the process (group) named by pidfile, SIGKILL it after grace; remove pidfile.

    Returns whether a live process was stopped. A pid file naming a dead process, or (with
    ``expect``) one whose command line lacks that word (the pid was reused), is just removed.
    """
    pid = _read_pid(pidfile)
    if live := (pid is not None and pid not in (1, os.getpid()) and _runs(pid, expect)):
        # Signal the group only when the process leads its own (as _spawn arranges), never ours.
        group = _stat(pid)[2:3] == [str(pid)] and pid != os.getpgrp()
        for sig, wait in (
            (signal.SIGTERM, grace),
            (signal.SIGKILL, 5),
        ):  # KILL: ignorers, leftovers
            try:
                os.killpg(pid, sig) if group else os.kill(pid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + wait
            while _runs(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    pidfile.unlink(missing_ok=True)
    return live


def _docker_answers() -> bool:
    try:
        import docker

        with contextlib.closing(docker.from_env(timeout=5)) as client:
            return bool(client.ping())
    except Exception:  # no socket, refused, daemon still starting
        return False


def _is_program(pid: int, program: str) -> bool:
    return _proc(pid, "comm").strip() == program and _runs(pid)


def remove_stale_pidfile(pidfile: Path = DOCKER_PIDFILE, program: str = "dockerd") -> bool:
    """Remove a daemon's pid file unless it names a running `program`; True if removed.

    A hard-killed dockerd leaves its file (and its containerd's) behind, and the next dockerd
    refuses to start, or waits for that containerd, while the recorded pid exists: after pid
    reuse that is any process, and in a container without a reaping init it is a zombie.
    """
    pid = _read_pid(pidfile)
    if not pidfile.exists() or (pid is not None and _is_program(pid, program)):
        return False
    pidfile.unlink(missing_ok=True)
    return True


def ensure_docker_engine(
    state_dir: Path,
    timeout: float = 90,
    docker_pidfile: Path = DOCKER_PIDFILE,
    containerd_pidfile: Path = CONTAINERD_PIDFILE,
) -> None:
    """Make sure a Docker engine answers, starting dockerd (as root) if none does."""
    if _docker_answers():
        return
    if os.geteuid() != 0:
        raise StackError(
            "no Docker engine answers and we are not root to start one: start it, or set DOCKER_HOST"
        )
    proc, pidfile = None, state_dir / "dockerd.pid"
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    if not any(_is_program(pid, "dockerd") for pid in pids):  # else wait: a second one would fail
        remove_stale_pidfile(docker_pidfile, "dockerd")
        remove_stale_pidfile(containerd_pidfile, "containerd")
        # vfs works on any filesystem (overlay on overlay does not); no iptables or bridge because
        # sandboxes often lack the kernel modules, and builds here need no container network.
        proc = _spawn(
            ["dockerd", "--storage-driver", "vfs", "--iptables=false", "--bridge=none"], pidfile
        )
    _wait_until(_docker_answers, proc, pidfile, timeout)


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
    pid = _read_pid(pidfile)
    if pid is not None and _runs(pid, expect) and ready():
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
    proc = _spawn(["docker-registry", "serve", str(config)], pidfile)
    _wait_until(lambda: _http_ok(url), proc, pidfile, timeout)
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
        proc = _spawn(argv, pidfile)
        _wait_until(ready, proc, pidfile, timeout)
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
