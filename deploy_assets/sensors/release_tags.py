"""The tag sensor: new release tags in the source remote become release runs.

One `git ls-remote --tags` per tick, no clone. The cursor remembers every tag seen with its
commit, so the first tick only takes a baseline (turning the sensor on never releases history),
a rejected tag is reported once, and a tag that moved to another commit is reported loudly and
never released again.

A new release tag is also where a new service first shows up: the loaded code location has no
assets for it, so its release would fail at `source`. The sensor therefore looks at the new
tags' commits (a fetch of the mirror, only on a tick with new release tags), records services
the code location does not know in the service state (deploy_assets/state/services.py), and
holds such a release back, saying to reload the code location; after the reload it launches.
"""

import base64
import json
import zlib
from dataclasses import dataclass

import dagster as dg

from deploy_assets.assets.partitions import release_partition_key, versions
from deploy_assets.assets.source_checks import RELOAD_HINT
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.matrix import MatrixError, ReleaseMatrix
from deploy_assets.names import COMMIT_TAG, release_run_tags
from deploy_assets.plan import PlanError, Service, discover_services
from deploy_assets.resources.git import GitError, GitSourceResource
from deploy_assets.state.services import add_services, state_path
from deploy_assets.tags import TagRejected, parse_tag

SENSOR_NAME = "release_tags"


def encode_cursor(seen: dict[str, str]) -> str:
    # 10k tags are ~600 kB as JSON; compressed they stay small enough to store every tick.
    raw = json.dumps(seen, separators=(",", ":"), sort_keys=True).encode()
    return "z:" + base64.b64encode(zlib.compress(raw, 6)).decode()


def decode_cursor(cursor: str | None) -> dict[str, str] | None:
    if not cursor:
        return None
    if cursor.startswith("z:"):
        return json.loads(zlib.decompress(base64.b64decode(cursor[2:])))
    return json.loads(cursor)


@dataclass(frozen=True)
class TagScan:
    """What one tick found: releases to launch, the next cursor, and why other tags launch nothing."""

    releases: list[tuple[str, str, str]]  # (tag, env, commit)
    seen: dict[str, str]
    refused: list[str]


def evaluate_tags(seen: dict[str, str] | None, remote: dict[str, str], log) -> TagScan:
    """Compare the remote's tags with the cursor. Pure apart from logging.

    Every tag goes into the cursor the first time it is seen, accepted or not, so a rejected
    tag is reported once. A tag whose commit changed is reported once per move, loudly, and the
    cursor takes the new commit so the same move is not reported every tick; it is never
    released, because run keys are `tag@commit` and a moved tag is exactly what must not deploy.
    """
    if seen is None:
        log.info(
            f"first tick: recorded {len(remote)} existing tags as the baseline, launching nothing"
        )
        return TagScan([], dict(remote), [])
    releases, refused = [], []
    for tag, commit in sorted(remote.items()):
        before = seen.get(tag)
        if before == commit:
            continue
        if before is not None:
            refused.append(f"tag {tag!r} MOVED from {before[:12]} to {commit[:12]}: not released")
            log.error(
                f"tag {tag!r} MOVED from {before[:12]} to {commit[:12]}: a released tag must not "
                "move; not releasing it again. Create a new tag instead."
            )
            continue
        try:
            release = parse_tag(tag)
        except TagRejected as exc:
            refused.append(f"rejected: {exc}")
            log.warning(f"rejected tag: {exc}")
            continue
        releases.append((tag, release.env, commit))
    return TagScan(releases, {**seen, **remote}, refused)


def _read_cursor(context: dg.SensorEvaluationContext) -> dict[str, str] | None:
    try:
        return decode_cursor(context.cursor)
    except (ValueError, zlib.error) as exc:  # json and base64 errors are ValueErrors
        # Re-baselining launches nothing; guessing would risk releasing history.
        context.log.error(f"unreadable cursor ({exc}); taking a new baseline, launching nothing")
        return None


def _summary(refused: list[str], limit: int = 10) -> str:
    """The tick's skip reason: the first refusals in full (the log has them all)."""
    more = f"; and {len(refused) - limit} more (see the tick's log)" if len(refused) > limit else ""
    return "; ".join(refused[:limit]) + more


