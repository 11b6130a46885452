"""Go binaries, one asset per service, built in batches and reused by content key.

A service is rebuilt only when its content key (every file of its dependency closure plus
toolchain, platform and flags) has no bytes in the build cache, the worker's or the bucket's
(build_store: a fresh worker downloads them once, verified); otherwise the cached bytes are used,
and the metadata says where from (`build_<platform>`) and names the release that built them. Stale services of one platform are
built by one `go build` invocation, which parallelizes across cores with one shared GOCACHE.

Build once, promote: a staging release also builds, into the build cache only, the services
that the prod release of its commit will need and staging does not ship (lambdas, CLIs in the
old matrix). The prod tag then finds every binary by content key and runs no `go build`. Those
prebuilds are not part of the staging release: they are not materialized, and a failure among
them is a warning (prod would build them, and fail, itself).
"""


import contextlib
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from deploy_assets.assets import build_store
from deploy_assets.assets.binary_decisions import (BinaryDecision, binary_line, binary_metadata, decide,
                                                   explain_build_failure, promotion_prebuilds, recorded,
                                                   refuse_missing, summary_line)
from deploy_assets.assets.build_store import CacheUploads, cache_path
from deploy_assets.assets.image_recipe import image_labels, prebuild_tag, proof_metadata
from deploy_assets.assets.image_warmup import ImageWarmup, WarmupJob
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import find_by_content_key
from deploy_assets.names import PROMOTED_FROM, PROMOTED_TO, SOURCE_KEY, binary_key
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service, services_for
from deploy_assets.release import Release
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.go import GoBuildError, GoPackage, GoResource
from deploy_assets.resources.go_build_events import BuildProgress, closure_size
from deploy_assets.resources.go_cache import SharedGoCache, compile_cache_key
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource, file_sha256

# Re-exported for the modules that imported them from here (legacy.py, jobs.py, images.py, ...).
_explain_build_failure = explain_build_failure
__all__ = ["PROMOTED_FROM", "PROMOTED_TO", "binary_key", "build_binaries_asset", "promotion_prebuilds"]


def _mains(module_dir: Path, services: list[Service], packages: dict[str, GoPackage]) -> dict[str, Service]:
    by_dir = {Path(p.dir).resolve(): p for p in packages.values()}
    return {by_dir[(module_dir / s.path).resolve()].import_path: s for s in services}


def compile_cache(step: "_Step", platform: str) -> contextlib.AbstractContextManager:
    """Around a go build: GOCACHE restored from the bucket's shared compile cache before it and
    saved after it (resources/go_cache.py), so a fresh worker compiles what changed, not the
    standard library and every package; nothing when the cache is turned off."""
    go = step.go
    if not go.compile_cache_prefix:
        return contextlib.nullcontext()
    go_sum = step.module_dir / "go.sum"
    key = compile_cache_key(step.source["toolchain"], platform, step.config.build_flags,
                            go_sum.read_bytes() if go_sum.is_file() else None)
    return SharedGoCache(step.s3, go.compile_cache_prefix, go.compile_cache_max_mb).session(
        go.gocache(), key, step.context.log)


def _progress(step: "_Step", stale: list[Service], platform: str) -> BuildProgress:
    """Packages compiled of all the stale mains need, logged from the step while go runs."""
    closures = step.closures[platform]
    total = closure_size([closures[s.name][0] for s in stale], dict(closures.values()))
    return BuildProgress(total=total, platform=platform, log=step.context.log.info)


def _build_into_cache(step: "_Step", stale: list[Service], keys: dict[str, str], platform: str,
                      built_in: str, on_binary=None) -> None:
    """One `go build` for all stale mains; each binary moves into the local cache under its key
    and goes on to the bucket's build cache (stored while the step goes on)."""
    go, settings, uploads = step.go, step.settings, step.uploads
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="go-out-", dir=settings.cache_dir) as out:
        with compile_cache(step, platform):
            go.build(step.module_dir, [f"./{s.path}" for s in stale], Path(out), platform,
                     step.config.build_flags, on_binary=on_binary,
                     progress=_progress(step, stale, platform))
        for service in stale:
            target = cache_path(settings.cache_dir, keys[service.name], service.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{uuid.uuid4().hex}")
            shutil.move(str(Path(out) / service.build_output), staged)  # go names it after its directory
            sha256 = file_sha256(staged)
            build_store.commit_entry(staged, target, sha256, staged.stat().st_size, built_in)
            uploads.submit(service.name, keys[service.name], sha256)


def _warmup_jobs(stale: list[Service], keys: dict[str, str], platform: str, config: PipelineConfig,
                 release: Release, commit: str, partition: str) -> dict[str, WarmupJob]:
    """The images this env's images step would build from these binaries, as it would build them."""
    rule = config.envs[release.env]
    if platform != config.platforms[0]:  # images are built for the primary platform only
        return {}
    return {s.build_output: WarmupJob(name=s.name, tag=prebuild_tag(keys[s.name]), platform=platform,
                              dockerfile=config.source.kinds[s.kind].dockerfile_path,
                              labels=image_labels(s, keys[s.name], commit, partition))
            for s in services_for(stale, rule.images) if config.source.kinds[s.kind].dockerfile}


@dataclass
class _Step:
    """One run of the binaries step: its resources and what it has found so far, across platforms."""

    context: dg.AssetExecutionContext
    go: GoResource
    docker: DockerResource
    registry: RegistryResource
    s3: S3Resource
    settings: Settings
    config: PipelineConfig
    release: Release
    source: dict
    workspace: ReleaseWorkspace
    uploads: CacheUploads
    results: dict[str, list[BuiltBinary]]
    warm_proofs: dict = field(default_factory=dict)  # service: what its image pushed during the build holds
    file_digests: dict[str, bytes] = field(default_factory=dict)  # one source tree: each file hashed once
    # platform: service name: (main import path, its deps), for the build's packages-of-total
    closures: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)  # (service, platform): origin

    @property
    def module_dir(self) -> Path:
        return Path(self.source["module_dir"])


