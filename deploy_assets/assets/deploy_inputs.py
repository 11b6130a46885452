"""What a deploying step (GitOps bump, API-gateway routes) needs, read from shared state only.

A deploying step may run in a run of its own (one asset clicked in the UI), on a worker whose
disk never saw the release's earlier steps. So it takes the release's facts from the instance
(what `source` recorded: commit, services) and its routes from the routes.json the release
uploaded to S3, checked against the sha256 recorded for it; never from a work folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import dagster as dg

from deploy_assets.config import PipelineConfig
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import ROUTES_OBJECT_KEY, SOURCE_KEY, artifact_key, image_key
from deploy_assets.plan import Service
from deploy_assets.records.history import latest_for_partition
from deploy_assets.resources.s3 import S3Resource


class ReleaseNotRecorded(RuntimeError):
    """An earlier stage of this release has no materialization to deploy from."""


@dataclass(frozen=True)
class ReleaseFacts:
    partition: str
    commit: str
    services: list[Service]


def release_facts(
    instance: dg.DagsterInstance, partition: str, known: list[Service]
) -> ReleaseFacts:
    """The commit and services `source` recorded for this release (kinds from the code location)."""
    source = latest_for_partition(instance, SOURCE_KEY, partition)
    if source is None:
        raise ReleaseNotRecorded(
            f"source has no materialization for {partition}: materialize the release "
            "(its whole job) before deploying it"
        )
    names = set(source.metadata.get("services") or [])
    services = [s for s in known if s.name in names]
    missing = sorted(names - {s.name for s in services})
    if missing:
        raise ReleaseNotRecorded(
            f"{partition} released services {', '.join(missing)} that the loaded code "
            "location does not know: reload the code location, then re-run"
        )
    return ReleaseFacts(partition, str(source.metadata.get("commit", "")), services)


def deployed_projects(facts: ReleaseFacts, config: PipelineConfig, env: str) -> list[str]:
    """The GitOps projects this env's release sets to its version (the matrix's deployed)."""
    return [s.name for s in ReleaseMatrix.of(config, facts.services).env(env).deployed]


def published_keys(
    facts: ReleaseFacts, config: PipelineConfig, env: str
) -> tuple[list[dg.AssetKey], list[dg.AssetKey]]:
    """(image keys, S3 asset keys) this env's release publishes: what a deploy may point to."""
    release = ReleaseMatrix.of(config, facts.services).env(env)
    images = [image_key(s) for s in release.images]
    objects = [artifact_key(s) for s in release.uploads] + [ROUTES_OBJECT_KEY]
    return images, objects


def recorded_routes(instance: dg.DagsterInstance, s3: S3Resource, partition: str) -> list[dict]:
    """The release's routes.json as uploaded, refused if its bytes are not the recorded ones."""
    stored = latest_for_partition(instance, ROUTES_OBJECT_KEY, partition)
    if stored is None:
        raise ReleaseNotRecorded(f"s3/routes_json has no materialization for {partition}")
    data = s3.get_bytes(str(stored.metadata["s3_key"]))
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != stored.metadata.get("sha256"):
        raise ReleaseNotRecorded(
            f"{s3.uri(str(stored.metadata['s3_key']))} has sha256 {sha256}, not the "
            f"recorded {stored.metadata.get('sha256')}: not deploying its routes"
        )
    return json.loads(data)


def routes_by_service(rows: list[dict]) -> dict[str, list[dict]]:
    """routes.json rows grouped as the GitOps bump writes them."""
    routes: dict[str, list[dict]] = {}
    for row in rows:
        routes.setdefault(row["service"], []).append({"method": row["method"], "path": row["path"]})
    return routes
