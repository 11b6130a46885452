"""ReleaseProgress on real runs of small jobs (ephemeral instance): a step's own n/N lines pass
through as it throttled them, skipped steps are one line, a failure names the exception."""

import re

import dagster as dg

from deploy_assets.cli.progress import ReleaseProgress, error_line, error_reason, skipped_line
from deploy_assets.resources.go_build_events import final_line, progress_line

LINE = re.compile(r"^\s+\d+\.\ds  (?P<text>.*)$")
RUN_ID = "1d3c6f0e-9a8b-4c7d-8e6f-5a4b3c2d1e0f"


def texts(job: dg.JobDefinition, **kwargs) -> list[str]:
    lines: list[str] = []
    progress = ReleaseProgress(lines.append, heartbeat_s=0)
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_event_listener(RUN_ID, progress)
        with progress:
            job.execute_in_process(instance=instance, run_id=RUN_ID, raise_on_error=False, **kwargs)
    return [LINE.match(line)["text"] for line in lines]


def test_a_long_steps_compile_lines_pass_through_unchanged():
    said = [
        progress_line(120, 480, "arm64", 34.0),
        progress_line(480, 480, "arm64", 70.2),
        final_line(300, 480, "arm64", 70.4),
    ]

    @dg.asset
    def binaries(context: dg.AssetExecutionContext) -> None:
        for line in said:
            context.log.info(line)
        context.log.info("an INFO line that is not progress")

    lines = texts(dg.Definitions(assets=[binaries]).resolve_implicit_global_asset_job_def())
    assert said[0] == "compile 120/480 packages arm64 (34.0 s)"
    assert [t for t in lines if t.startswith("  ")] == [f"  {line}" for line in said]


class Refused(RuntimeError):
    pass


def test_skipped_steps_are_one_line_after_the_failure():
    @dg.asset
    def source() -> None:
        raise Refused("promotion gate: v0.9.0 refused before any side effect: no rc")

    @dg.asset(deps=[source])
    def binaries() -> None: ...

    @dg.asset(deps=[binaries])
    def images() -> None: ...

    @dg.asset(deps=[binaries])
    def artifacts() -> None: ...

    job = dg.Definitions(assets=[source, binaries, images, artifacts])
    lines = texts(job.resolve_implicit_global_asset_job_def())
    assert lines[0] == "source started"
    assert re.fullmatch(
        r"source FAILED after \d+\.\ds: Refused: promotion gate: v0\.9\.0 "
        r"refused before any side effect: no rc",
        lines[1],
    ), lines
    assert lines[2].startswith("3 steps skipped, a step they need did not succeed: ")
    assert set(lines[2].split(": ", 1)[1].split(", ")) == {"binaries", "images", "artifacts"}
    assert lines[3:] == ["run FAILED"]


def test_skipped_line_of_one_step_keeps_its_form():
    assert skipped_line(["gitops_bump"]) == "gitops_bump skipped: a step it needs did not succeed"
    assert skipped_line(["a", "b"]) == "2 steps skipped, a step they need did not succeed: a, b"


def test_error_line_and_reason_drop_the_module_path_and_unwrap_dagsters_error():
    @dg.asset
    def source() -> None:
        raise Refused("tag v1 does not exist\nsecond line")

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([source], instance=instance, raise_on_error=False)
    error = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert "DagsterExecutionStepExecutionError" in error.cls_name  # what Dagster wraps it in
    assert error_line(error) == "Refused: tag v1 does not exist"
    assert error_reason(error) == "tag v1 does not exist\nsecond line"
    assert error_line(None) == "failed" and error_reason(None) == ""