def _build_stale(step: _Step, stale: list[Service], keys: dict[str, str], platform: str, mains: dict,
                 packages: dict) -> None:
    """Build the stale selected services, their images warming up meanwhile (proofs kept)."""
    partition = str(step.context.partition_key)
    warmup = ImageWarmup(step.docker, step.registry, _warmup_jobs(stale, keys, platform, step.config, step.release,
                                                                  step.source["commit"], partition))
    try:
        _build_into_cache(step, stale, keys, platform, partition, on_binary=warmup if warmup.jobs else None)
    except GoBuildError as exc:
        deps = {ip: set(packages[ip].deps) for ip in mains}
        raise RuntimeError(explain_build_failure(exc, mains, deps)) from None
    finally:
        warmed = warmup.finish()
    step.warm_proofs.update(warmed.proofs)
    if warmup.jobs:
        step.context.log.info(
            f"{platform}: {len(warmed.pushed)}/{len(warmup.jobs)} images built and pushed under their "
            "content-key tag while go was compiling (no release tag yet)"
            + (f"; built but not pushed: {warmed.built}" if warmed.built else "")
            + (f"; not built: {warmed.failed}" if warmed.failed else ""))


def _keys(step: _Step, wanted: list[Service], platform: str) -> tuple[dict[str, str], dict, dict]:
    """Content keys of the wanted services, with go list's packages and mains (by import path)."""
    go, flags = step.go, step.config.build_flags
    # With go build's flags: files behind a -tags constraint are in the build and the key.
    packages = go.list_packages(step.module_dir, [f"./{s.path}" for s in wanted], platform, flags)
    mains = _mains(step.module_dir, wanted, packages)
    step.closures[platform] = {s.name: (ip, packages[ip].deps) for ip, s in mains.items()}
    keys = {s.name: go.content_key(packages[ip], packages, step.module_dir, step.source["toolchain"],
                                   platform, flags, step.file_digests) for ip, s in mains.items()}
    return keys, packages, mains


def _decisions(step: _Step, selected: list[Service], prebuilds: list[Service], keys: dict[str, str],
               platform: str) -> dict[str, BinaryDecision]:
    """Each wanted service's decision: the instance's record of its key, then the caches."""
    context = step.context
    previous = {s.name: find_by_content_key(context.instance, binary_key(s), f"content_key_{platform}",
                                            keys[s.name], exclude_partition=context.partition_key)
                for s in selected}
    records = {n: recorded(p.metadata, p.partition, platform) if p else None for n, p in previous.items()}
    found = build_store.fetch(step.s3, step.settings.cache_dir, {s.name: keys[s.name] for s in (*selected, *prebuilds)},
                              records, context.log.warning)
    return {**{s.name: decide(found[s.name], previous[s.name].partition if previous[s.name] else None)
               for s in selected},
            **{s.name: decide(found[s.name], None, prebuild=True) for s in prebuilds}}


def _placed(step: _Step, service: Service, key: str, platform: str, reused_from: str | None) -> BuiltBinary:
    """The cached bytes of a service in the release folder, as the release records them."""
    cached = cache_path(step.settings.cache_dir, key, service.name)
    build_store.place(cached, step.workspace.out / service.binary_path(platform))
    sha256, size = build_store.sha256_and_size(cached)
    return BuiltBinary(service=service.name, kind=service.kind, platform=platform,
                       path=service.binary_path(platform), sha256=sha256, size=size, content_key=key,
                       reused_from=reused_from)


