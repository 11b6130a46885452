"""Run a contender as a child process and read its wall time and memory from the kernel.

`wait4` gives the child's peak RSS including its largest descendant (go compile/link, git,
docker CLI); a sampler adds the peak of the whole process tree's RSS at once, which is what a
container memory limit would see.
"""

from __future__ import annotations

import os
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


def run_child(argv: list[str], env: dict[str, str], log: Path, cwd: Path, sample_s: float = 0.5) -> ChildRun:
    """Run argv to completion (output to log); never raises on a non-zero exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = [0]
    with open(log, "wb") as out:
        t0, services0 = time.monotonic(), services_cpu()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
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
    return ChildRun(argv=argv, returncode=proc.returncode, wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime,
                    maxrss_mb=usage.ru_maxrss / 1024, tree_peak_mb=peak[0] / 2**20,
                    services_cpu_s=services, log=log)


def checked(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> ChildRun:
    """run_child for a command that must succeed (the floor's go build)."""
    child = run_child(argv, env, log, cwd)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed; log {log}:\n{log.read_text()[-2000:]}")
    return child


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
