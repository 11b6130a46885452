"""The release record next to the binaries: routes.json, manifest.json and checksums.txt.

The record is as immutable as the binaries: a download verified yesterday against checksums.txt
must verify the same way tomorrow, and a rollback re-applies the routes.json it finds. A re-run
that would record other bytes (an older release re-run after a newer one changed what history
says) is refused naming both sha256s (store_decisions.record_refusal); the same bytes are left
alone. The manifest is written last, from what the stages recorded, after the image and S3
checks passed (they block it).
"""

import hashlib
from pathlib import Path

import dagster as dg

from deploy_assets.assets.links import registry_url, s3_url
from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.release_record import (
    CHECKSUMS_NAME,
    MANIFEST_NAME,
    Artifact,
    binary_objects,
    checksums_txt,
    image_artifact,
    manifest_json,
)
from deploy_assets.assets.store_decisions import record_refusal
from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.matrix import with_image
from deploy_assets.names import (
    MANIFEST_KEY,
    ROUTES_OBJECT_KEY,
    SOURCE_KEY,
    artifact_key,
    binary_key,
    image_key,
    partition_key,
)
from deploy_assets.plan import Service
from deploy_assets.records.history import latest_for_partition
from deploy_assets.resources.s3 import S3Object, S3Resource, file_sha256


class ArtifactConflict(RuntimeError):
    pass


def record_conflict(
    s3: S3Resource, key: str, sha256: str, size: int
) -> tuple[S3Object | None, str]:
    """(the object already at key if it is these bytes, a refusal if it is other bytes).

    (None, "") means the key is free. The refusal names both sha256s and what to do: the bucket
    keeps what it has, so a reader who verified it before still can.
    """
    present = s3.head(key)
    if present is None:
        return None, ""
    held = s3.holds(key, sha256, size)
    if held is not None:
        return held, ""
    there = s3.download_sha256(key)  # the bytes' own digest, not a claim in metadata
    return None, record_refusal(s3.uri(key), there, sha256, size)


def store_record(
    s3: S3Resource, key: str, path_or_bytes: Path | bytes, content_type: str = "application/json"
) -> S3Object:
    """Write one record object unless it is there already with these bytes; refuse other bytes."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else None
    sha256 = hashlib.sha256(data).hexdigest() if data is not None else file_sha256(path_or_bytes)
    size = len(data) if data is not None else path_or_bytes.stat().st_size
    held, refusal = record_conflict(s3, key, sha256, size)
    if refusal:
        raise ArtifactConflict(refusal)
    if held is not None:
        return held
    return (
        s3.put_bytes(key, data, content_type)
        if data is not None
        else s3.upload(path_or_bytes, key, sha256)
    )


def _release_artifacts(
    instance: dg.DagsterInstance, services: list[Service], partition: str, platforms: list[str]
) -> list[Artifact]:
    """Every S3 object and image the stages recorded for this release, with its binary's facts."""
    artifacts: list[Artifact] = []
    for service in services:
        binary = latest_for_partition(instance, binary_key(service), partition)
        if binary is None:
            continue
        s3_record = latest_for_partition(instance, artifact_key(service), partition)
        if s3_record is not None:
            artifacts += binary_objects(
                service.name,
                service.kind,
                s3_record.metadata,
                binary.metadata,
                platforms,
                partition,
            )
        image = latest_for_partition(instance, image_key(service), partition)
        if image is not None:
            artifacts.append(
                image_artifact(
                    service.name, service.kind, image.metadata, binary.metadata, partition
                )
            )
    routes = latest_for_partition(instance, ROUTES_OBJECT_KEY, partition)
    if routes is not None:
        artifacts.append(
            Artifact(
                artifact="routes",
                service="",
                kind="",
                platform="",
                path=str(routes.metadata["s3_key"]),
                sha256=str(routes.metadata["sha256"]),
                size=int(routes.metadata["size"]),
            )
        )
    return artifacts


