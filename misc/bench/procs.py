"""Run a contender as a child process and read its wall time and memory from the kernel.

`wait4` gives the child's peak RSS including its largest descendant (go compile/link, git,
docker CLI); a sampler adds the peak of the whole process tree's RSS at once, which is what a
container memory limit would see.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
# The servers every contender leans on: their CPU is not in a contender's own process tree.
SERVICES = ("dockerd", "containerd", "docker-registry", "moto_server")


@dataclass(frozen=True)
class ChildRun:
    argv: list[str]
    returncode: int
    wall_s: float
    cpu_s: float  # user + system seconds of the child and its descendants: less sensitive to load
    maxrss_mb: float  # the child or its largest descendant (wait4)
    tree_peak_mb: float  # sampled sum over the child's process tree
    services_cpu_s: float  # CPU the engine, registries and S3 servers spent meanwhile (all of them)
    log: Path


def _tree_rss(root: int) -> int:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    fields = fh.read().rpartition(b")")[2].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def services_cpu() -> float:
    """user + system seconds so far of the engine, registry and S3 server processes."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                head, _, rest = fh.read().rpartition(b")")
            name = head.partition(b"(")[2].decode(errors="replace")
            if name in SERVICES or (name.startswith("python") and _is_moto(entry.name)):
                fields = rest.split()
                total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / TICK


def _is_moto(pid: str) -> bool:
    try:
        return b"moto_server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def run_child(
    argv: list[str], env: dict[str, str], log: Path, cwd: Path, sample_s: float = 0.5
) -> ChildRun:
    """Run argv to completion (output to log); never raises on a non-zero exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = [0]
    with open(log, "wb") as out:
        t0, services0 = time.monotonic(), services_cpu()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(sample_s):
                peak[0] = max(peak[0], _tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall, services = time.monotonic() - t0, services_cpu() - services0
        stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(
        argv=argv,
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,
        tree_peak_mb=peak[0] / 2**20,
        services_cpu_s=services,
        log=log,
    )


def checked(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> ChildRun:
    """run_child for a command that must succeed (the floor's go build)."""
    child = run_child(argv, env, log, cwd)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed; log {log}:\n{log.read_text()[-2000:]}")
    return child


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- what the bench starts, and stopping it -------------------------------------------------------
def _stat(pid: int) -> list[str]:
    """Fields after the command name (state, ppid, pgrp, session, ...); [] when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].decode().split()
    except OSError:
        return []


def alive(pid: int, started: str | None = None) -> bool:
    """pid runs (a zombie is dead) and, if given, is the process that started at `started`
    (/proc start ticks): a reused pid is someone else's process, never ours to kill."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z" and (started is None or fields[19] == started)


@dataclass(frozen=True)
class Started:
    """A server the bench started: stopped by this pid (and its session) when the bench ends."""

    name: str
    pid: int
    started: str  # /proc/PID/stat start time, to tell our process from a later one with its pid

    @classmethod
    def of(cls, name: str, pid: int) -> Started:
        fields = _stat(pid)
        if not fields:
            raise RuntimeError(f"{name} (pid {pid}) exited right after it started")
        return cls(name, pid, fields[19])


def family(leader: int) -> set[int]:
    """Live processes in leader's session (its children keep it when they outlive it and are
    re-parented) or descending from it (one that called setsid): what stopping it must reach."""
    parents, session = {}, set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
            if fields[3] == str(leader):
                session.add(int(entry.name))
    tree, frontier = {leader} if leader in parents else set(), [leader]
    while frontier:
        parent = frontier.pop()
        kids = {pid for pid, ppid in parents.items() if ppid == parent} - tree
        tree |= kids
        frontier += kids
    return session | tree


def stop(proc: Started, grace: float = 10) -> list[int]:
    """SIGTERM the process and its family, SIGKILL what is left after grace; returns the pids
    that had to be killed hard. A pid that now names another process is left alone."""
    if not alive(proc.pid, proc.started):
        return []
    members = family(proc.pid)
    for pid in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(pid) for pid in members | family(proc.pid)):
        time.sleep(0.1)
    killed = sorted(pid for pid in members | family(proc.pid) if alive(pid))
    for pid in killed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in killed):
        time.sleep(0.05)
    return killed
