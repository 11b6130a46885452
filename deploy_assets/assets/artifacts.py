"""S3 artifacts: each uploaded binary, the release's routes.json, and the release record
(manifest.json + checksums.txt), one asset each.

An object is recorded only once the server holds it whole with the built sha256. Bytes already
in the bucket under another release (same content key) are copied server-side, and so are bytes
only the build cache holds (a binary staging prebuilt for prod: build_store); an object that
exists with other bytes is refused, not overwritten. The release record is written last, from
what the stages recorded, after the image and S3 checks passed (they block it).

The record (routes.json, manifest.json, checksums.txt) is as immutable as the binaries: a
download verified yesterday against checksums.txt must verify the same way tomorrow, and a
rollback re-applies the routes.json it finds. A re-run that would record other bytes (an older
release re-run after a newer one changed what history says) is refused naming both sha256s;
the same bytes are left alone.
"""


import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg

from deploy_assets.assets import build_store
from deploy_assets.assets.binaries import binary_key
from deploy_assets.assets.routes import ROUTES_KEY
from deploy_assets.assets.source import SOURCE_KEY
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import asset_key_for, find_by_content_key, latest_for_partition
from deploy_assets.links import registry_url, s3_url
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service
from deploy_assets.plan import refuse_object_clashes
from deploy_assets.release_record import (CHECKSUMS_NAME, MANIFEST_NAME, ROUTES_NAME, Artifact, binary_objects,
                                          checksums_txt, image_artifact, manifest_json)
from deploy_assets.resources.s3 import S3Error, S3Object, S3Resource, file_sha256

from deploy_assets.names import MANIFEST_KEY, ROUTES_OBJECT_KEY, artifact_key  # noqa: F401 (re-exported)
UPLOAD_CONCURRENCY = 4


class ArtifactConflict(RuntimeError):
    pass


def object_name(service: Service, platform: str, primary: str) -> str:
    """The old layout for the primary platform; other platforms get a suffix."""
    return service.name if platform == primary else f"{service.name}_{platform}"


def record_conflict(s3: S3Resource, key: str, sha256: str, size: int) -> tuple[S3Object | None, str]:
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
    there, there_size = s3.download_sha256(key)  # the bytes' own digest, not a claim in metadata
    return None, (f"{s3.uri(key)} already holds sha256 {there} ({there_size} bytes); "
                  f"this run would write sha256 {sha256} ({size} bytes): the release record is immutable, "
                  "not overwriting. Release a new tag, or remove the object on purpose if it is known bad")


