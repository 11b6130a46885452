"""Go binaries, one asset per service, built in batches and reused by content key.

A service is rebuilt only when its content key (every file of its dependency closure plus
toolchain, platform and flags) has no bytes in the build cache, the worker's or the bucket's
(build_store: a fresh worker downloads them once, verified); otherwise the cached bytes are used,
and the metadata says where from (`build_<platform>`) and names the release that built them.
Stale services of one platform are built by one `go build` invocation, which parallelizes across
cores with one shared GOCACHE (binaries_build.py).

Build once, promote: a staging release also builds, into the build cache only, the services
that the prod release of its commit will need and staging does not ship (lambdas, CLIs in the
old matrix). The prod tag then finds every binary by content key and runs no `go build`. Those
prebuilds are not part of the staging release: they are not materialized, and a failure among
them is a warning (prod would build them, and fail, itself).
"""

import dagster as dg

from deploy_assets.assets import build_store
from deploy_assets.assets.binaries_build import (
    BinariesStep,
    build_stale,
    mains_of,
    placed,
    prebuild,
)
from deploy_assets.assets.binary_decisions import (
    BinaryDecision,
    binary_line,
    binary_metadata,
    decide,
    explain_build_failure,
    promotion_prebuilds,
    recorded,
    refuse_missing,
    summary_line,
)
from deploy_assets.assets.build_store import CacheUploads, cache_path
from deploy_assets.assets.image_recipe import proof_metadata
from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.names import PROMOTED_FROM, PROMOTED_TO, SOURCE_KEY, binary_key
from deploy_assets.plan import Service
from deploy_assets.records.history import find_by_content_key
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.go import GoResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource

# Re-exported for the modules that imported them from here (legacy.py, jobs.py, images.py, ...).
_explain_build_failure = explain_build_failure
__all__ = [
    "PROMOTED_FROM",
    "PROMOTED_TO",
    "binary_key",
    "build_binaries_asset",
    "promotion_prebuilds",
]


def _keys(
    step: BinariesStep, wanted: list[Service], platform: str
) -> tuple[dict[str, str], dict, dict]:
    """Content keys of the wanted services, with go list's packages and mains (by import path)."""
    go, flags = step.go, step.config.build_flags
    # With go build's flags: files behind a -tags constraint are in the build and the key.
    packages = go.list_packages(step.module_dir, [f"./{s.path}" for s in wanted], platform, flags)
    mains = mains_of(step.module_dir, wanted, packages)
    step.closures[platform] = {s.name: (ip, packages[ip].deps) for ip, s in mains.items()}
    keys = {
        s.name: go.content_key(
            packages[ip],
            packages,
            step.module_dir,
            step.source["toolchain"],
            platform,
            flags,
            step.file_digests,
        )
        for ip, s in mains.items()
    }
    return keys, packages, mains


def _decisions(
    step: BinariesStep,
    selected: list[Service],
    prebuilds: list[Service],
    keys: dict[str, str],
    platform: str,
) -> dict[str, BinaryDecision]:
    """Each wanted service's decision: the instance's record of its key, then the caches."""
    context = step.context
    previous = {
        s.name: find_by_content_key(
            context.instance,
            binary_key(s),
            f"content_key_{platform}",
            keys[s.name],
            exclude_partition=context.partition_key,
        )
        for s in selected
    }
    records = {
        n: recorded(p.metadata, p.partition, platform) if p else None for n, p in previous.items()
    }
    found = build_store.fetch(
        step.s3,
        step.settings.cache_dir,
        {s.name: keys[s.name] for s in (*selected, *prebuilds)},
        records,
        context.log.warning,
    )
    return {
        **{
            s.name: decide(found[s.name], previous[s.name].partition if previous[s.name] else None)
            for s in selected
        },
        **{s.name: decide(found[s.name], None, prebuild=True) for s in prebuilds},
    }


