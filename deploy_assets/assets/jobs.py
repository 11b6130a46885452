"""One job per environment, selecting exactly the release matrix's assets and checks for that env.

The job, not the asset, decides what a release contains: dev and staging build, push and upload
microservices; prod also builds lambdas and CLIs, pushes CLI images and updates the API gateway.
What each env gets is the matrix's answer (deploy_assets/matrix.py), not recomputed here.
"""

from __future__ import annotations

import dagster as dg

from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import ENV_TAG

JOB_DESCRIPTIONS = {
    "dev": "alpha/beta tag: build, push and upload microservices, bump gitops-development",
    "staging": "rc tag: build, push and upload microservices, bump gitops-staging",
    "prod": "release tag: promote staging's bytes, build lambdas and CLIs, update API gateway, bump gitops-production",
}


def env_job_selection(env: str, matrix: ReleaseMatrix) -> dg.AssetSelection:
    """The env's assets with the checks that apply to them (the checklist runs inside the
    release): the promotion checks only in the env promoted from another's release."""
    release = matrix.env(env)
    selection = dg.AssetSelection.assets(*release.asset_keys).without_checks()
    return selection | dg.AssetSelection.checks(*release.check_keys)


def build_release_jobs(matrix: ReleaseMatrix) -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            name=release.job,
            selection=env_job_selection(env, matrix),
            description=JOB_DESCRIPTIONS.get(env, env),
            tags={ENV_TAG: env},
        )
        for env, release in matrix.envs.items()
    ]