def store_record(s3: S3Resource, key: str, path_or_bytes: Path | bytes,
                 content_type: str = "application/json") -> S3Object:
    """Write one record object unless it is there already with these bytes; refuse other bytes."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else None
    sha256 = hashlib.sha256(data).hexdigest() if data is not None else file_sha256(path_or_bytes)
    size = len(data) if data is not None else path_or_bytes.stat().st_size
    held, refusal = record_conflict(s3, key, sha256, size)
    if refusal:
        raise ArtifactConflict(refusal)
    if held is not None:
        return held
    return s3.put_bytes(key, data, content_type) if data is not None else s3.upload(path_or_bytes, key, sha256)


def build_artifacts_asset(services: list[Service], config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    by_key = {artifact_key(s): s for s in services}
    primary = config.platforms[0]

    @dg.multi_asset(
        specs=[dg.AssetSpec(key, deps=[binary_key(s)], group_name="artifacts", kinds={"s3"},
                            partitions_def=release_partitions, skippable=True,
                            description=f"s3://{settings.bucket}/{settings.s3_path}/<version>/{s.name}")
               for key, s in by_key.items()]
        + [dg.AssetSpec(ROUTES_OBJECT_KEY, deps=[ROUTES_KEY], group_name="artifacts", kinds={"s3"},
                        partitions_def=release_partitions, skippable=True,
                        description="routes.json of the release")],
        can_subset=True, name="artifacts", partitions_def=release_partitions,
    )
    def artifacts(context: dg.AssetExecutionContext, s3: S3Resource):
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source = workspace.source()
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        builds = workspace.builds() if selected else {}
        jobs = [(s, builds[(s.name, p)]) for s in selected for p in config.platforms]
        refuse_object_clashes(workspace.services(), config.platforms)  # a key may not stand for two objects
        routes_key = s3.key(release.tag, ROUTES_NAME)
        if ROUTES_OBJECT_KEY in context.selected_asset_keys:  # refused before any binary is uploaded
            path = workspace.routes_file()
            _, refusal = record_conflict(s3, routes_key, file_sha256(path), path.stat().st_size)
            if refusal:
                raise ArtifactConflict(refusal)

        def store(service: Service, built: BuiltBinary) -> dict:
            key = s3.key(release.tag, object_name(service, built.platform, primary))
            existing = s3.head(key)
            previous = earlier = cached = None
            if existing is None:
                previous = find_by_content_key(context.instance, artifact_key(service),
                                               f"content_key_{built.platform}", built.content_key)
                earlier = s3.head(previous.metadata[f"s3_key_{built.platform}"]) if previous else None
                if earlier is None or earlier.sha256 != built.sha256:  # e.g. prod's lambdas: prebuilt only
                    cached = s3.head(build_store.bucket_key(s3, built.content_key, service.name))
            action = build_store.store_action(existing, built.sha256, built.size, earlier, cached)
            if action == build_store.ALREADY:
                return {"key": key, "action": "already uploaded", "reused_from": ""}
            if action == build_store.CONFLICT:
                raise ArtifactConflict(f"{s3.uri(key)} exists with sha256 {existing.sha256 or 'unknown'}, "
                                       f"not the built {built.sha256}: not overwriting")
            if action == build_store.COPY_EARLIER:
                s3.copy(earlier.key, key, source=earlier, absent=True)
                return {"key": key, "action": f"copied from {earlier.key}", "reused_from": previous.partition}
            if action == build_store.COPY_CACHE:
                try:  # the copy is verified; an entry whose bytes are not ours falls back to our bytes
                    s3.copy(cached.key, key, source=cached, absent=True)
                    return {"key": key, "action": f"copied from the build cache {cached.key}", "reused_from": ""}
                except S3Error as exc:
                    there = s3.download_sha256(cached.key)
                    if there == (built.sha256, built.size):
                        raise  # the entry is good: the write itself failed (S3 refused it), as an upload would
                    context.log.warning(f"{s3.uri(cached.key)} holds sha256 {there[0]}, not the built "
                                        f"{built.sha256}: uploading {service.name} instead ({exc})")
            s3.upload(workspace.out / built.path, key, built.sha256)
            return {"key": key, "action": f"uploaded {built.size} bytes", "reused_from": ""}

        done, errors = {}, {}
        with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY) as pool:
            futures = {(s.name, b.platform): pool.submit(store, s, b) for s, b in jobs}
            for n, (service, built) in enumerate(jobs, 1):
                try:
                    done[(service.name, built.platform)] = futures[(service.name, built.platform)].result()
                    context.log.info(f"artifacts {n}/{len(jobs)} {service.name} {built.platform}: "
                                     f"{done[(service.name, built.platform)]['action']}")
                except Exception as exc:
                    errors[f"{service.name}/{built.platform}"] = exc
        for service in selected:
            results = {p: done.get((service.name, p)) for p in config.platforms}
            if not all(results.values()):
                continue
            metadata: dict = {"commit": source["commit"], "bucket": settings.bucket}
            for platform, result in results.items():
                built = builds[(service.name, platform)]
                metadata.update({
                    f"s3_key_{platform}": result["key"], f"uri_{platform}": s3.uri(result["key"]),
                    f"sha256_{platform}": built.sha256, f"size_{platform}": built.size,
                    f"content_key_{platform}": built.content_key, f"action_{platform}": result["action"],
                })
            metadata["reused_from"] = results[primary]["reused_from"]
            metadata["object"] = dg.MetadataValue.url(
                s3_url(s3.bucket, results[primary]["key"], s3.region, s3.endpoint_url))
            yield dg.MaterializeResult(asset_key=artifact_key(service), metadata=metadata)
        if errors:
            raise RuntimeError(f"artifacts not stored in s3://{settings.bucket}: " + "; ".join(
                f"{name}: {exc}" for name, exc in errors.items()))
        if ROUTES_OBJECT_KEY in context.selected_asset_keys:
            stored = store_record(s3, routes_key, workspace.routes_file())
            yield dg.MaterializeResult(asset_key=ROUTES_OBJECT_KEY, metadata={
                "s3_key": stored.key, "uri": s3.uri(stored.key), "sha256": stored.sha256, "size": stored.size,
                "object": dg.MetadataValue.url(s3_url(s3.bucket, stored.key, s3.region, s3.endpoint_url))})

    return artifacts


def _release_artifacts(instance: dg.DagsterInstance, services: list[Service], partition: str,
                       platforms: list[str]) -> list[Artifact]:
    """Every S3 object and image the stages recorded for this release, with its binary's facts."""
    artifacts: list[Artifact] = []
    for service in services:
        binary = latest_for_partition(instance, binary_key(service), partition)
        if binary is None:
            continue
        s3_record = latest_for_partition(instance, artifact_key(service), partition)
        if s3_record is not None:
            artifacts += binary_objects(service.name, service.kind, s3_record.metadata, binary.metadata,
                                        platforms, partition)
        image = latest_for_partition(instance, asset_key_for("image", service.name), partition)
        if image is not None:
            artifacts.append(image_artifact(service.name, service.kind, image.metadata, binary.metadata, partition))
    routes = latest_for_partition(instance, ROUTES_OBJECT_KEY, partition)
    if routes is not None:
        artifacts.append(Artifact(artifact="routes", service="", kind="", platform="",
                                  path=str(routes.metadata["s3_key"]), sha256=str(routes.metadata["sha256"]),
                                  size=int(routes.metadata["size"])))
    return artifacts


