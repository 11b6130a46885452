"""The tag sensor: new release tags in the source remote become release runs.

One `git ls-remote --tags` per tick, no clone. The cursor remembers every tag seen with its
commit, so the first tick only takes a baseline (turning the sensor on never releases history),
a rejected tag is reported once, and a tag that moved to another commit is reported loudly and
never released again.
"""


import base64
import json
import zlib
from dataclasses import dataclass

import dagster as dg

from deploy_assets.assets.source import COMMIT_TAG
from deploy_assets.partitions import release_partition_key, versions
from deploy_assets.plan import job_name
from deploy_assets.release import TagRejected, parse_tag
from deploy_assets.resources.git import GitError, GitSourceResource

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
        log.info(f"first tick: recorded {len(remote)} existing tags as the baseline, launching nothing")
        return TagScan([], dict(remote), [])
    releases, refused = [], []
    for tag, commit in sorted(remote.items()):
        before = seen.get(tag)
        if before == commit:
            continue
        if before is not None:
            refused.append(f"tag {tag!r} MOVED from {before[:12]} to {commit[:12]}: not released")
            log.error(f"tag {tag!r} MOVED from {before[:12]} to {commit[:12]}: a released tag must not "
                      "move; not releasing it again. Create a new tag instead.")
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


def build_release_tags_sensor(jobs: list) -> dg.SensorDefinition:
    @dg.sensor(name=SENSOR_NAME, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
               jobs=jobs, description="Polls the source remote's tags; each new release tag launches its env's job.")
    def release_tags(context: dg.SensorEvaluationContext, git: GitSourceResource):
        try:
            remote = git.ls_remote_tags()
        except GitError as exc:
            return dg.SkipReason(f"source remote {git.display_remote} unreachable: {exc}")
        seen = _read_cursor(context)
        scan = evaluate_tags(seen, remote, context.log)
        if scan.seen == seen:
            return dg.SkipReason(f"no new tags among {len(remote)}")
        requests = [
            dg.RunRequest(
                run_key=f"{tag}@{commit}", job_name=job_name(env),
                partition_key=release_partition_key(env, tag),
                tags={"deploy_assets/env": env, "deploy_assets/tag": tag, COMMIT_TAG: commit},
            )
            for tag, env, commit in scan.releases
        ]
        for tag, env, commit in scan.releases:
            context.log.info(f"release {tag} ({env}) at {commit[:12]} -> {job_name(env)}")
        skip = None
        if not requests:
            skip = _summary(scan.refused) if seen is not None else f"baseline of {len(remote)} tags"
        return dg.SensorResult(
            run_requests=requests, cursor=encode_cursor(scan.seen), skip_reason=skip,
            dynamic_partitions_requests=[versions.build_add_request([t for t, _, _ in scan.releases])]
            if scan.releases else [],
        )

    return release_tags
