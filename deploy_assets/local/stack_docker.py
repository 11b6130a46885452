"""The local Docker engine: reuse the one that answers, else start dockerd (as root).

The docker SDK is imported inside the function that pings: the CLI imports this module and
must stay quick to load.
"""

import contextlib
import os
from pathlib import Path

from deploy_assets.local.stack_processes import (
    StackError,
    proc_file,
    read_pid,
    runs,
    spawn,
    wait_until,
)

DOCKER_PIDFILE = Path("/var/run/docker.pid")
CONTAINERD_PIDFILE = Path("/var/run/docker/containerd/containerd.pid")  # the one dockerd runs


def _docker_answers() -> bool:
    try:
        import docker

        with contextlib.closing(docker.from_env(timeout=5)) as client:
            return bool(client.ping())
    except Exception:  # no socket, refused, daemon still starting
        return False


def is_program(pid: int, program: str) -> bool:
    return proc_file(pid, "comm").strip() == program and runs(pid)


def remove_stale_pidfile(pidfile: Path = DOCKER_PIDFILE, program: str = "dockerd") -> bool:
    """Remove a daemon's pid file unless it names a running `program`; True if removed.

    A hard-killed dockerd leaves its file (and its containerd's) behind, and the next dockerd
    refuses to start, or waits for that containerd, while the recorded pid exists: after pid
    reuse that is any process, and in a container without a reaping init it is a zombie.
    """
    pid = read_pid(pidfile)
    if not pidfile.exists() or (pid is not None and is_program(pid, program)):
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
    if not any(is_program(pid, "dockerd") for pid in pids):  # else wait: a second one would fail
        remove_stale_pidfile(docker_pidfile, "dockerd")
        remove_stale_pidfile(containerd_pidfile, "containerd")
        # vfs works on any filesystem (overlay on overlay does not); no iptables or bridge because
        # sandboxes often lack the kernel modules, and builds here need no container network.
        proc = spawn(
            ["dockerd", "--storage-driver", "vfs", "--iptables=false", "--bridge=none"], pidfile
        )
    wait_until(_docker_answers, proc, pidfile, timeout)
