"""The binaries step's builds: one `go build` for the stale mains of a platform, with the shared
compile cache around it, their images warming up while go compiles and compile progress logged,
each binary moved into the build cache under its content key and on to the bucket.

`BinariesStep` holds one run's resources and findings; binaries.py decides what to build
(binary_decisions.py) and calls these. Prebuilds for the promotion go through the same build and
never fail the release (a warning: the promoted env builds them itself).
"""

import contextlib
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from deploy_assets.assets import build_store
from deploy_assets.assets.binary_decisions import BinaryDecision, explain_build_failure
from deploy_assets.assets.build_store import CacheUploads, cache_path
from deploy_assets.assets.image_recipe import image_labels, prebuild_tag
from deploy_assets.assets.image_warmup import ImageWarmup, WarmupJob
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import PROMOTED_TO
from deploy_assets.plan import Service
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.go import GoBuildError, GoPackage, GoResource
from deploy_assets.resources.go_build_events import BuildProgress, closure_size
from deploy_assets.resources.go_cache import SharedGoCache, compile_cache_key
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource, file_sha256
from deploy_assets.tags import Release


def mains_of(
    module_dir: Path, services: list[Service], packages: dict[str, GoPackage]
) -> dict[str, Service]:
    by_dir = {Path(p.dir).resolve(): p for p in packages.values()}
    return {by_dir[(module_dir / s.path).resolve()].import_path: s for s in services}


def compile_cache(step: "BinariesStep", platform: str) -> contextlib.AbstractContextManager:
    """Around a go build: GOCACHE restored from the bucket's shared compile cache before it and
    saved after it (resources/go_cache.py), so a fresh worker compiles what changed, not the
    standard library and every package; nothing when the cache is turned off."""
    go = step.go
    if not go.compile_cache_prefix:
        return contextlib.nullcontext()
    go_sum = step.module_dir / "go.sum"
    key = compile_cache_key(
        step.source["toolchain"],
        platform,
        step.config.build_flags,
        go_sum.read_bytes() if go_sum.is_file() else None,
    )
    return SharedGoCache(step.s3, go.compile_cache_prefix, go.compile_cache_max_mb).session(
        go.gocache(), key, step.context.log
    )


def _progress(step: "BinariesStep", stale: list[Service], platform: str) -> BuildProgress:
    """Packages compiled of all the stale mains need, logged from the step while go runs."""
    closures = step.closures[platform]
    total = closure_size([closures[s.name][0] for s in stale], dict(closures.values()))
    return BuildProgress(total=total, platform=platform, log=step.context.log.info)


def build_into_cache(
    step: "BinariesStep",
    stale: list[Service],
    keys: dict[str, str],
    platform: str,
    built_in: str,
    on_binary=None,
) -> None:
    """One `go build` for all stale mains; each binary moves into the local cache under its key
    and goes on to the bucket's build cache (stored while the step goes on)."""
    go, settings, uploads = step.go, step.settings, step.uploads
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="go-out-", dir=settings.cache_dir) as out:
        with compile_cache(step, platform):
            go.build(
                step.module_dir,
                [f"./{s.path}" for s in stale],
                Path(out),
                platform,
                step.config.build_flags,
                on_binary=on_binary,
                progress=_progress(step, stale, platform),
            )
        for service in stale:
            target = cache_path(settings.cache_dir, keys[service.name], service.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{uuid.uuid4().hex}")
            # go names the binary after its directory (build_output), not after the service
            shutil.move(str(Path(out) / service.build_output), staged)
            sha256 = file_sha256(staged)
            build_store.commit_entry(staged, target, sha256, staged.stat().st_size, built_in)
            uploads.submit(service.name, keys[service.name], sha256)


def _warmup_jobs(
    stale: list[Service],
    keys: dict[str, str],
    platform: str,
    config: PipelineConfig,
    release: Release,
    commit: str,
    partition: str,
) -> dict[str, WarmupJob]:
    """The images this env's images step would build from these binaries, as it would build them."""
    if platform != config.platforms[0]:  # images are built for the primary platform only
        return {}
    matrix = ReleaseMatrix.of(config, stale)
    return {
        s.build_output: WarmupJob(
            name=s.name,
            tag=prebuild_tag(keys[s.name]),
            platform=platform,
            dockerfile=matrix.dockerfile(s),
            labels=image_labels(s, keys[s.name], commit, partition),
        )
        for s in matrix.env(release.env).images
    }


@dataclass
class BinariesStep:
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
    # service: what its image pushed during the build holds
    warm_proofs: dict = field(default_factory=dict)
    # one source tree: each file hashed once
    file_digests: dict[str, bytes] = field(default_factory=dict)
    # platform: service name: (main import path, its deps), for the build's packages-of-total
    closures: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)  # (service, platform): origin

    @property
    def module_dir(self) -> Path:
        return Path(self.source["module_dir"])


def build_stale(
    step: BinariesStep,
    stale: list[Service],
    keys: dict[str, str],
    platform: str,
    mains: dict,
    packages: dict,
) -> None:
    """Build the stale selected services, their images warming up meanwhile (proofs kept)."""
    partition = str(step.context.partition_key)
    warmup = ImageWarmup(
        step.docker,
        step.registry,
        _warmup_jobs(
            stale, keys, platform, step.config, step.release, step.source["commit"], partition
        ),
    )
    try:
        build_into_cache(
            step, stale, keys, platform, partition, on_binary=warmup if warmup.jobs else None
        )
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
            + (f"; not built: {warmed.failed}" if warmed.failed else "")
        )


def placed(
    step: BinariesStep, service: Service, key: str, platform: str, reused_from: str | None
) -> BuiltBinary:
    """The cached bytes of a service in the release folder, as the release records them."""
    cached = cache_path(step.settings.cache_dir, key, service.name)
    build_store.place(cached, step.workspace.out / service.binary_path(platform))
    sha256, size = build_store.sha256_and_size(cached)
    return BuiltBinary(
        service=service.name,
        kind=service.kind,
        platform=platform,
        path=service.binary_path(platform),
        sha256=sha256,
        size=size,
        content_key=key,
        reused_from=reused_from,
    )


def prebuild(
    step: BinariesStep,
    prebuilds: list[Service],
    keys: dict[str, str],
    decisions: dict[str, BinaryDecision],
    platform: str,
) -> list[BuiltBinary]:
    """Build what the promotion will need into the cache (local and bucket); never fails the
    release. Returns the prebuilt binaries (placed in the release folder, so the images step can
    prebuild their images)."""
    context, settings = step.context, step.settings
    stale = [s for s in prebuilds if decisions[s.name].build]
    if stale:
        try:
            build_into_cache(
                step, stale, keys, platform, f"{context.partition_key} (for {PROMOTED_TO})"
            )
            context.log.info(
                f"{platform}: prebuilt {[s.name for s in stale]} into the build cache for the "
                f"{PROMOTED_TO} release of this commit (not part of this release)"
            )
        except GoBuildError as exc:
            context.log.warning(
                f"{platform}: prebuilding {[s.name for s in stale]} for {PROMOTED_TO} failed; "
                f"the {PROMOTED_TO} release will build them itself: {str(exc)[:2000]}"
            )
    return [
        placed(step, s, keys[s.name], platform, None)
        for s in prebuilds
        if cache_path(settings.cache_dir, keys[s.name], s.name).exists()
    ]