def _lineage_table(artifacts: list[Artifact], registry_host: str, s3: S3Resource) -> str:
    """The release's artifacts as a markdown table with links, for the partition page."""
    rows = ["| service | artifact | platform | sha256 / digest | where | reused from |", "|---|---|---|---|---|---|"]
    for a in sorted(artifacts, key=lambda a: (a.service, a.artifact, a.platform)):
        if a.artifact == "image":
            ref, _, digest = a.image.partition("@")
            name, _, _tag = ref.removeprefix(f"{registry_host}/").rpartition(":")
            where = f"[{ref}]({registry_url(registry_host, name, digest)})"
        else:
            where = f"[s3://{s3.bucket}/{a.path}]({s3_url(s3.bucket, a.path, s3.region, s3.endpoint_url)})"
        rows.append(f"| {a.service or '-'} | {a.artifact} | {a.platform or '-'} | `{(a.digest or a.sha256)[:19]}` "
                    f"| {where} | {a.reused_from or '-'} |")
    return "\n".join(rows)


def build_manifest_asset(services: list[Service], config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    deps = ([binary_key(s) for s in services] + [artifact_key(s) for s in services]
            + [asset_key_for("image", s.name) for s in services if config.source.kinds[s.kind].dockerfile]
            + [ROUTES_OBJECT_KEY])

    @dg.asset(key=MANIFEST_KEY, deps=deps, partitions_def=release_partitions, group_name="artifacts",
              kinds={"s3"}, description=f"{MANIFEST_NAME} and {CHECKSUMS_NAME} next to the binaries: "
              "the release record (every artifact, its bytes and where it came from)")
    def release_manifest(context: dg.AssetExecutionContext, s3: S3Resource) -> dg.MaterializeResult:
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source = workspace.source()
        partition = f"{release.env}|{release.tag}"
        artifacts = _release_artifacts(context.instance, workspace.services(), partition, config.platforms)
        if not artifacts:
            raise RuntimeError(f"{partition}: no artifact was recorded, nothing to put in {MANIFEST_NAME}")
        source_record = latest_for_partition(context.instance, SOURCE_KEY, partition)
        staging = str(source_record.metadata.get("staging_release", "")) if source_record else ""
        record = {MANIFEST_NAME: manifest_json(release.tag, release.env, source["commit"], source["toolchain"],
                                               staging, artifacts),
                  CHECKSUMS_NAME: checksums_txt(artifacts)}
        # Both checked before either is written: never a manifest of one run beside the checksums of another.
        refusals = [record_conflict(s3, s3.key(release.tag, name), hashlib.sha256(data).hexdigest(), len(data))[1]
                    for name, data in record.items()]
        if any(refusals):
            raise ArtifactConflict("; ".join(r for r in refusals if r))
        manifest = store_record(s3, s3.key(release.tag, MANIFEST_NAME), record[MANIFEST_NAME])
        checksums = store_record(s3, s3.key(release.tag, CHECKSUMS_NAME), record[CHECKSUMS_NAME], "text/plain")
        context.log.info(f"release record: {len(artifacts)} artifacts in {s3.uri(manifest.key)}")
        return dg.MaterializeResult(metadata={
            "manifest_key": manifest.key, "manifest_sha256": manifest.sha256,
            "checksums_key": checksums.key, "checksums_sha256": checksums.sha256,
            "manifest": dg.MetadataValue.url(s3_url(s3.bucket, manifest.key, s3.region, s3.endpoint_url)),
            "checksums": dg.MetadataValue.url(s3_url(s3.bucket, checksums.key, s3.region, s3.endpoint_url)),
            "artifacts": len(artifacts), "commit": source["commit"], "staging_release": staging,
            "lineage": dg.MetadataValue.md(_lineage_table(artifacts, settings.registry, s3)),
        })

    return release_manifest
