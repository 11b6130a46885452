"""Every name the release graph, its runs and its records agree on, in one place.

Asset keys, asset-check names, run-tag keys, the partition key of a release and its parsing, the
job name of an env, and the promotion pair (staging -> prod). A name that two modules spell on
their own drifts (a renamed check key, a run tag the sensor sets and the CLI never reads): so
they are defined here once and imported, and this module imports nothing of the project.
"""

from __future__ import annotations

from typing import Protocol

import dagster as dg

# -- the promotion pair: prod promotes the bytes staging validated ---------------------------------
PROMOTED_FROM = "staging"
PROMOTED_TO = "prod"

# -- asset keys ------------------------------------------------------------------------------------
SOURCE_KEY = dg.AssetKey("source")
ROUTES_KEY = dg.AssetKey("routes")
ROUTES_OBJECT_KEY = dg.AssetKey(["s3", "routes_json"])
MANIFEST_KEY = dg.AssetKey(["s3", "manifest_json"])
GITOPS_KEY = dg.AssetKey("gitops_bump")
API_GATEWAY_KEY = dg.AssetKey("api_gateway_routes")


class _Named(Protocol):
    name: str


def asset_key_for(prefix: str, name: str) -> dg.AssetKey:
    """A per-service asset key: Dagster keys take no `-` or `.`, service names may."""
    return dg.AssetKey([prefix, name.replace("-", "_").replace(".", "_")])


def _name(service: _Named | str) -> str:
    return service if isinstance(service, str) else service.name


def binary_key(service: _Named | str) -> dg.AssetKey:
    return asset_key_for("binary", _name(service))


def image_key(service: _Named | str) -> dg.AssetKey:
    return asset_key_for("image", _name(service))


def artifact_key(service: _Named | str) -> dg.AssetKey:
    return asset_key_for("s3", _name(service))


# -- asset-check names -----------------------------------------------------------------------------
PROMOTION_CHECK = "same_bytes_as_staging"
GITOPS_CHECK = "repo_at_version"
OBJECT_CHECK = "objects_match_build"
RECORD_CHECK = "objects_match_record"
IMAGE_CHECK = "served_with_recorded_digest"
ROUTES_CHECK = "every_ms_has_routes"
TOOLCHAIN_CHECK = "built_with_configured_go"

# -- run-tag keys ----------------------------------------------------------------------------------
ENV_TAG = "deploy_assets/env"
VERSION_TAG = "deploy_assets/tag"
COMMIT_TAG = "deploy_assets/commit"  # set by the sensor: the commit the tag had when seen
OPERATION_TAG = "deploy_assets/operation"  # "rollback", "recheck"
PROCESS_TAG = "deploy_assets/process"  # host:pid of an in-process release, to tell a dead one
SERVICES_STATE_KEY = "deploy_assets/services"  # reconstruction metadata key of the service list


def release_run_tags(env: str, tag: str, **extra: str) -> dict[str, str]:
    """The tags every run of a release carries, so the sensor, CLI and UI find it by env and tag."""
    return {ENV_TAG: env, VERSION_TAG: tag, **extra}


# -- partitions and jobs ---------------------------------------------------------------------------
def partition_key(env: str, tag: str) -> str:
    """A release's partition key as Dagster stores it: 'dev|v0.1.0-alpha.1'."""
    return f"{env}|{tag}"


def split_partition_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(env, tag) of a partition key such as 'dev|v0.1.0-alpha.1'."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["env"], dims["version"]
    env, _, tag = str(key).partition("|")
    return env, tag


def job_name(env: str) -> str:
    return f"release_to_{env}"
