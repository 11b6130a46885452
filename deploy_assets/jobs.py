"""One job per environment, selecting exactly the old system's matrix for that env.

The job, not the asset, decides what a release contains: dev and staging build, push and upload
microservices; prod also builds lambdas and CLIs, pushes CLI images and updates the API gateway.
"""

from __future__ import annotations

import dagster as dg

from deploy_assets.assets.api_gateway import API_GATEWAY_KEY
from deploy_assets.assets.artifacts import MANIFEST_KEY, ROUTES_OBJECT_KEY, artifact_key
from deploy_assets.assets.binaries import binary_key
from deploy_assets.assets.images import image_key
from deploy_assets.assets.routes import ROUTES_KEY
from deploy_assets.assets.source import SOURCE_KEY
from deploy_assets.checks.promotion import PROMOTED_ENV, promotion_check_keys
from deploy_assets.config import PipelineConfig
from deploy_assets.history import GITOPS_KEY
from deploy_assets.plan import Service, job_name, services_for

JOB_DESCRIPTIONS = {
    "dev": "alpha/beta tag: build, push and upload microservices, bump gitops-development",
    "staging": "rc tag: build, push and upload microservices, bump gitops-staging",
    "prod": "release tag: promote staging's bytes, build lambdas and CLIs, update API gateway, bump gitops-production",
}


def env_selection(env: str, services: list[Service], config: PipelineConfig) -> list[dg.AssetKey]:
    rule = config.envs[env]
    built = services_for(services, rule.build)
    keys = [SOURCE_KEY, ROUTES_KEY, ROUTES_OBJECT_KEY, MANIFEST_KEY, GITOPS_KEY]
    keys += [binary_key(s) for s in built]
    keys += [image_key(s) for s in services_for(built, rule.images) if config.source.kinds[s.kind].dockerfile]
    keys += [artifact_key(s) for s in services_for(built, rule.upload)]
    if rule.api_gateway_repo:
        keys.append(API_GATEWAY_KEY)
    return keys


def env_job_selection(env: str, services: list[Service], config: PipelineConfig) -> dg.AssetSelection:
    """The env's assets with their checks (the checklist runs inside the release); the checks
    against a staging release only where a release is promoted from one."""
    selection = dg.AssetSelection.assets(*env_selection(env, services, config))
    if env != PROMOTED_ENV:
        selection = selection - dg.AssetSelection.checks(*promotion_check_keys(services, config))
    return selection


def build_release_jobs(services: list[Service], config: PipelineConfig) -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            name=job_name(env), selection=env_job_selection(env, services, config),
            description=JOB_DESCRIPTIONS.get(env, env),
            tags={"deploy_assets/env": env},
        )
        for env in config.envs
    ]