def _for_platform(
    step: BinariesStep, selected: list[Service], prebuilds: list[Service], platform: str
) -> tuple[dict[str, str], dict[str, BinaryDecision]]:
    """Key every wanted service, find (local cache, bucket) or build the selected ones and place
    them in the release folder. Returns (content keys, decisions) of all wanted services."""
    keys, packages, mains = _keys(step, selected + prebuilds, platform)
    decisions = _decisions(step, selected, prebuilds, keys, platform)
    step.context.log.info(summary_line(platform, {s.name: decisions[s.name] for s in selected}))
    stale = [s for s in selected if decisions[s.name].build]
    if stale:
        build_stale(step, stale, keys, platform, mains, packages)
    for n, service in enumerate(selected, 1):
        decision = decisions[service.name]
        built = placed(step, service, keys[service.name], platform, decision.reused_from)
        step.results[service.name].append(built)
        step.origins[(service.name, platform)] = decision.origin
        origin = build_store.cache_record(
            cache_path(step.settings.cache_dir, built.content_key, service.name)
        )
        step.context.log.info(
            binary_line(n, len(selected), built, decision, origin.get("built_in", ""))
        )
    return keys, decisions


def _materialize(step: BinariesStep, service: Service) -> dg.MaterializeResult:
    """The binary asset of one service, its metadata across platforms (binary_decisions)."""
    builds = step.results[service.name]
    built_in = {
        b.platform: build_store.cache_record(
            cache_path(step.settings.cache_dir, b.content_key, service.name)
        ).get("built_in", "")
        for b in builds
    }
    metadata = binary_metadata(
        service,
        step.source,
        builds,
        {b.platform: step.origins[(service.name, b.platform)] for b in builds},
        built_in,
    )
    if service.name in step.warm_proofs:  # the images step retags the ck- image on this proof
        metadata.update(proof_metadata(step.warm_proofs[service.name], prefix="ck_image_"))
    return dg.MaterializeResult(asset_key=binary_key(service), metadata=metadata)


def _run(
    step: BinariesStep, selected: list[Service], prebuilds: list[Service]
) -> list[BuiltBinary]:
    """Every platform in turn; the bucket uploads are awaited (and their warnings logged) even
    when a build fails. Returns the prebuilt binaries."""
    prebuilt: list[BuiltBinary] = []
    try:
        for platform in step.config.platforms:
            keys, decisions = _for_platform(step, selected, prebuilds, platform)
            prebuilt += prebuild(step, prebuilds, keys, decisions, platform)
    finally:
        stored, warnings = step.uploads.finish()
    for warning in warnings:
        step.context.log.warning(warning)
    if stored:
        step.context.log.info(
            f"{stored} binaries stored in the bucket's build cache "
            f"{step.s3.uri(step.s3.key(build_store.CACHE_PREFIX, ''))}"
        )
    return prebuilt


def _specs(by_key: dict[dg.AssetKey, Service]) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key,
            deps=[SOURCE_KEY],
            group_name="binaries",
            kinds={"go"},
            partitions_def=release_partitions,
            skippable=True,
            description=f"{s.kind} binary {s.name} ({s.path})",
        )
        for key, s in by_key.items()
    ]


def _start(
    context: dg.AssetExecutionContext,
    resources: tuple[GoResource, DockerResource, RegistryResource, S3Resource],
    settings: Settings,
    config: PipelineConfig,
    selected: list[Service],
) -> tuple[BinariesStep, list[Service]]:
    """The run's state, once the services the tag lacks are refused; with the prebuilds for the
    promotion that are not selected themselves."""
    workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
    source = workspace.source()
    present = workspace.services()
    refuse_missing(
        [s.name for s in selected], {s.name for s in present}, release.tag, source["commit"]
    )
    chosen = {s.name for s in selected}
    prebuilds = [
        s for s in promotion_prebuilds(release.env, present, config) if s.name not in chosen
    ]
    uploads = CacheUploads(resources[3], settings.cache_dir)
    step = BinariesStep(
        context,
        *resources,
        settings,
        config,
        release,
        source,
        workspace,
        uploads,
        {s.name: [] for s in selected},
    )
    return step, prebuilds


def build_binaries_asset(
    services: list[Service], config: PipelineConfig, settings: Settings
) -> dg.AssetsDefinition:
    by_key = {binary_key(s): s for s in services}

    @dg.multi_asset(
        specs=_specs(by_key), can_subset=True, name="binaries", partitions_def=release_partitions
    )
    def binaries(
        context: dg.AssetExecutionContext,
        go: GoResource,
        docker: DockerResource,
        registry: RegistryResource,
        s3: S3Resource,
    ):
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        step, prebuilds = _start(context, (go, docker, registry, s3), settings, config, selected)
        prebuilt = _run(step, selected, prebuilds)
        step.workspace.write_builds([b for builds in step.results.values() for b in builds])
        step.workspace.write_prebuilds(prebuilt)
        for service in selected:
            yield _materialize(step, service)

    return binaries
