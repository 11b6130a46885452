"""The release matrix of the example config: what each env builds, images, uploads, prebuilds,
deploys, and which assets and checks its job has."""

from __future__ import annotations

import dagster as dg

from deploy_assets.config import load_pipeline_config
from deploy_assets.matrix import ReleaseMatrix, dockerfile_of, routed_services, with_image
from deploy_assets.plan import discover_services

CONFIG = load_pipeline_config()
FILES = [
    "go.mod",
    "internal/httpx/httpx.go",
    "cmd/ms/ms_core/main.go",
    "cmd/ms/ms_payments/main.go",
    "cmd/ms/ms_chat/main.go",
    "cmd/lambdas/lambda_webhook_handler/main.go",
    "cmd/lambdas/lambda_auth_handler/main.go",
    "cmd/cli/cli_core/main.go",
]
SERVICES = discover_services(FILES, CONFIG.source, CONFIG.platforms)
MS = ["ms_chat", "ms_core", "ms_payments"]
LAMBDAS = ["lambda_auth_handler", "lambda_webhook_handler"]
MATRIX = ReleaseMatrix.of(CONFIG, SERVICES)


def names(services) -> list[str]:
    return [s.name for s in services]


def test_dev_and_staging_build_push_upload_and_deploy_microservices():
    for env in ("dev", "staging"):
        release = MATRIX.env(env)
        assert (release.env, release.job) == (env, f"release_to_{env}")
        for part in (release.built, release.images, release.uploads, release.deployed):
            assert names(part) == MS, (env, part)
        assert release.updates_routes and not release.updates_api_gateway
        assert release.promoted_from is None
        assert release.promoted_images == release.promoted_uploads == ()


def test_staging_prebuilds_what_prod_alone_builds_and_the_images_prod_ships_of_them():
    staging = MATRIX.env("staging")
    assert names(staging.prebuilds) == LAMBDAS + ["cli_core"]
    assert names(staging.prebuilt_images) == ["cli_core"]  # lambdas have no Dockerfile template
    assert MATRIX.env("dev").prebuilds == MATRIX.env("prod").prebuilds == ()


def test_prod_ships_every_kind_and_compares_with_staging_what_both_ship():
    prod = MATRIX.env("prod")
    assert names(prod.built) == MS + LAMBDAS + ["cli_core"]
    assert names(prod.images) == MS + ["cli_core"]
    assert names(prod.uploads) == MS + LAMBDAS
    assert names(prod.deployed) == MS
    assert (prod.updates_routes, prod.updates_api_gateway, prod.promoted_from) == (
        False,
        True,
        "staging",
    )
    assert names(prod.promoted_images) == names(prod.promoted_uploads) == MS
    assert MATRIX.promotion is prod


def test_names_and_keys_of_a_release():
    prod = MATRIX.env("prod")
    assert prod.image_refs("reg:5000", "v1.0.0") == {
        n: f"reg:5000/{n}:v1.0.0" for n in MS + ["cli_core"]
    }
    assert prod.s3_keys("/binaries/", "v1.0.0") == {n: f"binaries/v1.0.0/{n}" for n in MS + LAMBDAS}
    assert prod.record_keys("binaries", "v1.0.0") == {
        n: f"binaries/v1.0.0/{n}" for n in ("routes.json", "manifest.json", "checksums.txt")
    }
    assert [(s.name, p) for s, p in MATRIX.env("dev").builds] == [(n, "arm64") for n in MS]


def test_the_job_selects_the_env_s_assets():
    fixed = {"source", "routes", "s3/routes_json", "s3/manifest_json", "gitops_bump"}
    dev = {k.to_user_string() for k in MATRIX.env("dev").asset_keys}
    assert dev == fixed | {f"{p}/{n}" for p in ("binary", "image", "s3") for n in MS}
    prod = {k.to_user_string() for k in MATRIX.env("prod").asset_keys}
    assert prod == fixed | {"api_gateway_routes"} | {
        f"binary/{n}" for n in MS + LAMBDAS + ["cli_core"]
    } | {f"image/{n}" for n in MS + ["cli_core"]} | {f"s3/{n}" for n in MS + LAMBDAS}


def checks_of(env: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for key in MATRIX.env(env).check_keys:
        found.setdefault(key.name, set()).add(key.asset_key.to_user_string())
    return found


def test_checks_apply_to_what_the_env_ships_and_promotion_checks_only_to_prod():
    dev = checks_of("dev")
    assert dev == {
        "built_with_configured_go": {f"binary/{n}" for n in MS},
        "served_with_recorded_digest": {f"image/{n}" for n in MS},
        "objects_match_build": {f"s3/{n}" for n in MS},
        "objects_match_record": {"s3/routes_json", "s3/manifest_json"},
        "every_ms_has_routes": {"routes"},
        "repo_at_version": {"gitops_bump"},
    }
    assert checks_of("staging") == dev
    prod = checks_of("prod")
    assert prod["same_bytes_as_staging"] == {f"image/{n}" for n in MS} | {f"s3/{n}" for n in MS}
    assert prod["served_with_recorded_digest"] == {f"image/{n}" for n in MS + ["cli_core"]}
    assert all(isinstance(k, dg.AssetCheckKey) for k in MATRIX.env("prod").check_keys)


def test_the_code_location_images_every_service_whose_kind_has_a_template():
    assert names(MATRIX.imaged) == MS + ["cli_core"]
    assert MATRIX.dockerfile(SERVICES[0]).name == "ms.Dockerfile"
    assert MATRIX.dockerfile(next(s for s in SERVICES if s.kind == "lambdas")) is None
    assert names(routed_services(SERVICES)) == MS


def test_one_dockerfile_lookup_answers_for_the_matrix_and_the_image_steps():
    lambdas = next(s for s in SERVICES if s.kind == "lambdas")
    assert dockerfile_of(CONFIG, SERVICES[0]) == MATRIX.dockerfile(SERVICES[0])
    assert dockerfile_of(CONFIG, lambdas) is None
    assert names(with_image(CONFIG, SERVICES)) == names(MATRIX.imaged)