def _fetch_if_missing(git: GitSourceResource, commits: list[str]) -> None:
    """The mirror has the commits a tick looks at; fetch only when one is missing (a tick that
    holds a release back until a reload must not fetch every 15 s)."""
    for commit in commits:
        try:
            git.resolve(commit)
        except GitError:
            git.fetch()
            return


def hold_unknown_services(
    git: GitSourceResource,
    releases: list[tuple[str, str, str]],
    known: set[str],
    settings: Settings,
    config: PipelineConfig,
    log,
) -> dict[str, str]:
    """Releases whose commit has services the loaded code location does not know: tag -> why.

    Those services go into the service state, so a reload shows them. A commit that cannot be
    read or whose services are invalid is not held: `source` refuses it with the full reason."""
    if not releases:
        return {}
    try:
        _fetch_if_missing(git, [commit for _, _, commit in releases])
    except GitError as exc:
        log.warning(
            f"cannot fetch the new tags' commits to check their services ({exc}); launching them, "
            "`source` checks them"
        )
        return {}
    held = {}
    for tag, env, commit in releases:
        try:
            services: list[Service] = discover_services(
                git.list_files(commit), config.source, config.platforms
            )
        except (GitError, PlanError) as exc:
            log.warning(
                f"tag {tag}: services at {commit[:12]} not checked ({exc}); `source` will say why"
            )
            continue
        unknown = [
            s.name for s in ReleaseMatrix.of(config, services).env(env).built if s.name not in known
        ]
        if not unknown:
            continue
        recorded = add_services(settings, config, services, commit)
        state = (
            f"recorded {', '.join(recorded)} in the service state {state_path(settings)}"
            if recorded
            else f"the service state {state_path(settings)} has them already"
        )
        held[tag] = (
            f"tag {tag} at {commit[:12]} has services {', '.join(unknown)} that the loaded code location "
            f"does not know: {state}; {RELOAD_HINT} and the release launches"
        )
        log.warning(held[tag])
    return held


def without_rule(
    releases: list[tuple[str, str, str]], matrix: ReleaseMatrix, log
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(releases of envs the pipeline config has a rule for, why the others launch nothing):
    a tag of an env without one has no job to run."""
    kept, refused = [], []
    for tag, env, commit in releases:
        try:
            matrix.env(env)
        except MatrixError as exc:
            refused.append(f"tag {tag}: {exc}")
            log.error(refused[-1])
            continue
        kept.append((tag, env, commit))
    return kept, refused


def build_release_tags_sensor(
    jobs: list, matrix: ReleaseMatrix, settings: Settings, config: PipelineConfig
) -> dg.SensorDefinition:
    """The sensor of the code location whose services and jobs the matrix describes."""
    known_names = {s.name for s in matrix.services}

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=jobs,
        description="Polls the source remote's tags; each new release tag launches its env's job.",
    )
    def release_tags(context: dg.SensorEvaluationContext, git: GitSourceResource):
        try:
            remote = git.ls_remote_tags()
        except GitError as exc:
            return dg.SkipReason(f"source remote {git.display_remote} unreachable: {exc}")
        seen = _read_cursor(context)
        scan = evaluate_tags(seen, remote, context.log)
        if scan.seen == seen:
            return dg.SkipReason(f"no new tags among {len(remote)}")
        configured, no_rule = without_rule(scan.releases, matrix, context.log)
        held = hold_unknown_services(git, configured, known_names, settings, config, context.log)
        releases = [r for r in configured if r[0] not in held]
        cursor = {
            tag: commit for tag, commit in scan.seen.items() if tag not in held
        }  # new again next tick
        requests = [
            dg.RunRequest(
                run_key=f"{tag}@{commit}",
                job_name=matrix.env(env).job,
                partition_key=release_partition_key(env, tag),
                tags=release_run_tags(env, tag, **{COMMIT_TAG: commit}),
            )
            for tag, env, commit in releases
        ]
        for tag, env, commit in releases:
            context.log.info(f"release {tag} ({env}) at {commit[:12]} -> {matrix.env(env).job}")
        skip = None
        if not requests:
            why = [*held.values(), *no_rule, *scan.refused]
            skip = _summary(why) if seen is not None else f"baseline of {len(remote)} tags"
        return dg.SensorResult(
            run_requests=requests,
            cursor=encode_cursor(cursor),
            skip_reason=skip,
            dynamic_partitions_requests=[versions.build_add_request([t for t, _, _ in releases])]
            if releases
            else [],
        )

    return release_tags
