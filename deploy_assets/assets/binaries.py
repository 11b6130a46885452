"""Go binaries, one asset per service, built in batches and reused by content key.

A service is rebuilt only when its content key (every file of its dependency closure plus
toolchain, platform and flags) has no bytes in the build cache; otherwise the cached bytes are
used and the metadata names the release that built them. Stale services of one platform are
built by one `go build` invocation, which parallelizes across cores with one shared GOCACHE.

Build once, promote: a staging release also builds, into the build cache only, the services
that the prod release of its commit will need and staging does not ship (lambdas, CLIs in the
old matrix). The prod tag then finds every binary by content key and runs no `go build`. Those
prebuilds are not part of the staging release: they are not materialized, and a failure among
them is a warning (prod would build them, and fail, itself).
"""


import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import dagster as dg

from deploy_assets.assets.image_recipe import image_labels, prebuild_tag, proof_metadata
from deploy_assets.assets.image_warmup import ImageWarmup, WarmupJob
from deploy_assets.assets.source import SOURCE_KEY
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import asset_key_for, find_by_content_key
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service, services_for
from deploy_assets.release import Release
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.go import GoBuildError, GoPackage, GoResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import file_sha256

# The promotion path of the old matrix: prod promotes what staging validated.
PROMOTED_FROM, PROMOTED_TO = "staging", "prod"


def binary_key(service: Service) -> dg.AssetKey:
    return asset_key_for("binary", service.name)


def _explain_build_failure(exc: GoBuildError, mains: dict[str, Service], deps: dict[str, set[str]]) -> str:
    """Name the services whose build failed, and the cause, from go's per-package output."""
    lines = []
    for package, output in exc.by_package.items():
        if package in mains:
            service = mains[package]
            lines.append(f"{service.name} ({service.path}): {output}")
        else:
            users = sorted(mains[m].name for m, d in deps.items() if package in d)
            lines.append(f"{package} (used by {', '.join(users) or 'unknown'}): {output}")
    return "go build failed for " + "\n".join(lines)


def _cache_path(settings: Settings, content_key: str, name: str) -> Path:
    return settings.cache_dir / "builds" / content_key[:2] / content_key / name


def promotion_prebuilds(env: str, services: list[Service], config: PipelineConfig) -> list[Service]:
    """At the env prod promotes from: the services prod builds and this env does not."""
    if env != PROMOTED_FROM or PROMOTED_TO not in config.envs:
        return []
    own = set(config.envs[env].build)
    return [s for s in services_for(services, config.envs[PROMOTED_TO].build) if s.kind not in own]


def _mains(module_dir: Path, services: list[Service], packages: dict[str, GoPackage]) -> dict[str, Service]:
    by_dir = {Path(p.dir).resolve(): p for p in packages.values()}
    return {by_dir[(module_dir / s.path).resolve()].import_path: s for s in services}


