"""Go binaries, one asset per service, built in batches and reused by content key.

A service is rebuilt only when its content key (every file of its dependency closure plus
toolchain, platform and flags) has no bytes in the build cache; otherwise the cached bytes are
used and the metadata names the release that built them. Stale services of one platform are
built by one `go build` invocation, which parallelizes across cores with one shared GOCACHE.
"""


import shutil
import tempfile
import uuid
from pathlib import Path

import dagster as dg

from deploy_assets.assets.source import SOURCE_KEY
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import asset_key_for, find_by_content_key
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service
from deploy_assets.resources.go import GoBuildError, GoResource
from deploy_assets.resources.s3 import file_sha256


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


def build_binaries_asset(services: list[Service], config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    by_key = {binary_key(s): s for s in services}

    @dg.multi_asset(
        specs=[dg.AssetSpec(key, deps=[SOURCE_KEY], group_name="binaries", kinds={"go"},
                            partitions_def=release_partitions, skippable=True,
                            description=f"{s.kind} binary {s.name} ({s.path})")
               for key, s in by_key.items()],
        can_subset=True, name="binaries", partitions_def=release_partitions,
    )
    def binaries(context: dg.AssetExecutionContext, go: GoResource):
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source = workspace.source()
        module_dir = Path(source["module_dir"])
        toolchain = source["toolchain"]
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        present = {s.name for s in workspace.services()}
        missing = [s.name for s in selected if s.name not in present]
        if missing:
            raise RuntimeError(f"services {missing} are not in {release.tag} ({source['commit'][:12]})")
        results: dict[str, list[BuiltBinary]] = {s.name: [] for s in selected}
        for platform in config.platforms:
            packages = go.list_packages(module_dir, [f"./{s.path}" for s in selected], platform)
            by_dir = {Path(p.dir).resolve(): p for p in packages.values()}
            mains = {by_dir[(module_dir / s.path).resolve()].import_path: s for s in selected}
            keys = {s.name: go.content_key(p_main, packages, module_dir, toolchain, platform, config.build_flags)
                    for ip, s in mains.items() for p_main in [packages[ip]]}
            stale = [s for s in selected if not _cache_path(settings, keys[s.name], s.name).exists()]
            context.log.info(f"{platform}: {len(selected) - len(stale)}/{len(selected)} binaries reused by "
                             f"content key, building {[s.name for s in stale]}")
            if stale:
                with tempfile.TemporaryDirectory(prefix="go-out-", dir=settings.cache_dir) as out:
                    try:
                        go.build(module_dir, [f"./{s.path}" for s in stale], Path(out), platform,
                                 config.build_flags)
                    except GoBuildError as exc:
                        deps = {ip: set(packages[ip].deps) for ip in mains}
                        raise RuntimeError(_explain_build_failure(exc, mains, deps)) from None
                    for service in stale:
                        target = _cache_path(settings, keys[service.name], service.name)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        staged = target.with_name(f".{uuid.uuid4().hex}")
                        shutil.move(str(Path(out) / service.name), staged)
                        staged.replace(target)
            for n, service in enumerate(selected, 1):
                cached = _cache_path(settings, keys[service.name], service.name)
                dest = workspace.out / service.binary_path(platform)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(cached, dest)
                previous = None
                if service not in stale:
                    previous = find_by_content_key(context.instance, binary_key(service),
                                                   f"content_key_{platform}", keys[service.name],
                                                   exclude_partition=context.partition_key)
                built = BuiltBinary(service=service.name, kind=service.kind, platform=platform,
                                    path=service.binary_path(platform), sha256=file_sha256(dest),
                                    size=dest.stat().st_size, content_key=keys[service.name],
                                    reused_from=previous.partition if previous else None)
                results[service.name].append(built)
                context.log.info(f"binaries {n}/{len(selected)} {platform} {service.name}: "
                                 f"{built.size} bytes sha256 {built.sha256[:16]} "
                                 f"{'reused from ' + built.reused_from if built.reused_from else ('cached' if service not in stale else 'built')}")
        workspace.write_builds([b for builds in results.values() for b in builds])
        for service in selected:
            metadata: dict = {"commit": source["commit"], "toolchain": toolchain, "kind": service.kind}
            for b in results[service.name]:
                metadata.update({
                    f"sha256_{b.platform}": b.sha256, f"size_{b.platform}": b.size,
                    f"path_{b.platform}": b.path, f"content_key_{b.platform}": b.content_key,
                })
            reused = [b.reused_from for b in results[service.name] if b.reused_from]
            metadata["reused_from"] = reused[0] if reused else ""
            yield dg.MaterializeResult(asset_key=binary_key(service), metadata=metadata)

    return binaries