def _for_platform(step: _Step, selected: list[Service], prebuilds: list[Service],
                  platform: str) -> tuple[dict[str, str], dict[str, BinaryDecision]]:
    """Key every wanted service, find (local cache, bucket) or build the selected ones and place
    them in the release folder. Returns (content keys, decisions) of all wanted services."""
    keys, packages, mains = _keys(step, selected + prebuilds, platform)
    decisions = _decisions(step, selected, prebuilds, keys, platform)
    step.context.log.info(summary_line(platform, {s.name: decisions[s.name] for s in selected}))
    stale = [s for s in selected if decisions[s.name].build]
    if stale:
        _build_stale(step, stale, keys, platform, mains, packages)
    for n, service in enumerate(selected, 1):
        decision = decisions[service.name]
        built = _placed(step, service, keys[service.name], platform, decision.reused_from)
        step.results[service.name].append(built)
        step.origins[(service.name, platform)] = decision.origin
        origin = build_store.cache_record(cache_path(step.settings.cache_dir, built.content_key, service.name))
        step.context.log.info(binary_line(n, len(selected), built, decision, origin.get("built_in", "")))
    return keys, decisions


def _materialize(step: _Step, service: Service) -> dg.MaterializeResult:
    """The binary asset of one service, its metadata across platforms (binary_decisions)."""
    builds = step.results[service.name]
    built_in = {b.platform: build_store.cache_record(
        cache_path(step.settings.cache_dir, b.content_key, service.name)).get("built_in", "") for b in builds}
    metadata = binary_metadata(service, step.source, builds,
                               {b.platform: step.origins[(service.name, b.platform)] for b in builds}, built_in)
    if service.name in step.warm_proofs:  # the images step retags the ck- image on this proof
        metadata.update(proof_metadata(step.warm_proofs[service.name], prefix="ck_image_"))
    return dg.MaterializeResult(asset_key=binary_key(service), metadata=metadata)


def _run(step: _Step, selected: list[Service], prebuilds: list[Service]) -> list[BuiltBinary]:
    """Every platform in turn; the bucket uploads are awaited (and their warnings logged) even
    when a build fails. Returns the prebuilt binaries."""
    prebuilt: list[BuiltBinary] = []
    try:
        for platform in step.config.platforms:
            keys, decisions = _for_platform(step, selected, prebuilds, platform)
            prebuilt += _prebuild(step, prebuilds, keys, decisions, platform)
    finally:
        stored, warnings = step.uploads.finish()
    for warning in warnings:
        step.context.log.warning(warning)
    if stored:
        step.context.log.info(f"{stored} binaries stored in the bucket's build cache "
                              f"{step.s3.uri(step.s3.key(build_store.CACHE_PREFIX, ''))}")
    return prebuilt


def build_binaries_asset(services: list[Service], config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    by_key = {binary_key(s): s for s in services}

    @dg.multi_asset(
        specs=[dg.AssetSpec(key, deps=[SOURCE_KEY], group_name="binaries", kinds={"go"},
                            partitions_def=release_partitions, skippable=True,
                            description=f"{s.kind} binary {s.name} ({s.path})")
               for key, s in by_key.items()],
        can_subset=True, name="binaries", partitions_def=release_partitions,
    )
    def binaries(context: dg.AssetExecutionContext, go: GoResource, docker: DockerResource,
                 registry: RegistryResource, s3: S3Resource):
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source = workspace.source()
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        refuse_missing([s.name for s in selected], {s.name for s in workspace.services()}, release.tag,
                       source["commit"])
        chosen = {s.name for s in selected}
        prebuilds = [s for s in promotion_prebuilds(release.env, workspace.services(), config) if s.name not in chosen]
        step = _Step(context, go, docker, registry, s3, settings, config, release, source, workspace,
                     CacheUploads(s3, settings.cache_dir), {s.name: [] for s in selected})
        prebuilt = _run(step, selected, prebuilds)
        workspace.write_builds([b for builds in step.results.values() for b in builds])
        workspace.write_prebuilds(prebuilt)
        for service in selected:
            yield _materialize(step, service)

    return binaries


def _prebuild(step: _Step, prebuilds: list[Service], keys: dict[str, str],
              decisions: dict[str, BinaryDecision], platform: str) -> list[BuiltBinary]:
    """Build what the promotion will need into the cache (local and bucket); never fails the
    release. Returns the prebuilt binaries (placed in the release folder, so the images step can
    prebuild their images)."""
    context, settings = step.context, step.settings
    stale = [s for s in prebuilds if decisions[s.name].build]
    if stale:
        try:
            _build_into_cache(step, stale, keys, platform, f"{context.partition_key} (for {PROMOTED_TO})")
            context.log.info(f"{platform}: prebuilt {[s.name for s in stale]} into the build cache for the "
                             f"{PROMOTED_TO} release of this commit (not part of this release)")
        except GoBuildError as exc:
            context.log.warning(f"{platform}: prebuilding {[s.name for s in stale]} for {PROMOTED_TO} failed; "
                                f"the {PROMOTED_TO} release will build them itself: {str(exc)[:2000]}")
    return [_placed(step, s, keys[s.name], platform, None) for s in prebuilds
            if cache_path(settings.cache_dir, keys[s.name], s.name).exists()]
