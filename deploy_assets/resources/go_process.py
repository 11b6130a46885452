"""Running go: every command under a timeout that kills go and all it started, and the batched
`go build` watched while it runs (its -json events for progress, its output folder for binaries).

go starts compilers and linkers; a go killed alone would leave them, and the pipes they hold,
behind. So a timeout or an interrupted step kills the whole group (resources/processes.py).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from deploy_assets.resources.go_build_events import BuildEvents, BuildProgress, without_json
from deploy_assets.resources.processes import kill_tree

BINARY_POLL_S = 0.3  # how often a running build's output folder is looked at


class GoError(RuntimeError):
    pass


class GoTimeout(GoError):
    """A go command ran past its timeout; it and every process it started were killed."""


class GoBuildError(GoError):
    """A build failed; `by_package` maps each failing package to its compiler output."""

    def __init__(self, message: str, by_package: dict[str, str]):
        super().__init__(message)
        self.by_package = by_package


def run(args: list[str], timeout: float, field: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a go command, killing it with everything it started on timeout."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as exc:  # the timeout, or the step interrupted
        kill_group(proc)
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a child that left the group still holds a pipe
            proc.kill()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise timeout_error(args, timeout, field) from None
        raise
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def build(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    out_dir: Path,
    on_binary: Callable[[Path], None] | None,
    progress: BuildProgress | None,
) -> None:
    """Run `go build -json -v ...` (args), reading its events as they come and reporting
    binaries landing in out_dir; see GoResource.build."""
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    events = BuildEvents(on_compile=progress.compiled if progress else None)
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: events.read(proc.stdout), daemon=True)
    errors = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    if progress is not None:
        progress.start(time.monotonic())
    reader.start()
    errors.start()
    try:
        reported = _watch(reader, out_dir, on_binary, time.monotonic() + timeout, progress)
        if reader.is_alive():
            raise timeout_error(args, timeout, "build_timeout_s")
        errors.join()
        proc.wait()
    finally:  # a timeout, or the step interrupted: no compiler is left running behind us
        if proc.poll() is None:
            kill_group(proc)
            for thread in (reader, errors):
                thread.join(5)  # the group's pipes close with it
            proc.wait(5)
    if proc.returncode != 0:
        if refusal := without_json(stderr[0] if stderr else "", args[0]):
            raise GoError(refusal)
        raise GoBuildError(*events.errors(stderr[0] if stderr else ""))
    if progress is not None:
        progress.finish(time.monotonic())
    if on_binary is not None:  # those that landed after the last look (all, on a warm cache)
        for path in sorted(out_dir.iterdir()):
            if path.name not in reported and "-go-tmp-" not in path.name:
                on_binary(path)


def _watch(
    reader: threading.Thread,
    out_dir: Path,
    on_binary: Callable[[Path], None] | None,
    deadline: float,
    progress: BuildProgress | None,
) -> set[str]:
    """Wait for the build (its output reader), reporting progress and binaries as they land,
    until it ends or the deadline passes (the caller then sees the reader still alive)."""
    sizes: dict[str, int] = {}
    reported: set[str] = set()
    while reader.is_alive() and time.monotonic() <= deadline:
        reader.join(BINARY_POLL_S)
        if progress is not None:
            progress.tick(time.monotonic())
        if on_binary is None or not reader.is_alive():
            continue
        for path in out_dir.iterdir():
            if path.name in reported or "-go-tmp-" in path.name:
                continue
            try:
                size = path.stat().st_size
            except OSError:  # go's own temporary files come and go
                continue
            if size and sizes.get(path.name) == size:
                reported.add(path.name)
                on_binary(path)
            sizes[path.name] = size
    return reported


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL go and everything it started (resources/processes.py: they stay in our group)."""
    kill_tree(proc.pid)


def shown(args: list[str]) -> str:
    text = " ".join(args)
    return text if len(text) <= 300 else text[:300] + " ..."


def timeout_error(args: list[str], timeout: float, field: str) -> GoTimeout:
    return GoTimeout(
        f"`{shown(args)}` did not finish within {timeout:g} s (GoResource.{field}); it and the "
        f"processes it started were killed. Raise {field} if go is only slow, or find what "
        "blocks it (a lock on GOCACHE, a hung file system)"
    )
