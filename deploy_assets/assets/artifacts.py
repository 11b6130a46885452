"""S3 artifacts: each uploaded binary, and the release's routes.json, one asset each.

An object is recorded only once the server holds it whole with the built sha256. Bytes already
in the bucket under another release (same content key) are copied server-side; an object that
exists with other bytes is refused, not overwritten.
"""


from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from deploy_assets.assets.binaries import binary_key
from deploy_assets.assets.routes import ROUTES_KEY
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import asset_key_for, find_by_content_key
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service
from deploy_assets.resources.s3 import S3Resource, file_sha256

ROUTES_OBJECT_KEY = dg.AssetKey(["s3", "routes_json"])
UPLOAD_CONCURRENCY = 4


class ArtifactConflict(RuntimeError):
    pass


def artifact_key(service: Service) -> dg.AssetKey:
    return asset_key_for("s3", service.name)


def object_name(service: Service, platform: str, primary: str) -> str:
    """The old layout for the primary platform; other platforms get a suffix."""
    return service.name if platform == primary else f"{service.name}_{platform}"


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

        def store(service: Service, built: BuiltBinary) -> dict:
            key = s3.key(release.tag, object_name(service, built.platform, primary))
            existing = s3.head(key)
            if existing and existing.sha256 == built.sha256 and existing.size == built.size:
                return {"key": key, "action": "already uploaded", "reused_from": ""}
            if existing:
                raise ArtifactConflict(f"{s3.uri(key)} exists with sha256 {existing.sha256 or 'unknown'}, "
                                       f"not the built {built.sha256}: not overwriting")
            previous = find_by_content_key(context.instance, artifact_key(service),
                                           f"content_key_{built.platform}", built.content_key)
            if previous:
                source_key = previous.metadata[f"s3_key_{built.platform}"]
                held = s3.head(source_key)
                if held and held.sha256 == built.sha256:
                    s3.copy(source_key, key)
                    return {"key": key, "action": f"copied from {source_key}", "reused_from": previous.partition}
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
            yield dg.MaterializeResult(asset_key=artifact_key(service), metadata=metadata)
        if errors:
            raise RuntimeError(f"artifacts not stored in s3://{settings.bucket}: " + "; ".join(
                f"{name}: {exc}" for name, exc in errors.items()))
        if ROUTES_OBJECT_KEY in context.selected_asset_keys:
            path = workspace.routes_file()
            stored = s3.upload(path, s3.key(release.tag, "routes.json"), file_sha256(path))
            yield dg.MaterializeResult(asset_key=ROUTES_OBJECT_KEY, metadata={
                "s3_key": stored.key, "uri": s3.uri(stored.key), "sha256": stored.sha256, "size": stored.size})

    return artifacts
