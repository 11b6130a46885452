"""S3 artifacts: each uploaded binary and the release's routes.json, one asset each; the release
record (manifest.json + checksums.txt) is assets/store_record.py.

An object is recorded only once the server holds it whole with the built sha256. Bytes already
in the bucket under another release (same content key) are copied server-side, and so are bytes
only the build cache holds (a binary staging prebuilt for prod: build_store); an object that
exists with other bytes is refused, not overwritten. Which of these happens is the store decision
(assets/store_decisions.py), a plain function of what the bucket holds; this step asks the bucket
and the instance, decides, acts and records.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from deploy_assets.assets import build_store
from deploy_assets.assets.links import s3_url
from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.release_record import ROUTES_NAME
from deploy_assets.assets.store_decisions import (
    Store,
    StoreFacts,
    failed_cache_copy,
    needs_cache_entry,
    store_decision,
)
from deploy_assets.assets.store_record import (  # noqa: F401
    ArtifactConflict,
    build_manifest_asset,
    record_conflict,
    store_record,
)
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.names import (  # noqa: F401 (re-exported)
    MANIFEST_KEY,
    ROUTES_KEY,
    ROUTES_OBJECT_KEY,
    artifact_key,
    binary_key,
)
from deploy_assets.plan import Service, refuse_object_clashes
from deploy_assets.records.history import find_by_content_key
from deploy_assets.resources.s3 import S3Error, S3Object, S3Resource, file_sha256

UPLOAD_CONCURRENCY = 4


def build_artifacts_asset(
    services: list[Service], config: PipelineConfig, settings: Settings
) -> dg.AssetsDefinition:
    by_key = {artifact_key(s): s for s in services}

    @dg.multi_asset(
        specs=_artifact_specs(by_key, settings),
        can_subset=True,
        name="artifacts",
        partitions_def=release_partitions,
    )
    def artifacts(context: dg.AssetExecutionContext, s3: S3Resource):
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        commit = workspace.source()["commit"]
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        builds = workspace.builds() if selected else {}
        jobs = [(s, builds[(s.name, p)]) for s in selected for p in config.platforms]
        # a key may not stand for two objects
        refuse_object_clashes(workspace.services(), config.platforms)
        routes_key = s3.key(release.tag, ROUTES_NAME)
        with_routes = ROUTES_OBJECT_KEY in context.selected_asset_keys
        if with_routes:  # refused before any binary is uploaded
            _refuse_other_routes(s3, routes_key, workspace.routes_file())
        store = _Storer(context, s3, workspace, release.tag, config.platforms[0])
        done, errors = _store_all(context, store, jobs)
        for service in selected:
            results = {p: done.get((service.name, p)) for p in config.platforms}
            if all(results.values()):
                metadata = _object_metadata(s3, settings.bucket, service, builds, results, commit)
                yield dg.MaterializeResult(asset_key=artifact_key(service), metadata=metadata)
        if errors:
            raise RuntimeError(
                f"artifacts not stored in s3://{settings.bucket}: "
                + "; ".join(f"{name}: {exc}" for name, exc in errors.items())
            )
        if with_routes:
            stored = store_record(s3, routes_key, workspace.routes_file())
            yield dg.MaterializeResult(
                asset_key=ROUTES_OBJECT_KEY, metadata=_routes_metadata(s3, stored)
            )

    return artifacts


def _artifact_specs(by_key: dict[dg.AssetKey, Service], settings: Settings) -> list[dg.AssetSpec]:
    """One S3 asset per service (its binaries), and routes.json."""
    common = dict(
        group_name="artifacts", kinds={"s3"}, partitions_def=release_partitions, skippable=True
    )
    where = f"s3://{settings.bucket}/{settings.s3_path}/<version>"
    return [
        dg.AssetSpec(key, deps=[binary_key(s)], description=f"{where}/{s.name}", **common)
        for key, s in by_key.items()
    ] + [
        dg.AssetSpec(
            ROUTES_OBJECT_KEY, deps=[ROUTES_KEY], description="routes.json of the release", **common
        )
    ]


def _routes_metadata(s3: S3Resource, stored: S3Object) -> dict:
    return {
        "s3_key": stored.key,
        "uri": s3.uri(stored.key),
        "sha256": stored.sha256,
        "size": stored.size,
        "object": dg.MetadataValue.url(s3_url(s3.bucket, stored.key, s3.region, s3.endpoint_url)),
    }


def _refuse_other_routes(s3: S3Resource, routes_key: str, path: Path) -> None:
    """routes.json is part of the immutable record: other bytes there refuse the whole step."""
    _, refusal = record_conflict(s3, routes_key, file_sha256(path), path.stat().st_size)
    if refusal:
        raise ArtifactConflict(refusal)


def _store_all(
    context: dg.AssetExecutionContext, store: "_Storer", jobs: list[tuple[Service, BuiltBinary]]
) -> tuple[dict, dict]:
    """Every (service, platform) binary stored concurrently: (decisions by (name, platform),
    errors by "name/platform"), logged in the jobs' order."""
    done, errors = {}, {}
    with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY) as pool:
        futures = {(s.name, b.platform): pool.submit(store, s, b) for s, b in jobs}
        for n, (service, built) in enumerate(jobs, 1):
            try:
                done[(service.name, built.platform)] = futures[
                    (service.name, built.platform)
                ].result()
                context.log.info(
                    f"artifacts {n}/{len(jobs)} {service.name} {built.platform}: "
                    f"{done[(service.name, built.platform)].action}"
                )
            except Exception as exc:
                errors[f"{service.name}/{built.platform}"] = exc
    return done, errors


