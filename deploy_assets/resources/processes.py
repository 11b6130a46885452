"""Stopping a tool we started (go, git) together with everything it started.

The tools stay in our own process group on purpose: whatever stops the release as a whole (a
container or pod ending, `kill -- -PGID`, Ctrl-C in a terminal) reaches the compilers and git's
helpers too. A tool in a session of its own would outlive a SIGKILL of the release and keep
compiling into a work folder nobody owns. So a timeout kills the tool's own tree instead,
found through /proc (each process's parent), children before their parents.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process we can see."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every process below pid, deepest first."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, frontier = [], [pid]
    while frontier:
        below = [c for p in frontier for c in children.get(p, [])]
        found = below + found
        frontier = below
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL pid and everything below it (stopped first, so none can start a new one)."""
    tree = descendants(pid) + [pid]
    for target in tree:
        try:
            os.kill(target, signal.SIGSTOP)
        except (ProcessLookupError, PermissionError):
            pass
    for target in descendants(pid) + tree:  # again: a child forked before the stop
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
