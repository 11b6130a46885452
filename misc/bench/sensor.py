"""The tag sensor against a remote holding 10,000 tags: a few hundred releases, the rest history
and near-miss rejects, as a long-lived monorepo accumulates them.

The tags are written in one `git fast-import` (commits, annotated release tags, lightweight
history) and packed, so creating them takes seconds. The measured tick is the real sensor
(`runner.sensor_tick`, which evaluates it through `dg.build_sensor_context`) after its baseline
tick, with a few new tags pushed in between.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.resources.git import run_git

TOTAL_TAGS = 10_000
VALID_TAGS = 300
HISTORY_COMMITS = 200
NEW_VALID = ("v9.0.0-alpha.1", "v9.0.0-rc.1", "v9.0.1-beta.1")
NEW_OTHER = ("v9.0.0-alpha", "nightly-99999")  # a near miss (rejected) and a history tag


def tag_names() -> tuple[list[str], list[str]]:
    """(valid release tags, the rest) — deterministic, TOTAL_TAGS in all."""
    suffixes = ("-alpha.1", "-beta.2", "-rc.1", "")  # majors from 3 on: the bench releases v1
    valid = [
        f"v{3 + i // 100}.{(i // 10) % 10}.{i % 10}{suffixes[i % 4]}" for i in range(VALID_TAGS)
    ]
    # History (old conventions) and near misses; each shape carries n, so every name is unique.
    shapes = (
        "release-2019.{n}",
        "build-{n}",
        "jenkins/{n}",
        "v{a}.{n}",
        "v{a}.{b}.{n}-alpha",
        "V{a}.{b}.{n}",
        "v0{a}.{b}.{n}",
        "v{a}.{b}.{n}-RC.1",
        "v{a}.{b}.0.{n}",
        "deploy/{a}-{n}",
    )
    rest = [
        shapes[n % len(shapes)].format(n=n, a=n % 7, b=(n // 7) % 13)
        for n in range(TOTAL_TAGS - VALID_TAGS)
    ]
    return valid, rest


def _fast_import_stream(base: str, valid: list[str], rest: list[str]) -> bytes:
    lines, when = [], 1_700_000_000
    for i in range(1, HISTORY_COMMITS + 1):
        msg = f"history {i}"
        lines += [
            "commit refs/heads/history",
            f"mark :{i}",
            f"committer bench <bench@localhost> {when + i} +0000",
            f"data {len(msg)}",
            msg,
        ]
        if i == 1:
            lines.append(f"from {base}")
        lines.append("")
    for n, tag in enumerate(valid):
        msg = f"release {tag}"
        lines += [
            f"tag {tag}",
            f"from :{n % HISTORY_COMMITS + 1}",
            f"tagger bench <bench@localhost> {when + n} +0000",
            f"data {len(msg)}",
            msg,
        ]
    for n, tag in enumerate(rest):
        lines += [f"reset refs/tags/{tag}", f"from :{n % HISTORY_COMMITS + 1}", ""]
    return ("\n".join(lines) + "\n").encode()


def make_remote(source_bare: Path, remote: Path) -> int:
    """A bare copy of the monorepo's remote with TOTAL_TAGS tags; returns the tag count."""
    run_git(["clone", "--quiet", "--bare", "--", str(source_bare), str(remote)])
    base = run_git(["rev-parse", "HEAD"], cwd=remote).decode().strip()
    valid, rest = tag_names()
    existing = run_git(["tag", "--list"], cwd=remote).decode().split()
    run_git(
        ["fast-import", "--quiet"], cwd=remote, input_bytes=_fast_import_stream(base, valid, rest)
    )
    run_git(["pack-refs", "--all", "--prune"], cwd=remote)
    count = len(run_git(["tag", "--list"], cwd=remote).decode().split())
    if count != TOTAL_TAGS + len(existing):
        raise RuntimeError(f"{remote}: expected {TOTAL_TAGS + len(existing)} tags, found {count}")
    return count


def push_new_tags(remote: Path) -> None:
    """A few tags arrive between two ticks, in one ref transaction."""
    head = run_git(["rev-parse", "refs/heads/history"], cwd=remote).decode().strip()
    stdin = "".join(f"create refs/tags/{t} {head}\n" for t in (*NEW_VALID, *NEW_OTHER))
    run_git(["update-ref", "--stdin"], cwd=remote, input_bytes=stdin.encode())


@dataclass(frozen=True)
class SensorResult:
    tags: int
    baseline_s: float
    tick_s: float
    launched: list[str]


def measure(defs, instance, remote: Path, cursor_file: Path) -> SensorResult:
    """Baseline tick, then the timed tick that must launch exactly the new release tags."""
    from deploy_assets.cli.runner import sensor_tick

    tags = len(run_git(["tag", "--list"], cwd=remote).decode().split())
    t0 = time.monotonic()
    baseline = sensor_tick(defs, instance, cursor_file)
    baseline_s = time.monotonic() - t0
    if baseline:
        raise RuntimeError(f"the baseline tick launched {len(baseline)} runs; it must launch none")
    push_new_tags(remote)
    t0 = time.monotonic()
    requests = sensor_tick(defs, instance, cursor_file)
    tick_s = time.monotonic() - t0
    launched = sorted(r.tags["deploy_assets/tag"] for r in requests)
    if launched != sorted(NEW_VALID):
        raise RuntimeError(f"the tick launched {launched}, expected {sorted(NEW_VALID)}")
    return SensorResult(
        tags=tags + len(NEW_VALID) + len(NEW_OTHER),
        baseline_s=baseline_s,
        tick_s=tick_s,
        launched=launched,
    )


def git_version() -> str:
    return subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()


def case(bench) -> None:
    """The bench's sensor case: one tick over TOTAL_TAGS tags, on the code location as the daemon
    loads it (module-level definitions, from the environment)."""
    import os

    import dagster as dg

    from misc.bench import report
    from misc.bench.procs import load_average
    from misc.bench.release_child import code_location

    remote = bench.root / "git" / "sensor-remote.git"
    t0 = time.monotonic()
    make_remote(bench.remote, remote)
    made_s = time.monotonic() - t0
    os.environ.update(bench.ours_env(remote))
    defs = code_location()
    with dg.instance_for_test() as instance:
        found = measure(defs, instance, remote, bench.root / "sensor" / "cursor")
    bench.results["sensor"] = {
        "tags": found.tags,
        "create_s": made_s,
        "baseline_s": found.baseline_s,
        "tick_s": found.tick_s,
        "launched": found.launched,
        "load": load_average(),
    }
    report.progress(f"sensor tick over {found.tags} tags", found.tick_s)
