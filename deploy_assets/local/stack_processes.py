"""The local stack's processes: spawned detached with a pid file, waited for, stopped.

A pid file under ``<local_dir>/stack`` names each service, so a later process (another CLI
call, a test teardown) finds and stops exactly what was started; one naming a dead process, or
a process whose command line does not match (the pid was reused), counts as stale.
"""

import os
import signal
import subprocess
import time
from pathlib import Path


class StackError(RuntimeError):
    """A local service could not be started; the message says which and why."""


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def proc_file(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return ""


def proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, ..."""
    return proc_file(pid, "stat").rpartition(")")[2].split()


def runs(pid: int, expect: str | None = None) -> bool:
    """Whether pid is alive and (if given) its command line contains expect. Zombies count as
    dead; they are not reaped here, as that would steal the exit status from a Popen's holder."""
    alive = bool(fields := proc_stat(pid)) and fields[0] != "Z"
    return alive and (expect is None or expect in proc_file(pid, "cmdline").replace("\0", " "))


def tail(path: Path, lines: int = 20) -> str:
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
    )


def spawn(argv: list[str], pidfile: Path) -> subprocess.Popen:
    # Own session: the service outlives the CLI that started it, a Ctrl-C meant for the
    # foreground does not reach it, and stop_process can signal its whole process group.
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(pidfile.with_suffix(".log"), "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc


def wait_until(ready, proc: subprocess.Popen | None, pidfile: Path, timeout: float) -> None:
    """Wait for ready(); if it never comes, stop what we spawned (it could hold the port)."""
    what, log, deadline = pidfile.stem, pidfile.with_suffix(".log"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            pidfile.unlink(missing_ok=True)
            raise StackError(f"{what} exited with code {proc.returncode}; log {log}:\n{tail(log)}")
        time.sleep(0.2)
    if proc is not None:
        stop_process(pidfile, grace=5)
    raise StackError(f"{what} did not answer within {timeout:.0f}s; log {log}:\n{tail(log)}")


def stop_process(pidfile: Path, grace: float = 10, expect: str | None = None) -> bool:
    """SIGTERM the process (group) named by pidfile, SIGKILL it after grace; remove pidfile.

    Returns whether a live process was stopped. A pid file naming a dead process, or (with
    ``expect``) one whose command line lacks that word (the pid was reused), is just removed.
    """
    pid = read_pid(pidfile)
    if live := (pid is not None and pid not in (1, os.getpid()) and runs(pid, expect)):
        # Signal the group only when the process leads its own (as spawn arranges), never ours.
        group = proc_stat(pid)[2:3] == [str(pid)] and pid != os.getpgrp()
        for sig, wait in (
            (signal.SIGTERM, grace),
            (signal.SIGKILL, 5),
        ):  # KILL: ignorers, leftovers
            try:
                os.killpg(pid, sig) if group else os.kill(pid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + wait
            while runs(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    pidfile.unlink(missing_ok=True)
    return live
