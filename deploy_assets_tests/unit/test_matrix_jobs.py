"""The code location's jobs and `deploy-assets plan` say what the release matrix says, per env.

The jobs are resolved from real Definitions (nothing runs); the plan is plan.build_plan, which
computes its images, S3 keys and GitOps projects on its own today: any difference from the matrix
is drift between what `deploy-assets plan` promises and what a run does.
"""

from __future__ import annotations

import pytest

from deploy_assets.config import Settings
from deploy_assets.definitions import build_definitions
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.plan import StagingRecord, build_plan
from deploy_assets.tags import parse_tag
from deploy_assets_tests.unit.test_matrix_envs import CONFIG, SERVICES

TAGS = {"dev": "v1.2.0-alpha.1", "staging": "v1.2.0-rc.1", "prod": "v1.2.0"}
COMMIT = "c" * 40


def settings(tmp_path) -> Settings:
    return Settings.from_env(
        {
            "DEPLOY_ASSETS_REGISTRY": "registry.example:5000",
            "APP_ARCHIVER_PATH": "/binaries/",
            "DEPLOY_ASSETS_LOCAL_DIR": str(tmp_path),
        }
    )


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    return build_definitions(settings(tmp_path_factory.mktemp("local")), CONFIG, SERVICES)


@pytest.mark.parametrize("env", list(TAGS))
def test_each_env_job_selects_the_matrix_s_assets_and_checks(defs, env):
    release = ReleaseMatrix.of(CONFIG, SERVICES).env(env)
    job = defs.resolve_job_def(release.job)
    assert set(job.asset_layer.selected_asset_keys) == set(release.asset_keys)
    assert set(job.asset_layer.asset_graph.asset_check_keys) == set(release.check_keys)


@pytest.mark.parametrize("platforms", [["arm64"], ["arm64", "amd64"]])
@pytest.mark.parametrize("env", list(TAGS))
def test_the_plan_names_the_matrix_s_images_objects_and_projects(tmp_path, env, platforms):
    config = CONFIG.model_copy(update={"platforms": platforms})
    release = ReleaseMatrix.of(config, SERVICES).env(env)
    tag, where = TAGS[env], settings(tmp_path)
    plan = build_plan(
        parse_tag(tag),
        COMMIT,
        "tag",
        SERVICES,
        config,
        where,
        [StagingRecord(TAGS["staging"], COMMIT)],
    )
    assert plan.job == release.job
    assert plan.services == [s.name for s in release.built]
    assert plan.binaries == [s.binary_path(p) for s, p in release.builds]
    assert plan.images == release.image_refs(where.registry, tag)
    assert plan.s3_keys == release.s3_keys(where.s3_path, tag)
    assert plan.gitops_projects == [s.name for s in release.deployed]
    assert (plan.updates_routes, bool(plan.api_gateway_repo)) == (
        release.updates_routes,
        release.updates_api_gateway,
    )