def _build_into_cache(go: GoResource, settings: Settings, module_dir: Path, stale: list[Service],
                      keys: dict[str, str], platform: str, flags: list[str], built_in: str,
                      on_binary=None) -> None:
    """One `go build` for all stale mains; each binary moves into the cache under its key."""
    with tempfile.TemporaryDirectory(prefix="go-out-", dir=settings.cache_dir) as out:
        go.build(module_dir, [f"./{s.path}" for s in stale], Path(out), platform, flags, on_binary=on_binary)
        for service in stale:
            target = _cache_path(settings, keys[service.name], service.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{uuid.uuid4().hex}")
            shutil.move(str(Path(out) / service.name), staged)
            staged.chmod(0o555)  # shared by hard links with release folders: never written again
            record = staged.with_suffix(".json")
            record.write_text(json.dumps({"built_in": built_in, "sha256": file_sha256(staged),
                                          "size": staged.stat().st_size}))
            record.replace(target.with_name(f"{service.name}.json"))
            staged.replace(target)


def _warmup_jobs(stale: list[Service], keys: dict[str, str], platform: str, config: PipelineConfig,
                 release: Release, commit: str, partition: str) -> dict[str, WarmupJob]:
    """The images this env's images step would build from these binaries, as it would build them."""
    rule = config.envs[release.env]
    if platform != config.platforms[0]:  # images are built for the primary platform only
        return {}
    return {s.name: WarmupJob(name=s.name, tag=prebuild_tag(keys[s.name]), platform=platform,
                              dockerfile=config.source.kinds[s.kind].dockerfile_path,
                              labels=image_labels(s, keys[s.name], commit, partition))
            for s in services_for(stale, rule.images) if config.source.kinds[s.kind].dockerfile}


def _place(cached: Path, dest: Path) -> None:
    """The cached bytes at dest: a hard link (no copy of tens of MB) where the disk allows."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(cached, dest)
    except OSError:
        shutil.copy2(cached, dest)


def _cache_record(cached: Path) -> dict:
    """What was recorded beside cached bytes when they were built: which release built them, and
    their sha256 and size (older cache entries may lack some)."""
    try:
        return json.loads(cached.with_name(f"{cached.name}.json").read_text())
    except (OSError, ValueError):
        return {}


def _built_in(cached: Path) -> str:
    return _cache_record(cached).get("built_in", "")


def _sha256_and_size(cached: Path) -> tuple[str, int]:
    """The cached bytes' digest as recorded at build time, so a release that reuses twenty
    binaries does not hash hundreds of MB again; the blocking toolchain check hashes the bytes
    before anything is pushed, so a damaged cache entry still stops the release."""
    record, size = _cache_record(cached), cached.stat().st_size
    if record.get("sha256") and record.get("size") == size:
        return record["sha256"], size
    return file_sha256(cached), size


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
                 registry: RegistryResource):
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source = workspace.source()
        module_dir = Path(source["module_dir"])
        toolchain = source["toolchain"]
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        present = {s.name for s in workspace.services()}
        missing = [s.name for s in selected if s.name not in present]
        if missing:
            raise RuntimeError(f"services {missing} are not in {release.tag} ({source['commit'][:12]})")
        chosen = {s.name for s in selected}
        prebuilds = [s for s in promotion_prebuilds(release.env, workspace.services(), config) if s.name not in chosen]
        partition = str(context.partition_key)
        results: dict[str, list[BuiltBinary]] = {s.name: [] for s in selected}
        prebuilt: list[BuiltBinary] = []
        file_digests: dict[str, bytes] = {}  # one source tree: each file hashed once for all keys
        warm_proofs = {}  # service: what its image pushed during the build holds (image_recipe.prove)
        for platform in config.platforms:
            wanted = selected + prebuilds
            # With go build's flags: files behind a -tags constraint are in the build and the key.
            packages = go.list_packages(module_dir, [f"./{s.path}" for s in wanted], platform, config.build_flags)
            mains = _mains(module_dir, wanted, packages)
            keys = {s.name: go.content_key(packages[ip], packages, module_dir, toolchain, platform, config.build_flags,
                                           file_digests)
                    for ip, s in mains.items()}
            stale = [s for s in selected if not _cache_path(settings, keys[s.name], s.name).exists()]
            context.log.info(f"{platform}: {len(selected) - len(stale)}/{len(selected)} binaries reused by "
                             f"content key, building {[s.name for s in stale]}")
            if stale:
                warmup = ImageWarmup(docker, registry, _warmup_jobs(stale, keys, platform, config, release,
                                                                    source["commit"], partition))
                try:
                    _build_into_cache(go, settings, module_dir, stale, keys, platform, config.build_flags, partition,
                                      on_binary=warmup if warmup.jobs else None)
                except GoBuildError as exc:
                    deps = {ip: set(packages[ip].deps) for ip in mains}
                    raise RuntimeError(_explain_build_failure(exc, mains, deps)) from None
                finally:
                    warmed = warmup.finish()
                warm_proofs.update(warmed.proofs)
                if warmup.jobs:
                    context.log.info(
                        f"{platform}: {len(warmed.pushed)}/{len(warmup.jobs)} images built and pushed under their "
                        "content-key tag while go was compiling (no release tag yet)"
                        + (f"; built but not pushed: {warmed.built}" if warmed.built else "")
                        + (f"; not built: {warmed.failed}" if warmed.failed else ""))
            for n, service in enumerate(selected, 1):
                cached = _cache_path(settings, keys[service.name], service.name)
                dest = workspace.out / service.binary_path(platform)
                _place(cached, dest)
                previous = None
                if service not in stale:
                    previous = find_by_content_key(context.instance, binary_key(service),
                                                   f"content_key_{platform}", keys[service.name],
                                                   exclude_partition=context.partition_key)
                sha256, size = _sha256_and_size(cached)
                built = BuiltBinary(service=service.name, kind=service.kind, platform=platform,
                                    path=service.binary_path(platform), sha256=sha256,
                                    size=size, content_key=keys[service.name],
                                    reused_from=previous.partition if previous else None)
                results[service.name].append(built)
                origin = _built_in(cached)
                how = ("built" if service in stale else f"reused from {built.reused_from}" if built.reused_from
                       else f"cached (built in {origin or 'an earlier run'})")
                context.log.info(f"binaries {n}/{len(selected)} {platform} {service.name}: "
                                 f"{built.size} bytes sha256 {built.sha256[:16]} {how}")
            prebuilt += _prebuild(context, go, settings, workspace, module_dir, prebuilds, keys, platform,
                                  config.build_flags, partition)
        workspace.write_builds([b for builds in results.values() for b in builds])
        workspace.write_prebuilds(prebuilt)
        for service in selected:
            metadata: dict = {"commit": source["commit"], "toolchain": toolchain, "kind": service.kind}
            for b in results[service.name]:
                cached = _cache_path(settings, b.content_key, service.name)
                metadata.update({
                    f"sha256_{b.platform}": b.sha256, f"size_{b.platform}": b.size,
                    f"path_{b.platform}": b.path, f"content_key_{b.platform}": b.content_key,
                    f"built_in_{b.platform}": _built_in(cached),
                })
            reused = [b.reused_from for b in results[service.name] if b.reused_from]
            metadata["reused_from"] = reused[0] if reused else ""
            if service.name in warm_proofs:  # the images step retags the ck- image on this proof
                metadata.update(proof_metadata(warm_proofs[service.name], prefix="ck_image_"))
            yield dg.MaterializeResult(asset_key=binary_key(service), metadata=metadata)

    return binaries


def _prebuild(context, go: GoResource, settings: Settings, workspace: ReleaseWorkspace, module_dir: Path,
              prebuilds: list[Service], keys: dict[str, str], platform: str, flags: list[str],
              partition: str) -> list[BuiltBinary]:
    """Build what the promotion will need into the cache; never fails the release. Returns the
    prebuilt binaries (placed in the release folder, so the images step can prebuild their images)."""
    stale = [s for s in prebuilds if not _cache_path(settings, keys[s.name], s.name).exists()]
    if stale:
        try:
            _build_into_cache(go, settings, module_dir, stale, keys, platform, flags,
                              f"{partition} (for {PROMOTED_TO})")
            context.log.info(f"{platform}: prebuilt {[s.name for s in stale]} into the build cache for the "
                             f"{PROMOTED_TO} release of this commit (not part of this release)")
        except GoBuildError as exc:
            context.log.warning(f"{platform}: prebuilding {[s.name for s in stale]} for {PROMOTED_TO} failed; "
                                f"the {PROMOTED_TO} release will build them itself: {str(exc)[:2000]}")
    placed = []
    for service in prebuilds:
        cached = _cache_path(settings, keys[service.name], service.name)
        if not cached.exists():
            continue
        dest = workspace.out / service.binary_path(platform)
        _place(cached, dest)
        sha256, size = _sha256_and_size(cached)
        placed.append(BuiltBinary(service=service.name, kind=service.kind, platform=platform,
                                  path=service.binary_path(platform), sha256=sha256,
                                  size=size, content_key=keys[service.name], reused_from=None))
    return placed
