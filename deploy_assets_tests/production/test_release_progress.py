"""`deploy-assets release` shows progress a person can follow: a line when each step starts,
the per-service n/N lines, and when it ends how long it took and what it produced (bytes
included); a failing step says why, and what it blocked says so too (in one line). Dagster's
own records go to the log file the last line names.
"""

import re
import subprocess
import sys
from pathlib import Path

import dagster as dg

from deploy_assets.cli.outcome import EXIT_PREFLIGHT
from deploy_assets.cli.progress import ReleaseProgress, human_bytes
from deploy_assets.local import stack as local_stack
from deploy_assets.records.history import latest_for_partition
from deploy_assets_tests.instances import load_instance
from deploy_assets_tests.production import deployment

TAG = "v0.1.0-alpha.1"
MS = ["ms_chat", "ms_core", "ms_payments"]
LINE = re.compile(r"^\s+\d+\.\ds  (?P<text>.*)$")
CLI = str(Path(sys.executable).parent / "deploy-assets")


def _release(harness, tmp_path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    home = tmp_path / "cli_home"
    harness.monorepo.tag(TAG)
    done = subprocess.run(
        [CLI, "release", TAG],
        capture_output=True,
        text=True,
        timeout=600,
        env=deployment.deployment_env(harness.settings, home, **env),
    )
    print(done.stdout, done.stderr, sep="\n")  # shown by pytest when the test fails
    progress = [m["text"] for line in done.stdout.splitlines() if (m := LINE.match(line))]
    return done, progress


def test_cli_release_prints_steps_with_times_counts_and_bytes(harness, tmp_path):
    done, lines = _release(harness, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # Each stage starts, then ends with its duration; the order is the release's order.
    for step in ("source", "binaries", "images", "artifacts", "gitops_bump"):
        started, finished = (
            lines.index(f"{step} started"),
            _index(lines, rf"{step} done in \d+\.\ds"),
        )
        assert started < finished, lines
    assert (
        _index(lines, r"binaries done")
        < _index(lines, r"images done")
        < _index(lines, r"gitops_bump done")
    )
    assert lines[-1] == "run succeeded"

    # Per-service n/N lines, with bytes, for the build, the pushes and the uploads.
    for stage in ("binaries", "images", "artifacts"):
        assert [
            n for n in range(1, 4) if any(line.startswith(f"  {stage} {n}/3 ") for line in lines)
        ] == [1, 2, 3], lines
    with load_instance(str(tmp_path / "cli_home")) as instance:
        sizes = {
            name: latest_for_partition(
                instance, dg.AssetKey(["binary", name]), f"dev|{TAG}"
            ).metadata["size_arm64"]
            for name in MS
        }
    for name in MS:
        assert any(
            re.match(rf"  binaries \d/3 arm64 {name}: {sizes[name]} bytes", line) for line in lines
        ), lines
        # The built bytes went to the bucket's build cache first: the release object is a copy of them.
        assert any(
            re.match(
                rf"  artifacts \d/3 {name} arm64: (uploaded {sizes[name]} bytes|copied from the build "
                rf"cache binaries/build-cache/[0-9a-f]{{64}}/{name})$",
                line,
            )
            for line in lines
        ), lines
    # The binaries step's summary adds up what it materialized.
    assert any(
        line.startswith("binaries done in ")
        and line.endswith(f"(3 assets, {human_bytes(sum(sizes.values()))})")
        for line in lines
    ), lines
    # Dagster's own event log is not mixed in (the summary table and run line follow): it is in
    # the file named last.
    assert "STEP_START" not in done.stdout + done.stderr
    assert re.fullmatch(r"run [0-9a-f-]{36}: succeeded", done.stdout.splitlines()[-1]), done.stdout
    log = re.fullmatch(r"full log: (\S+)", done.stdout.splitlines()[-2])
    assert log and 'Started execution of step "binaries"' in Path(log[1]).read_text()


def test_cli_release_names_the_failed_step_and_what_it_blocked(harness, tmp_path):
    dead_registry = f"127.0.0.1:{local_stack.free_port()}"  # nothing listens there
    done, lines = _release(harness, tmp_path, DEPLOY_ASSETS_REGISTRY=dead_registry)
    assert done.returncode == EXIT_PREFLIGHT, done.stdout + done.stderr
    failed = [line for line in lines if " FAILED after " in line]
    # The pre-flight check in `source` refuses before anything is built or pushed.
    assert (
        len(failed) == 1
        and failed[0].startswith("source FAILED after ")
        and dead_registry in failed[0]
    ), lines
    assert (
        "DestinationUnreachable: images of ms_chat, ms_core, ms_payments cannot be pushed"
        in failed[0]
    )
    # What it blocked: one line naming every step skipped.
    skipped = [
        m
        for line in lines
        if (m := re.fullmatch(r"(\d+) steps skipped, a step they need did not succeed: (.*)", line))
    ]
    assert len(skipped) == 1, lines
    names = skipped[0][2].split(", ")
    assert int(skipped[0][1]) == len(names)
    assert {"binaries", "images", "artifacts", "gitops_bump"} <= set(names), names
    assert not any(line.startswith(f"{name} started") for name in names for line in lines), lines
    assert lines[-1] == "run FAILED"
    # The refusal: why, what to do; no table of nothing.
    assert (
        "deploy-assets: refused: images of ms_chat, ms_core, ms_payments cannot be pushed"
        in done.stdout
    ), done.stdout
    assert "deploy-assets: do: start or fix what it names" in done.stdout
    assert "service  kind" not in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_a_long_quiet_step_gets_still_running_lines():
    """A step with no event for HEARTBEAT_S seconds is named with its running time."""
    now = [100.0]
    lines: list[str] = []
    progress = ReleaseProgress(lines.append, clock=lambda: now[0], heartbeat_s=20)

    @dg.asset
    def go_build(context: dg.AssetExecutionContext) -> None:
        now[0] += 19
        progress.heartbeat()  # not quiet for long enough yet
        now[0] += 26
        progress.heartbeat()
        context.log.info("binaries 1/1 arm64 ms_core: 1234 bytes built")

    run_id = "5f0e7a8c-0d2b-4c83-9a3e-2b1f7f5e6d10"
    job = dg.Definitions(assets=[go_build]).resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        instance.add_event_listener(run_id, progress)
        assert job.execute_in_process(instance=instance, run_id=run_id).success
    texts = [LINE.match(line)["text"] for line in lines]
    assert texts[texts.index("go_build started") + 1] == "still running: go_build (45s)"
    assert "  binaries 1/1 arm64 ms_core: 1234 bytes built" in texts
    assert (
        any(t.startswith("go_build done in 45.0s") for t in texts) and texts[-1] == "run succeeded"
    )


def _index(lines: list[str], pattern: str) -> int:
    for i, line in enumerate(lines):
        if re.match(pattern, line):
            return i
    raise AssertionError(f"no line matches {pattern!r}:\n" + "\n".join(lines))