def _lineage_table(artifacts: list[Artifact], registry_host: str, s3: S3Resource) -> str:
    """The release's artifacts as a markdown table with links, for the partition page."""
    rows = [
        "| service | artifact | platform | sha256 / digest | where | reused from |",
        "|---|---|---|---|---|---|",
    ]
    for a in sorted(artifacts, key=lambda a: (a.service, a.artifact, a.platform)):
        if a.artifact == "image":
            ref, _, digest = a.image.partition("@")
            name, _, _tag = ref.removeprefix(f"{registry_host}/").rpartition(":")
            where = f"[{ref}]({registry_url(registry_host, name, digest)})"
        else:
            where = f"[s3://{s3.bucket}/{a.path}]({s3_url(s3.bucket, a.path, s3.region, s3.endpoint_url)})"
        rows.append(
            f"| {a.service or '-'} | {a.artifact} | {a.platform or '-'} | `{(a.digest or a.sha256)[:19]}` "
            f"| {where} | {a.reused_from or '-'} |"
        )
    return "\n".join(rows)


def build_manifest_asset(
    services: list[Service], config: PipelineConfig, settings: Settings
) -> dg.AssetsDefinition:
    deps = (
        [binary_key(s) for s in services]
        + [artifact_key(s) for s in services]
        + [image_key(s) for s in with_image(config, services)]
        + [ROUTES_OBJECT_KEY]
    )

    @dg.asset(
        key=MANIFEST_KEY,
        deps=deps,
        partitions_def=release_partitions,
        group_name="artifacts",
        kinds={"s3"},
        description=f"{MANIFEST_NAME} and {CHECKSUMS_NAME} next to the binaries: "
        "the release record (every artifact, its bytes and where it came from)",
    )
    def release_manifest(context: dg.AssetExecutionContext, s3: S3Resource) -> dg.MaterializeResult:
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source = workspace.source()
        partition = partition_key(release.env, release.tag)
        services = workspace.services()
        artifacts = _release_artifacts(context.instance, services, partition, config.platforms)
        if not artifacts:
            raise RuntimeError(
                f"{partition}: no artifact was recorded, nothing to put in {MANIFEST_NAME}"
            )
        source_record = latest_for_partition(context.instance, SOURCE_KEY, partition)
        staging = str(source_record.metadata.get("staging_release", "")) if source_record else ""
        manifest = manifest_json(
            release.tag, release.env, source["commit"], source["toolchain"], staging, artifacts
        )
        stored = _store_manifest(s3, release.tag, manifest, checksums_txt(artifacts))
        context.log.info(
            f"release record: {len(artifacts)} artifacts in {s3.uri(stored[MANIFEST_NAME].key)}"
        )
        metadata = _manifest_metadata(s3, stored, len(artifacts), source["commit"], staging)
        lineage = dg.MetadataValue.md(_lineage_table(artifacts, settings.registry, s3))
        return dg.MaterializeResult(metadata={**metadata, "lineage": lineage})

    return release_manifest


def _store_manifest(s3: S3Resource, tag: str, manifest: bytes, checksums: bytes) -> dict:
    """manifest.json and checksums.txt, both checked before either is written: never a manifest
    of one run beside the checksums of another."""
    record = {MANIFEST_NAME: manifest, CHECKSUMS_NAME: checksums}
    refusals = [
        record_conflict(s3, s3.key(tag, name), hashlib.sha256(data).hexdigest(), len(data))[1]
        for name, data in record.items()
    ]
    if any(refusals):
        raise ArtifactConflict("; ".join(r for r in refusals if r))
    return {
        MANIFEST_NAME: store_record(s3, s3.key(tag, MANIFEST_NAME), manifest),
        CHECKSUMS_NAME: store_record(s3, s3.key(tag, CHECKSUMS_NAME), checksums, "text/plain"),
    }


def _manifest_metadata(
    s3: S3Resource, stored: dict, artifacts: int, commit: str, staging: str
) -> dict:
    manifest, checksums = stored[MANIFEST_NAME], stored[CHECKSUMS_NAME]
    return {
        "manifest_key": manifest.key,
        "manifest_sha256": manifest.sha256,
        "checksums_key": checksums.key,
        "checksums_sha256": checksums.sha256,
        "manifest": dg.MetadataValue.url(
            s3_url(s3.bucket, manifest.key, s3.region, s3.endpoint_url)
        ),
        "checksums": dg.MetadataValue.url(
            s3_url(s3.bucket, checksums.key, s3.region, s3.endpoint_url)
        ),
        "artifacts": artifacts,
        "commit": commit,
        "staging_release": staging,
    }
