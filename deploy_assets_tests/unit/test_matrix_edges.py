"""The release matrix of unusual configs: missing envs, kinds without templates, extra platforms,
deploy lists wider than the build, no services, and an env the config has no rule for."""

from __future__ import annotations

import pytest

from deploy_assets.config import PipelineConfig, load_pipeline_config
from deploy_assets.matrix import MatrixError, ReleaseMatrix
from deploy_assets.sensors.release_tags import without_rule
from deploy_assets_tests.unit.test_matrix_envs import CONFIG, LAMBDAS, MS, SERVICES, names


def with_envs(**rules: dict) -> PipelineConfig:
    envs = {env: CONFIG.envs[env].model_copy(update=update) for env, update in rules.items()}
    return CONFIG.model_copy(update={"envs": envs})


def test_an_env_the_config_has_no_rule_for_is_refused_naming_it_and_the_envs_there_are():
    matrix = ReleaseMatrix.of(with_envs(staging={}, prod={}), SERVICES)
    with pytest.raises(MatrixError) as info:
        matrix.env("dev")
    assert str(info.value) == (
        "env 'dev' has no rule in the pipeline config (envs: staging, prod); add "
        "envs.dev to pipeline.yaml or release to a configured env"
    )


def test_the_sensor_launches_no_release_of_an_env_without_a_rule():
    class Log:
        def __init__(self):
            self.errors = []

        def error(self, text):
            self.errors.append(text)

    log = Log()
    matrix = ReleaseMatrix.of(with_envs(staging={}, prod={}), SERVICES)
    kept, refused = without_rule(
        [("v1.0.0-alpha.1", "dev", "a" * 40), ("v1.0.0-rc.1", "staging", "b" * 40)], matrix, log
    )
    assert kept == [("v1.0.0-rc.1", "staging", "b" * 40)]
    assert (
        refused
        == log.errors
        == [
            "tag v1.0.0-alpha.1: env 'dev' has no rule in the pipeline config "
            "(envs: staging, prod); add envs.dev to pipeline.yaml or release to a "
            "configured env"
        ]
    )


def test_without_staging_prod_promotes_nothing_and_has_no_promotion_checks():
    matrix = ReleaseMatrix.of(with_envs(dev={}, prod={}), SERVICES)
    prod = matrix.env("prod")
    assert (
        matrix.promotion is None and prod.promoted_from == "staging"
    )  # the pair is fixed; its ends
    assert prod.promoted_images == prod.promoted_uploads == ()
    assert not [k for k in prod.check_keys if k.name == "same_bytes_as_staging"]


def test_without_prod_staging_prebuilds_nothing():
    staging = ReleaseMatrix.of(with_envs(dev={}, staging={}), SERVICES).env("staging")
    assert staging.prebuilds == staging.prebuilt_images == ()


def test_a_staging_that_builds_what_prod_builds_prebuilds_nothing_and_compares_more():
    config = with_envs(
        dev={}, staging={"build": ["ms", "lambdas", "cli"], "upload": ["ms", "lambdas"]}, prod={}
    )
    matrix = ReleaseMatrix.of(config, SERVICES)
    assert matrix.env("staging").prebuilds == ()
    assert names(matrix.env("prod").promoted_uploads) == MS + LAMBDAS
    assert names(matrix.env("prod").promoted_images) == MS  # staging images ms only


def test_an_imaged_kind_without_a_dockerfile_template_gets_no_image_and_no_image_check():
    matrix = ReleaseMatrix.of(
        with_envs(dev={}, staging={}, prod={"images": ["ms", "lambdas"]}), SERVICES
    )
    prod = matrix.env("prod")
    assert names(prod.images) == MS
    assert {
        k.asset_key.path[1] for k in prod.check_keys if k.name == "served_with_recorded_digest"
    } == set(MS)
    assert names(matrix.env("staging").prebuilt_images) == []  # prod ships no CLI image now


def test_images_and_uploads_come_only_from_what_the_env_builds():
    matrix = ReleaseMatrix.of(
        with_envs(
            dev={"images": ["ms", "cli"], "upload": ["ms", "cli"], "deploy": ["ms", "lambdas"]}
        ),
        SERVICES,
    )
    dev = matrix.env("dev")
    assert names(dev.images) == names(dev.uploads) == names(dev.deployed) == MS


def test_extra_platforms_get_suffixed_objects_and_a_build_each():
    config = CONFIG.model_copy(update={"platforms": ["arm64", "amd64"]})
    dev = ReleaseMatrix.of(config, SERVICES).env("dev")
    assert dev.s3_keys("binaries", "v1.0.0-alpha.1") == {
        **{n: f"binaries/v1.0.0-alpha.1/{n}" for n in MS},
        **{f"{n}_amd64": f"binaries/v1.0.0-alpha.1/{n}_amd64" for n in MS},
    }
    assert [(s.name, p) for s, p in dev.builds][:2] == [("ms_chat", "arm64"), ("ms_chat", "amd64")]
    assert dev.objects["ms_core_amd64"] == (SERVICES[1], "amd64")


def test_no_services_leave_only_the_release_record_and_the_bump():
    matrix = ReleaseMatrix.of(load_pipeline_config(), [])
    for release in matrix.envs.values():
        assert release.built == release.images == release.uploads == release.deployed == ()
        assert {k.to_user_string() for k in release.asset_keys} - {"api_gateway_routes"} == {
            "source",
            "routes",
            "s3/routes_json",
            "s3/manifest_json",
            "gitops_bump",
        }
        assert release.s3_keys("binaries", "v1.0.0") == {}
    assert matrix.imaged == ()
