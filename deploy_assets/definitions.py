"""Wiring only: assets, checks, jobs, sensor and resources of the code location.

Per-service assets need the service list when the code location loads; it is the recorded
service state (deploy_assets/state/services.py), read without any git, and a run worker gets the
very list the code server had (deploy_assets/state/dagster_private.py). A service that appears
later shows up after `deploy-assets refresh` (or the sensor's refresh) and a code-location
reload; a release that needs it before then fails with a clear message.
"""

from __future__ import annotations

import os

import dagster as dg

from deploy_assets.assets.api_gateway import build_api_gateway_asset
from deploy_assets.assets.artifacts import build_artifacts_asset, build_manifest_asset
from deploy_assets.assets.binaries import build_binaries_asset
from deploy_assets.assets.gitops import build_gitops_asset
from deploy_assets.assets.images import build_images_asset
from deploy_assets.assets.jobs import build_release_jobs
from deploy_assets.assets.routes import build_routes_asset
from deploy_assets.assets.source import build_source_asset
from deploy_assets.checks import build_release_checks
from deploy_assets.config import PipelineConfig, Settings, apply_env_file, load_pipeline_config
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import SERVICES_STATE_KEY
from deploy_assets.plan import Service
from deploy_assets.records.rollback import build_rollback_job
from deploy_assets.resources.credentials import has_credentials
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.git import GitSourceResource
from deploy_assets.resources.github import GitHubResource
from deploy_assets.resources.gitops import GitOpsResource
from deploy_assets.resources.go import GoResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets.sensors.release_tags import build_release_tags_sensor
from deploy_assets.state.dagster_private import state_backed_definitions
from deploy_assets.state.services import ServiceState, load_services


def build_resources(
    settings: Settings, config: PipelineConfig
) -> dict[str, dg.ConfigurableResource]:
    return {
        "git": GitSourceResource(
            remote=_kept_out_of_snapshot(settings.source_repo, "DEPLOY_ASSETS_SOURCE_REPO"),
            cache_dir=str(settings.cache_dir),
        ),
        "go": GoResource(
            cache_dir=str(settings.cache_dir),
            vendored=config.source.vendored,
            memory_limit=config.go_memory_limit,
            compile_cache_prefix=settings.go_compile_cache,
        ),
        "docker": DockerResource(builder=config.image_builder),
        "registry": RegistryResource(host=settings.registry),
        "s3": S3Resource(
            bucket=settings.bucket,
            path=settings.s3_path,
            region=settings.aws_region,
            endpoint_url=settings.s3_endpoint or "",
        ),
        "gitops": GitOpsResource(
            root=_kept_out_of_snapshot(settings.git_root, "DEPLOY_ASSETS_GITOPS_ROOT")
        ),
        "github": GitHubResource(
            api_url=settings.github_api,
            owner=settings.github_owner,
            token=dg.EnvVar("WORKFLOW_PAT") if _has_pat() else "",
            dispatch_id_input=os.environ.get("DEPLOY_ASSETS_GITHUB_DISPATCH_ID_INPUT", ""),
        ),
    }


def _has_pat() -> bool:
    return bool(os.environ.get("WORKFLOW_PAT"))


def _kept_out_of_snapshot(value: str, variable: str) -> str | dg.EnvVar:
    """A remote URL carrying a token, as an EnvVar: a plain value is part of the code location's
    snapshot, which the UI shows to anyone who can open it (Resources page, Launchpad). The
    process environment then holds it, as it does in production where the setting comes from."""
    if not has_credentials(value):
        return value
    os.environ[variable] = value
    return dg.EnvVar(variable)


def build_definitions(
    settings: Settings | None = None,
    config: PipelineConfig | None = None,
    services: list[Service] | None = None,
) -> dg.Definitions:
    settings = settings or Settings.from_env()
    config = config or load_pipeline_config()
    services = list(load_services(settings, config).services) if services is None else services
    matrix = ReleaseMatrix.of(config, services)  # what each env's job selects, one answer
    assets = [
        build_source_asset(config, settings, services),
        build_routes_asset(settings),
        build_binaries_asset(services, config, settings),
        build_images_asset(services, config, settings),
        build_artifacts_asset(services, config, settings),
        build_manifest_asset(services, config, settings),
        build_api_gateway_asset(services, config, settings),
        build_gitops_asset(services, config, settings),
    ]
    jobs = build_release_jobs(matrix)
    return dg.Definitions(
        assets=assets,
        asset_checks=build_release_checks(matrix, config, settings),
        jobs=[*jobs, build_rollback_job(config, settings)],
        sensors=[build_release_tags_sensor(jobs, matrix, settings, config)],
        resources=build_resources(settings, config),
        # One process per run, as `deploy-assets release` does: a step in its own process
        # re-imports the code location (1-2 s each, 16 s for a release that builds nothing),
        # and the steps already run their builds, pushes and uploads concurrently inside them.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev` / the code server, not at import: importing this module is free."""
    apply_env_file()  # misc/envs/local.env unless DEPLOY_ASSETS_ENV_FILE says otherwise; env vars win
    settings, config = Settings.from_env(), load_pipeline_config()
    return state_backed_definitions(
        SERVICES_STATE_KEY,
        fetch=lambda: load_services(settings, config).to_json(),
        build=lambda text: build_definitions(
            settings,
            config,
            list(ServiceState.from_json(text, "recorded by the code server").services),
        ),
    )
