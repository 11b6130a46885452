"""The release's source: the tag's commit, exported, its services discovered and validated.

Everything that can be known to be wrong before a build (bad tag for the env, tag missing or
moved, no staging release for a prod tag, a service that is not a main package, two services
with one name) fails here, before any side effect outside the working folder.
"""


import re
from pathlib import Path

import dagster as dg

from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import staging_records
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import PlanError, discover_services, promotion_gate
from deploy_assets.resources.git import GitSourceResource
from deploy_assets.resources.go import GoResource

SOURCE_KEY = dg.AssetKey("source")


def go_mod_version(go_mod: str | None) -> str | None:
    match = re.search(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", go_mod or "", re.MULTILINE)
    return match.group(1) if match else None


def validate_mains(go: GoResource, module_dir: Path, services, platform: str) -> None:
    """Every service directory must be a buildable `package main`; say which one is not."""
    packages = go.list_packages(module_dir, [f"./{s.path}" for s in services], platform)
    by_dir = {Path(p.dir).resolve(): p for p in packages.values()}
    problems = []
    for service in services:
        pkg = by_dir.get((module_dir / service.path).resolve())
        if pkg is None:
            problems.append(f"{service.name} ({service.path}): go list did not find the package")
        elif pkg.error:
            problems.append(f"{service.name} ({service.path}): {pkg.error}")
        elif pkg.name != "main":
            problems.append(f"{service.name} ({service.path}): not a main package (package {pkg.name})")
    if problems:
        raise PlanError("cannot build: " + "; ".join(problems))


def build_source_asset(config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(key=SOURCE_KEY, partitions_def=release_partitions, group_name="release",
              kinds={"git"}, description="The tag's commit, exported into an isolated folder.")
    def source(context: dg.AssetExecutionContext, git: GitSourceResource, go: GoResource) -> dg.MaterializeResult:
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        git.fetch()
        try:
            commit = git.resolve(f"refs/tags/{release.tag}")
        except Exception:
            raise PlanError(f"tag {release.tag} does not exist in {git.remote}") from None
        gate = promotion_gate(release, commit, config, settings, staging_records(context.instance))
        if not gate.passes:
            raise PlanError(f"promotion gate: {release.tag} refused before any side effect: {gate.reason}")
        if release.is_prod:
            context.log.warning(f"promotion gate: {gate.reason}") if "WITHOUT STAGING" in gate.reason \
                else context.log.info(f"promotion gate: {gate.reason}")
        files = git.list_files(commit)
        services = discover_services(files, config.source)
        if not services:
            raise PlanError(f"no services found at {commit[:12]} with globs "
                            f"{[k.glob for k in config.source.kinds.values()]}")
        toolchain = go.version()
        tree = git.export(commit, workspace.src)
        module_dir = tree / config.source.module_root
        validate_mains(go, module_dir, services, config.platforms[0])
        go_mod = go_mod_version(git.read_file(commit, str(Path(config.source.module_root) / "go.mod")))
        workspace.write_source(commit, module_dir, services, go_mod, toolchain)
        context.log.info(f"{release.tag} -> {commit[:12]}: {len(services)} services, toolchain {toolchain}")
        return dg.MaterializeResult(metadata={
            "tag": release.tag, "env": release.env, "commit": commit, "go_mod_go": go_mod or "",
            "toolchain": toolchain, "services": [s.name for s in services],
            "worktree": dg.MetadataValue.path(str(tree)), "promotion_gate": gate.reason,
            "staging_release": gate.staging_tag or "",
        })

    return source
