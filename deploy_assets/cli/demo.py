"""`make demo`: the local stack, the example monorepo, and tags released through the sensor.

It does what a release engineer would do by hand: push a tag to the monorepo and let the tag
sensor pick it up. Then alpha → rc → final on one commit shows dev, staging and the promotion
to prod that reuses staging's bytes. Running it again reuses everything and still succeeds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

from deploy_assets.cli.logs import DagsterLog
from deploy_assets.cli.report import format_release
from deploy_assets.config import LOCAL_DIR, REPO_ROOT, Settings, load_pipeline_config
from deploy_assets.local import stack as local_stack
from deploy_assets.names import VERSION_TAG, partition_key
from deploy_assets.records.release_rows import release_rows, service_names
from deploy_assets.resources.credentials import redact_url
from deploy_assets.resources.git import run_git

EXAMPLE_MONOREPO = REPO_ROOT / "misc" / "example-monorepo"
DEMO_TAGS = ("v0.1.0-alpha.1", "v0.1.0-rc.1", "v0.1.0")


def stack_up(local_dir: Path = LOCAL_DIR) -> local_stack.StackInfo:
    return local_stack.up(
        local_dir,
        registry_port=int(os.environ.get("DEPLOY_ASSETS_REGISTRY_PORT", "5000")),
        s3_port=int(os.environ.get("DEPLOY_ASSETS_S3_PORT", "9000")),
        bucket=os.environ.get("APP_ARCHIVER_BUCKET", "app-artifacts"),
        region=os.environ.get("APP_ARCHIVER_AWS_REGION", "eu-west-1"),
    )


def create_monorepo(bare: Path, clone: Path, template: Path = EXAMPLE_MONOREPO) -> None:
    """A bare 'remote' with the example monorepo's history, and a working clone of it."""
    if (bare / "HEAD").exists() and (clone / ".git").exists():
        return
    shutil.rmtree(bare, ignore_errors=True)
    shutil.rmtree(clone, ignore_errors=True)
    bare.parent.mkdir(parents=True, exist_ok=True)
    run_git(["init", "--quiet", "--bare", "--initial-branch=main", str(bare)])
    shutil.copytree(template, clone)
    run_git(["init", "--quiet", "--initial-branch=main"], cwd=clone)
    run_git(["add", "-A"], cwd=clone)
    run_git(["commit", "--quiet", "-m", "Import the example monorepo"], cwd=clone)
    run_git(["remote", "add", "origin", str(bare)], cwd=clone)
    run_git(["push", "--quiet", "origin", "main"], cwd=clone)


def prepare_dev(local_dir: Path = LOCAL_DIR) -> None:
    """What `make dev` needs before `dagster dev` loads the code location: the example monorepo
    when the source is the local stand-in (a machine that never ran the demo has none, and the
    first load has no service list to read) and the instance's dagster.yaml. A configured remote
    of the user's is never touched."""
    from deploy_assets.cli.runner import get_instance

    settings = Settings.from_env()
    bare = Path(settings.source_repo)
    if bare.resolve().is_relative_to(local_dir.resolve()):
        create_monorepo(bare, local_dir / "monorepo")
    get_instance()


def push_tag(clone: Path, tag: str) -> bool:
    """Tag HEAD and push, unless the tag exists already (a second demo run)."""
    if run_git(["tag", "--list", tag], cwd=clone).strip():
        return False
    run_git(["tag", "-a", tag, "-m", f"release {tag}"], cwd=clone)
    run_git(["push", "--quiet", "origin", tag], cwd=clone)
    return True


def _print(line: str) -> None:
    print(line, flush=True)


def _dagster_console(log: DagsterLog | None) -> contextlib.AbstractContextManager:
    """The sensor's records (Dagster's default console logger, on stderr) into the log file."""
    return log.stderr_to_file() if log else contextlib.nullcontext()


def _release_through_sensor(
    defs, instance, clone: Path, cursor_file: Path, tag: str, log: DagsterLog | None
):
    """Push the tag, let the sensor see it, run the release it requests (progress lines on)."""
    from deploy_assets.cli.runner import run_release, sensor_tick

    pushed = push_tag(clone, tag)
    with _dagster_console(log):
        requests = sensor_tick(defs, instance, cursor_file)
    launched = [r for r in requests if r.tags.get(VERSION_TAG) == tag]
    how = (
        f"sensor requested {launched[0].job_name} (run key {launched[0].run_key})"
        if launched
        else "tag already seen by the sensor: re-running the release (reuses what exists)"
    )
    print(f"\n== {tag} {'pushed' if pushed else 'exists'}; {how}")
    t0 = time.monotonic()
    run_key = {"dagster/run_key": launched[0].run_key} if launched else None
    outcome = run_release(
        defs,
        instance,
        tag,
        extra_tags=run_key,
        progress=_print,
        log_level=log.level if log else None,
    )
    print(
        f"   run {outcome.run_id} {'succeeded' if outcome.success else 'FAILED'} "
        f"in {time.monotonic() - t0:.1f}s" + (f": {outcome.error}" if outcome.error else "")
    )
    return outcome


def main(tags: tuple[str, ...] = DEMO_TAGS, log: DagsterLog | None = None) -> int:
    """Each release shows its progress lines and outcome table; Dagster's records go to `log`
    (the CLI's log file, named at the end), or with no log to the terminal as before."""
    started = time.monotonic()
    info = stack_up()
    print(f"stack: registry {info.registry}, S3 {info.s3_endpoint}, git {info.git_root}")
    settings = Settings.from_env()
    clone = LOCAL_DIR / "monorepo"
    create_monorepo(Path(settings.source_repo), clone)
    print(f"monorepo: {redact_url(settings.source_repo)} (working clone: {clone})")

    from deploy_assets.cli.runner import get_instance, sensor_tick
    from deploy_assets.definitions import build_definitions

    instance = get_instance()
    defs = log.wire(build_definitions(settings)) if log else build_definitions(settings)
    cursor_file = LOCAL_DIR / "demo" / "sensor_cursor"
    if not cursor_file.exists():
        with _dagster_console(log):
            sensor_tick(defs, instance, cursor_file)  # baseline: existing tags are history
    failed = []
    for tag in tags:
        outcome = _release_through_sensor(defs, instance, clone, cursor_file, tag, log)
        if not outcome.success:
            failed.append(tag)
            break
        rows = release_rows(
            instance,
            partition_key(outcome.env, tag),
            service_names(defs),
            load_pipeline_config().platforms[0],
        )
        print(format_release(rows))
    from deploy_assets.cli.report import format_status
    from deploy_assets.records.status import status
    from deploy_assets.resources.gitops import GitOpsResource

    print("\nwhere each env stands (read back from the GitOps repos):")
    print(
        format_status(
            status(instance, GitOpsResource(root=settings.git_root), load_pipeline_config())
        )
    )
    print(
        f"\ndemo finished in {time.monotonic() - started:.1f}s; "
        f"Dagster home {os.environ['DAGSTER_HOME']}"
    )
    print(
        "next: `make dev` for the UI on http://127.0.0.1:3000, `make stack-down` to stop the stack"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
