"""A release's progress as lines a person can follow in a terminal or a CI log.

The lines come from Dagster's own events (the ones the UI shows): run_release registers a
ReleaseProgress as the instance's event listener for its run, so each line is written when the
event is stored, with no polling. Per step: when it starts, the per-service n/N lines the assets
log (binaries, images, artifacts), and when it ends, how long it took, what it materialized (with
bytes, from the `size`/`size_<platform>` metadata) and how its checks went. A step that works
for a long time without an event (a batched `go build`) gets a "still running" line now and then,
so a silent terminal never means a hung release. A step's own progress lines (the n/N form,
e.g. "compile 120/480 packages arm64 (34 s)") pass through as the step throttled them. Steps
skipped one after another (a refused release skips all but `source`) are named in one line.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:  # the error Dagster records for a failed step (its `.cause` chain)
    from dagster_shared.error import SerializableErrorInfo

# The assets' per-service progress lines: "binaries 2/26 arm64 ms_core: ...", "images 1/3 ...".
SERVICE_PROGRESS = re.compile(r"^\w+ \d+/\d+ ")
# In-process runs report a step not run for a failed upstream as this log message, not an event.
NOT_EXECUTED = re.compile(r"^Dependencies for step (?P<step>\S+) (failed|were not executed)")
HEARTBEAT_S = 20.0
SKIPPED = "a step it needs did not succeed"


def unwrap(error: SerializableErrorInfo | None) -> SerializableErrorInfo | None:
    """The exception an asset raised, inside the errors Dagster wraps it in."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error


def error_line(error: SerializableErrorInfo | None) -> str:
    """ "Class: first line of the message", without the class's module path."""
    error = unwrap(error)
    message = error.message.strip() if error else ""
    if not message:
        return "failed"
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", message.splitlines()[0])


def error_reason(error: SerializableErrorInfo | None) -> str:
    """The message alone (no class), e.g. "promotion gate: v0.9.0 refused ...": the why."""
    error = unwrap(error)
    if error is None:
        return ""
    message = error.message.strip()
    if not error.cls_name:
        return message
    return re.sub(rf"^(?:\w+\.)*{re.escape(error.cls_name)}: ", "", message)


def skipped_line(steps: list[str]) -> str:
    if len(steps) == 1:
        return f"{steps[0]} skipped: {SKIPPED}"
    return f"{len(steps)} steps skipped, a step they need did not succeed: {', '.join(steps)}"


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


@dataclass
class _Step:
    started: float
    assets: int = 0
    size: int = 0
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)


class ReleaseProgress:
    """Event listener (`instance.add_event_listener(run_id, progress)`) writing progress lines."""

    def __init__(
        self,
        write: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        heartbeat_s: float = HEARTBEAT_S,
    ):
        self._write, self._clock, self._heartbeat_s = write, clock, heartbeat_s
        self._started = self._last_line = clock()
        self._steps: dict[str, _Step] = {}
        self._running: set[str] = set()
        self._skipped: list[str] = []  # written as one line before the next line
        self._lock = threading.RLock()  # events (run thread) and heartbeats (ticker) share it
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> ReleaseProgress:
        if self._heartbeat_s > 0:
            self._ticker = threading.Thread(target=self._tick, name="release-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        with self._lock:
            self._flush_skipped()

    def _line(self, text: str) -> None:
        with self._lock:
            self._flush_skipped()
            self._write_line(text)

    def _write_line(self, text: str) -> None:
        now = self._clock()
        self._last_line = now
        self._write(f"{now - self._started:7.1f}s  {text}")

    def _flush_skipped(self) -> None:
        if self._skipped:
            steps, self._skipped = self._skipped, []
            self._write_line(skipped_line(steps))

    def _tick(self) -> None:
        while not self._stopped.wait(1.0):
            self.heartbeat()

    def heartbeat(self) -> None:
        """Write a "still running" line if steps run and nothing was written for a while."""
        with self._lock:
            now = self._clock()
            quiet = now - self._last_line >= self._heartbeat_s
            running = {k: now - self._steps[k].started for k in sorted(self._running)}
        if quiet and running:
            self._line("still running: " + ", ".join(f"{k} ({s:.0f}s)" for k, s in running.items()))

    def __call__(self, entry: dg.EventLogEntry) -> None:
        with self._lock:
            self._handle(entry)

    def _handle(self, entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:  # a message an asset (or the executor) logged
            if skipped := NOT_EXECUTED.match(entry.user_message):
                self._skipped.append(skipped["step"])
            elif SERVICE_PROGRESS.match(entry.user_message) or entry.level >= logging.WARNING:
                level = (
                    ""
                    if entry.level < logging.WARNING
                    else f"{logging.getLevelName(entry.level)}: "
                )
                self._line(f"  {level}{entry.user_message}")
            return
        key = entry.step_key or ""
        if event.is_step_start:
            self._steps[key] = _Step(started=self._clock())
            self._running.add(key)
            self._line(f"{key} started")
        elif event.is_step_materialization:
            step = self._steps.setdefault(key, _Step(started=self._clock()))
            step.assets += 1
            step.size += sum(
                int(v.value)
                for k, v in event.materialization.metadata.items()
                if (k == "size" or k.startswith("size_")) and isinstance(v.value, int)
            )
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            step = self._steps.setdefault(key, _Step(started=self._clock()))
            check = event.asset_check_evaluation_data
            if check.passed:
                step.checks_passed += 1
            else:
                step.checks_failed.append(f"{check.asset_key.to_user_string()}:{check.check_name}")
        elif event.is_step_success:
            self._line(f"{key} done in {self._took(key)}{self._summary(key)}")
        elif event.is_step_failure:
            error = event.step_failure_data.error if event.step_failure_data else None
            self._line(f"{key} FAILED after {self._took(key)}: {error_line(error)}")
        elif event.is_step_skipped:
            self._skipped.append(key)
        elif event.is_job_success:
            self._line("run succeeded")
        elif event.is_job_failure:
            self._line("run FAILED")

    def _took(self, key: str) -> str:
        self._running.discard(key)
        step = self._steps.get(key)
        return f"{self._clock() - step.started:.1f}s" if step else "?"

    def _summary(self, key: str) -> str:
        step = self._steps.get(key)
        if step is None:
            return ""
        parts = []
        if step.assets:
            parts.append(
                f"{step.assets} asset{'s' if step.assets != 1 else ''}"
                + (f", {human_bytes(step.size)}" if step.size else "")
            )
        if step.checks_passed or step.checks_failed:
            parts.append(
                f"checks {step.checks_passed} passed"
                + (
                    f", {len(step.checks_failed)} failed: {' '.join(step.checks_failed)}"
                    if step.checks_failed
                    else ""
                )
            )
        return f" ({'; '.join(parts)})" if parts else ""