def _object_metadata(
    s3: S3Resource,
    bucket: str,
    service: Service,
    builds: dict,
    results: dict[str, "Stored"],
    commit: str,
) -> dict:
    """What the s3/<service> record holds: per platform its key, bytes and how they got there;
    the primary platform (the first) names the object and its lineage."""
    metadata: dict = {"commit": commit, "bucket": bucket}
    primary = next(iter(results))
    for platform, result in results.items():
        built = builds[(service.name, platform)]
        metadata.update(
            {
                f"s3_key_{platform}": result.key,
                f"uri_{platform}": s3.uri(result.key),
                f"sha256_{platform}": built.sha256,
                f"size_{platform}": built.size,
                f"content_key_{platform}": built.content_key,
                f"action_{platform}": result.action,
            }
        )
    metadata["reused_from"] = results[primary].reused_from
    metadata["object"] = dg.MetadataValue.url(
        s3_url(s3.bucket, results[primary].key, s3.region, s3.endpoint_url)
    )
    return metadata


@dataclass(frozen=True)
class Stored:
    """One binary at its release key, and how it got there."""

    key: str
    action: str
    reused_from: str


class _Storer:
    """One binary at its release key: the store decision (store_decisions) on what the bucket
    and the instance hold, then the one action it names."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        s3: S3Resource,
        workspace: ReleaseWorkspace,
        tag: str,
        primary: str,
    ):
        self.context, self.s3, self.workspace, self.tag, self.primary = (
            context,
            s3,
            workspace,
            tag,
            primary,
        )

    def facts(self, service: Service, built: BuiltBinary, key: str) -> StoreFacts:
        """Asked in the order of cost: the release key, then an earlier release's object of these
        bytes, then (only if that is not them) the build cache's entry."""
        existing = self.s3.head(key)
        if existing is not None:
            return StoreFacts(existing)
        previous = find_by_content_key(
            self.context.instance,
            artifact_key(service),
            f"content_key_{built.platform}",
            built.content_key,
        )
        earlier = self.s3.head(previous.metadata[f"s3_key_{built.platform}"]) if previous else None
        cached = (
            self.s3.head(build_store.bucket_key(self.s3, built.content_key, service.name))
            if needs_cache_entry(earlier, built.sha256)
            else None
        )
        return StoreFacts(None, earlier, previous.partition if previous else "", cached)

    def __call__(self, service: Service, built: BuiltBinary) -> Stored:
        key = self.s3.key(self.tag, service.s3_object_name(built.platform, self.primary))
        decision = store_decision(
            self.facts(service, built, key), self.s3.uri(key), built.sha256, built.size
        )
        if decision.how is Store.CONFLICT:
            raise ArtifactConflict(decision.reason)
        if decision.how is Store.COPY_EARLIER:
            self.s3.copy(decision.source.key, key, source=decision.source, absent=True)
        if decision.how is Store.COPY_CACHE:
            try:  # the copy is verified; an entry whose bytes are not ours falls back to our bytes
                self.s3.copy(decision.source.key, key, source=decision.source, absent=True)
            except S3Error as exc:
                warning = failed_cache_copy(
                    self.s3.download_sha256(decision.source.key),
                    built.sha256,
                    built.size,
                    self.s3.uri(decision.source.key),
                    service.name,
                )
                if warning is None:
                    raise  # the entry is good: the write itself failed (S3 refused it), as an upload would
                self.context.log.warning(f"{warning} ({exc})")
                decision = store_decision(
                    StoreFacts(None), self.s3.uri(key), built.sha256, built.size
                )
        if decision.how is Store.UPLOAD:
            self.s3.upload(self.workspace.out / built.path, key, built.sha256)
        return Stored(key, decision.action, decision.reused_from)
