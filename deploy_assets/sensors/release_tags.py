"""The tag sensor: new release tags in the source remote become release runs.

One `git ls-remote --tags` per tick, no clone. The cursor remembers every tag seen with its
commit, so the first tick only takes a baseline (turning the sensor on never releases history),
a rejected tag is reported once, and a tag that moved to another commit is reported loudly and
never released again.
"""


import base64
import json
import zlib

import dagster as dg

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


def evaluate_tags(seen: dict[str, str] | None, remote: dict[str, str], log) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """(new releases as (tag, env, commit), next cursor). Pure apart from logging."""
    if seen is None:
        log.info(f"first tick: recorded {len(remote)} existing tags as the baseline, launching nothing")
        return [], dict(remote)
    releases = []
    for tag, commit in remote.items():
        before = seen.get(tag)
        if before == commit:
            continue
        if before is not None:
            log.error(f"tag {tag!r} MOVED from {before[:12]} to {commit[:12]}: a released tag must not "
                      "move; not releasing it again. Create a new tag instead.")
            continue
        try:
            release = parse_tag(tag)
        except TagRejected as exc:
            log.warning(f"rejected tag: {exc}")
            continue
        releases.append((tag, release.env, commit))
    next_seen = {**seen, **{t: c for t, c in remote.items() if t not in seen}}
    return releases, next_seen


def build_release_tags_sensor(jobs: list) -> dg.SensorDefinition:
    @dg.sensor(name=SENSOR_NAME, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
               jobs=jobs, description="Polls the source remote's tags; each new release tag launches its env's job.")
    def release_tags(context: dg.SensorEvaluationContext, git: GitSourceResource):
        try:
            remote = git.ls_remote_tags()
        except GitError as exc:
            return dg.SkipReason(f"source remote {git.remote} unreachable: {exc}")
        seen = decode_cursor(context.cursor)
        releases, next_seen = evaluate_tags(seen, remote, context.log)
        if next_seen == seen:
            return dg.SkipReason(f"no new tags among {len(remote)}")
        requests = [
            dg.RunRequest(
                run_key=f"{tag}@{commit}", job_name=job_name(env),
                partition_key=release_partition_key(env, tag),
                tags={"deploy_assets/env": env, "deploy_assets/tag": tag, "deploy_assets/commit": commit},
            )
            for tag, env, commit in releases
        ]
        for tag, env, commit in releases:
            context.log.info(f"release {tag} ({env}) at {commit[:12]} -> {job_name(env)}")
        return dg.SensorResult(
            run_requests=requests, cursor=encode_cursor(next_seen),
            dynamic_partitions_requests=[versions.build_add_request([t for t, _, _ in releases])] if releases else [],
        )

    return release_tags
