"""The release's source: the tag's commit, exported, its services discovered and validated.

Everything that can be known to be wrong before a build (bad tag for the env, tag missing or
moved, no staging release for a prod tag, a service that is not a main package, two services
with one name, a missing Dockerfile template, a registry, S3 endpoint or Docker engine that does
not answer) fails here, before any side effect outside the working folder: a release that cannot
push its images must not upload its binaries first, and the reverse.
"""

import dataclasses
import re
from pathlib import Path

import dagster as dg

from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.source_checks import (  # noqa: F401 (RELOAD_HINT re-exported)
    RELOAD_HINT,
    DestinationUnreachable,
    built_services,
    check_destinations,
    check_dockerfiles,
    check_known,
    validate_mains,
)
from deploy_assets.assets.source_export import ExportPlan, export_plan, tree_size
from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.names import COMMIT_TAG, SOURCE_KEY  # noqa: F401 (re-exported)
from deploy_assets.plan import PlanError, PromotionGate, Service, discover_services, promotion_gate
from deploy_assets.records.history import latest_for_partition, staging_records
from deploy_assets.resources import preflight
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.git import GitError, GitSourceResource
from deploy_assets.resources.gitops import GitOpsResource
from deploy_assets.resources.go import GoResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets.tags import Release


def go_mod_version(go_mod: str | None) -> str | None:
    match = re.search(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", go_mod or "", re.MULTILINE)
    return match.group(1) if match else None


def moved_since_released(
    tag: str, commit: str, released_commit: object, released_run: str
) -> str | None:
    """Why a release of `tag` cannot go on when this partition's last source saw another commit."""
    if released_commit in (None, commit):
        return None
    return (
        f"tag {tag} MOVED from {str(released_commit)[:12]} (released by run {released_run}) to "
        f"{commit[:12]}: a release tag must not move; create a new tag instead"
    )


def moved_since_requested(tag: str, commit: str, requested: str | None) -> str | None:
    """Why a run cannot go on when its tag points elsewhere than when the run was requested."""
    if not requested or requested == commit:
        return None
    return (
        f"tag {tag} MOVED from {requested[:12]} (when this release was requested) to "
        f"{commit[:12]}: a release tag must not move; create a new tag instead"
    )


def gate_verdict(release: Release, gate: PromotionGate) -> tuple[str, str]:
    """(log level, message) of the promotion gate for this release; a closed gate raises. A prod
    release let through without a staging release is the explicit bypass: said loudly."""
    if not gate.passes:
        raise PlanError(
            f"promotion gate: {release.tag} refused before any side effect: {gate.reason}"
        )
    if not release.is_prod:
        return "debug", f"promotion gate: {gate.reason}"
    return ("warning" if gate.staging_tag is None else "info"), f"promotion gate: {gate.reason}"


def tag_commit(context: dg.AssetExecutionContext, git: GitSourceResource, release: Release) -> str:
    """The tag's commit in a fresh mirror, refused when the tag is missing or has moved."""
    git.fetch()
    try:
        commit = git.resolve(f"refs/tags/{release.tag}")
    except GitError:
        raise PlanError(f"tag {release.tag} does not exist in {git.display_remote}") from None
    released = latest_for_partition(context.instance, SOURCE_KEY, context.partition_key)
    problem = moved_since_requested(release.tag, commit, context.run.tags.get(COMMIT_TAG))
    if released:
        problem = (
            moved_since_released(
                release.tag, commit, released.metadata.get("commit"), released.run_id
            )
            or problem
        )
    if problem:
        raise PlanError(problem)
    return commit


def release_services(
    files: list[str], config: PipelineConfig, env: str, known: set[str], commit: str
) -> list[Service]:
    """The commit's services, each known to the code location and with its Dockerfile."""
    services = discover_services(files, config.source, config.platforms)
    if not services:
        raise PlanError(
            f"no services found at {commit[:12]} with globs "
            f"{[k.glob for k in config.source.kinds.values()]}"
        )
    check_known(services, known, env, config, commit)
    check_dockerfiles(config, env, services)
    return services


def source_metadata(
    release: Release,
    commit: str,
    toolchain: str,
    go_mod: str | None,
    tree: Path,
    gate: PromotionGate,
    services: list[Service],
    config: PipelineConfig,
    export: ExportPlan,
) -> dict:
    files, size = tree_size(tree)
    return {
        "tag": release.tag,
        "env": release.env,
        "commit": commit,
        "go_mod_go": go_mod or "",
        "toolchain": toolchain,
        "services": [s.name for s in services],
        "worktree": dg.MetadataValue.path(str(tree)),
        "promotion_gate": gate.reason,
        "staging_release": gate.staging_tag or "",
        # What a step alone on a fresh worker restores the release's work folder from.
        "service_records": dg.MetadataValue.json([dataclasses.asdict(s) for s in services]),
        "module_root": config.source.module_root,
        "export_paths": list(export.paths),
        "export_reason": export.reason,
        "export_files": files,
        "export_bytes": size,
    }


def check_before_build(
    config: PipelineConfig,
    settings: Settings,
    release: Release,
    services: list[Service],
    module_dir: Path,
    go: GoResource,
    docker: DockerResource,
    registry: RegistryResource,
    s3: S3Resource,
    gitops: GitOpsResource,
) -> None:
    """What the exported tree and the destinations must pass before the first side effect: the
    services this env builds are main packages, every destination answers, the env repos hold
    the files the bump will write."""
    # Only what this env builds must compile as a main: a dev release builds no lambdas.
    built = built_services(config, release.env, services)
    validate_mains(go, module_dir, built, config.platforms[0], config.build_flags)
    check_destinations(config, release.env, services, release.tag, docker, registry, s3)
    try:  # a missing env repo or file must fail before images and objects exist
        preflight.check_env_repos(
            gitops, config, release.env, release.tag, services, settings.registry
        )
    except preflight.PreflightError as exc:
        raise (DestinationUnreachable if exc.unreachable else PlanError)(str(exc)) from None


def build_source_asset(
    config: PipelineConfig, settings: Settings, known: list[Service]
) -> dg.AssetsDefinition:
    known_names = {s.name for s in known}
    go_mod_path = str(Path(config.source.module_root) / "go.mod")

    @dg.asset(
        key=SOURCE_KEY,
        partitions_def=release_partitions,
        group_name="release",
        kinds={"git"},
        description="The tag's commit, exported into an isolated folder.",
    )
    def source(
        context: dg.AssetExecutionContext,
        git: GitSourceResource,
        go: GoResource,
        docker: DockerResource,
        registry: RegistryResource,
        s3: S3Resource,
        gitops: GitOpsResource,
    ) -> dg.MaterializeResult:
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        commit = tag_commit(context, git, release)
        gate = promotion_gate(release, commit, config, settings, staging_records(context.instance))
        level, message = gate_verdict(release, gate)
        getattr(context.log, level)(message)
        files = git.list_files(commit)
        services = release_services(files, config, release.env, known_names, commit)
        go_mod_text = git.read_file(commit, go_mod_path)
        export = export_plan(config.source.module_root, go_mod_text, files, config.source.vendored)
        toolchain = go.version()
        tree = git.export(commit, workspace.src, export.paths)
        module_dir = tree / config.source.module_root
        check_before_build(
            config, settings, release, services, module_dir, go, docker, registry, s3, gitops
        )
        go_mod = go_mod_version(go_mod_text)
        workspace.write_source(commit, module_dir, services, go_mod, toolchain)
        context.log.info(
            f"{release.tag} -> {commit[:12]}: {len(services)} services, toolchain "
            f"{toolchain}; exported {', '.join(export.paths)} ({export.reason})"
        )
        return dg.MaterializeResult(
            metadata=source_metadata(
                release, commit, toolchain, go_mod, tree, gate, services, config, export
            )
        )

    return source
