"""The plan: which services a monorepo has, whether prod may go ahead, and every name a release uses."""

import pytest

from deploy_assets.config import (
    PipelineConfig,
    PromotionRule,
    Settings,
    SourceLayout,
    load_pipeline_config,
)
from deploy_assets.plan import (
    PlanError,
    Service,
    StagingRecord,
    build_plan,
    discover_services,
    promotion_gate,
)
from deploy_assets.tags import parse_tag

CONFIG = load_pipeline_config()
COMMIT = "a" * 40
OTHER_COMMIT = "b" * 40
EXAMPLE_FILES = [
    "go.mod",
    "cmd/ms/ms_core/main.go",
    "cmd/ms/ms_core/handlers.go",
    "cmd/ms/ms_core/main_test.go",
    "cmd/ms/ms_payments/main.go",
    "cmd/ms/ms_chat/main.go",
    "cmd/ms/README.md",
    "cmd/lambdas/lambda_webhook_handler/main.go",
    "cmd/lambdas/lambda_auth_handler/main.go",
    "cmd/cli/cli_core/main.go",
    "internal/httpx/httpx.go",
    "cmd/ms/ms_core/handlers/routes.go",
    "cmd/ms/only_tests/x_test.go",
    "cmd/ms/docs/index.html",
]


def settings(**overrides: str) -> Settings:
    return Settings.from_env(
        {
            "DEPLOY_ASSETS_REGISTRY": "registry.example:5000",
            "APP_ARCHIVER_BUCKET": "app-artifacts",
            "APP_ARCHIVER_PATH": "/binaries/",
            "DEPLOY_ASSETS_LOCAL_DIR": "/nonexistent",
            **overrides,
        }
    )


def test_services_are_found_per_kind_and_sorted():
    services = discover_services(EXAMPLE_FILES, CONFIG.source)
    assert services == [
        Service("ms_chat", "ms", "cmd/ms/ms_chat"),
        Service("ms_core", "ms", "cmd/ms/ms_core"),
        Service("ms_payments", "ms", "cmd/ms/ms_payments"),
        Service("lambda_auth_handler", "lambdas", "cmd/lambdas/lambda_auth_handler"),
        Service("lambda_webhook_handler", "lambdas", "cmd/lambdas/lambda_webhook_handler"),
        Service("cli_core", "cli", "cmd/cli/cli_core"),
    ]
    assert services[1].binary_path("arm64") == "bin_arm64/ms/ms_core"
    assert services[3].binary_path("amd64") == "bin_amd64/lambdas/lambda_auth_handler"


def test_the_go_module_may_live_in_a_subfolder():
    source = SourceLayout(module_root="backend", kinds=CONFIG.source.kinds)
    files = [
        "backend/go.mod",
        "backend/cmd/ms/ms_core/main.go",
        "backend/cmd/cli/cli_core/main.go",
        "cmd/ms/not_in_module/main.go",
        "tools/cmd/ms/ms_tool/main.go",
    ]
    assert discover_services(files, source) == [
        Service("ms_core", "ms", "cmd/ms/ms_core"),
        Service("cli_core", "cli", "cmd/cli/cli_core"),
    ]


@pytest.mark.parametrize(
    "directory",
    [
        "cmd/ms/ms core",  # space
        "cmd/ms/..",  # parent directory
        "cmd/ms/ms..core",  # doubled separator
        "cmd/ms/ms_c\u00f6re",  # unicode
        "cmd/ms/-ms_core",  # leading dash (would read as a flag)
        "cmd/ms/MS_Core",  # uppercase (registries refuse it)
        "cmd/ms/ms_core;id",  # shell metacharacter
        "cmd/ms/.hidden",
        "cmd/lambdas/" + "x" * 129,
    ],
)
def test_unsafe_service_names_are_refused_naming_the_directory(directory):
    with pytest.raises(PlanError) as info:
        discover_services(["cmd/ms/ms_core/main.go", f"{directory}/main.go"], CONFIG.source)
    assert f"service directory {directory!r}" in str(info.value)
    assert "is not a safe image/binary name" in str(info.value)


def test_two_services_with_one_name_are_refused_naming_both_paths():
    files = ["cmd/ms/ms_core/main.go", "cmd/lambdas/ms_core/main.go"]
    with pytest.raises(
        PlanError, match="two services are named 'ms_core': cmd/ms/ms_core and cmd/lambdas/ms_core"
    ):
        discover_services(files, CONFIG.source)


def test_names_that_would_share_an_asset_key_are_refused():
    files = ["cmd/ms/ms-core/main.go", "cmd/cli/ms_core/main.go"]
    with pytest.raises(
        PlanError,
        match=r"'ms-core' \(cmd/ms/ms-core\) and 'ms_core' \(cmd/cli/ms_core\) "
        r"would share the asset name 'ms_core'",
    ):
        discover_services(files, CONFIG.source)


def test_overlapping_globs_are_refused_naming_both_kinds():
    kinds = {
        **CONFIG.source.kinds,
        "cli": CONFIG.source.kinds["cli"].model_copy(update={"include": ("cmd/*/*",)}),
    }
    source = SourceLayout(kinds=kinds)
    with pytest.raises(
        PlanError, match="'cmd/ms/ms_core' matches the globs of two kinds, ms and cli"
    ):
        discover_services(["cmd/ms/ms_core/main.go"], source)


@pytest.mark.parametrize(
    ("directory", "clash"),
    [
        ("cmd/ms/routes.json", "the S3 key of the release record's routes.json"),
        ("cmd/lambdas/manifest.json", "the S3 key of the release record's manifest.json"),
        ("cmd/ms/checksums.txt", "the S3 key of the release record's checksums.txt"),
        ("cmd/ms/routes_json", "the asset key s3/routes_json of the release record's routes.json"),
        (
            "cmd/cli/manifest-json",
            "the asset key s3/manifest_json of the release record's manifest.json",
        ),
    ],
)
def test_names_of_the_release_record_are_reserved(directory, clash):
    with pytest.raises(PlanError) as info:
        discover_services(
            ["cmd/ms/ms_core/main.go", f"{directory}/main.go"], CONFIG.source, CONFIG.platforms
        )
    name = directory.rsplit("/", 1)[1]
    assert str(info.value).startswith(
        f"service directory {directory!r} has the reserved name {name!r}: it would take {clash}"
    )
    assert "routes.json, manifest.json, checksums.txt" in str(info.value)


def test_reserved_names_are_refused_without_platforms_too():
    with pytest.raises(PlanError, match="reserved name 'routes.json'"):
        discover_services(["cmd/ms/routes.json/main.go"], CONFIG.source)


def test_an_extra_platform_suffix_may_not_meet_another_service():
    files = ["cmd/ms/ms_core/main.go", "cmd/lambdas/ms_core_amd64/main.go"]
    with pytest.raises(PlanError) as info:
        discover_services(files, CONFIG.source, ["arm64", "amd64"])
    assert str(info.value).startswith(
        "services cmd/lambdas/ms_core_amd64 (arm64) and cmd/ms/ms_core (amd64) would both be stored as "
        "S3 object 'ms_core_amd64'"
    )
    # The same pair is fine with one platform (no suffixes), and with the suffix of another platform.
    assert len(discover_services(files, CONFIG.source, ["arm64"])) == 2
    assert len(discover_services(files, CONFIG.source, ["amd64", "arm64"])) == 2
    with pytest.raises(PlanError, match="S3 object 'ms_core_arm64'"):
        discover_services(
            ["cmd/ms/ms_core/main.go", "cmd/ms/ms_core_arm64/main.go"],
            CONFIG.source,
            ["amd64", "arm64"],
        )


# --- promotion gate -------------------------------------------------------------------------


def config_with(**promotion: bool) -> PipelineConfig:
    return CONFIG.model_copy(update={"promotion": PromotionRule(**promotion)})


def test_dev_and_staging_need_no_gate():
    for tag in ("v1.0.0-alpha.1", "v1.0.0-rc.1"):
        gate = promotion_gate(parse_tag(tag), COMMIT, CONFIG, settings(), [])
        assert gate.passes and gate.staging_tag is None


def test_prod_passes_on_the_commit_its_latest_rc_validated():
    staging = [
        StagingRecord("v1.0.0-rc.2", COMMIT),
        StagingRecord("v1.0.0-rc.10", COMMIT),
        StagingRecord("v1.0.0-rc.11", OTHER_COMMIT),
        StagingRecord("v1.0.1-rc.12", COMMIT),
        StagingRecord("v1.0.0-alpha.3", COMMIT),
        StagingRecord("garbage", COMMIT),
    ]
    gate = promotion_gate(parse_tag("v1.0.0"), COMMIT, CONFIG, settings(), staging)
    assert gate.passes
    assert gate.staging_tag == "v1.0.0-rc.10"  # numeric order, same commit only
    assert gate.reason == f"staging release v1.0.0-rc.10 validated commit {COMMIT[:12]}"


def test_prod_fails_without_staging_on_its_commit_and_says_what_it_saw():
    staging = [StagingRecord("v1.0.0-rc.1", OTHER_COMMIT), StagingRecord("v1.0.1-rc.1", COMMIT)]
    gate = promotion_gate(parse_tag("v1.0.0"), COMMIT, CONFIG, settings(), staging)
    assert not gate.passes and gate.staging_tag is None
    assert gate.reason == (
        f"no successful staging release v1.0.0-rc.N on commit {COMMIT[:12]} "
        f"(staging releases of 1.0.0: v1.0.0-rc.1@{OTHER_COMMIT[:12]})"
    )
    assert not promotion_gate(parse_tag("v1.0.0"), COMMIT, CONFIG, settings(), []).passes


def test_a_staging_release_rolled_back_from_validates_nothing_and_the_reason_names_the_rollback():
    rollback = (
        "rolled back from v1.0.0-rc.2 to v1.0.0-rc.1 by alice at 2026-01-02T03:04:05+00:00 (run r1)"
    )
    staging = [
        StagingRecord("v1.0.0-rc.2", COMMIT, rolled_back=rollback),
        StagingRecord("v1.0.0-rc.1", OTHER_COMMIT),
    ]
    gate = promotion_gate(parse_tag("v1.0.0"), COMMIT, CONFIG, settings(), staging)
    assert not gate.passes and gate.staging_tag is None
    assert gate.reason == (
        f"no successful staging release v1.0.0-rc.N on commit {COMMIT[:12]} (staging releases of "
        f"1.0.0: v1.0.0-rc.2@{COMMIT[:12]} ({rollback}), v1.0.0-rc.1@{OTHER_COMMIT[:12]})"
    )
    # Nor does it count when any commit would do; the rc staging went back to does.
    loose = promotion_gate(
        parse_tag("v1.0.0"), COMMIT, config_with(same_commit=False), settings(), staging
    )
    assert loose.passes and loose.staging_tag == "v1.0.0-rc.1"


def test_without_same_commit_any_successful_rc_of_the_version_counts():
    staging = [StagingRecord("v1.0.0-rc.1", OTHER_COMMIT)]
    gate = promotion_gate(
        parse_tag("v1.0.0"), COMMIT, config_with(same_commit=False), settings(), staging
    )
    assert gate.passes and gate.staging_tag == "v1.0.0-rc.1"


@pytest.mark.parametrize(
    ("config", "env", "switch"),
    [
        (config_with(require_staging=False), {}, "promotion.require_staging=false"),
        (
            CONFIG,
            {"DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING": "true"},
            "DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING",
        ),
    ],
)
def test_an_explicit_switch_lets_prod_through_loudly(config, env, switch):
    gate = promotion_gate(parse_tag("v1.0.0"), COMMIT, config, settings(**env), [])
    assert gate.passes and gate.staging_tag is None
    assert gate.reason.startswith(
        f"ALLOWED WITHOUT STAGING by explicit switch {switch}: no successful v1.0.0-rc.N"
    )


# --- the plan -------------------------------------------------------------------------------

SERVICES = discover_services(EXAMPLE_FILES, CONFIG.source)


def test_dev_plan_builds_pushes_and_uploads_microservices_only():
    plan = build_plan(parse_tag("v0.1.0-alpha.1"), COMMIT, "tag", SERVICES, CONFIG, settings(), [])
    assert (plan.env, plan.job, plan.commit, plan.commit_source) == (
        "dev",
        "release_to_dev",
        COMMIT,
        "tag",
    )
    assert plan.services == ["ms_chat", "ms_core", "ms_payments"]
    assert plan.binaries == [
        "bin_arm64/ms/ms_chat",
        "bin_arm64/ms/ms_core",
        "bin_arm64/ms/ms_payments",
    ]
    assert plan.images == {n: f"registry.example:5000/{n}:v0.1.0-alpha.1" for n in plan.services}
    assert plan.s3_keys == {n: f"binaries/v0.1.0-alpha.1/{n}" for n in plan.services}
    assert (plan.gitops_repo, plan.gitops_projects, plan.updates_routes, plan.api_gateway_repo) == (
        "gitops-development",
        ["ms_chat", "ms_core", "ms_payments"],
        True,
        None,
    )
    assert plan.gate.passes
    assert plan.to_json()["gate"] == {
        "passes": True,
        "reason": "dev releases need no staging validation",
        "staging_tag": None,
    }


def test_prod_plan_adds_lambdas_clis_and_the_api_gateway():
    staging = [StagingRecord("v1.0.0-rc.1", COMMIT)]
    plan = build_plan(parse_tag("v1.0.0"), COMMIT, "tag", SERVICES, CONFIG, settings(), staging)
    assert plan.job == "release_to_prod" and plan.gate.staging_tag == "v1.0.0-rc.1"
    assert plan.binaries == [
        "bin_arm64/ms/ms_chat",
        "bin_arm64/ms/ms_core",
        "bin_arm64/ms/ms_payments",
        "bin_arm64/lambdas/lambda_auth_handler",
        "bin_arm64/lambdas/lambda_webhook_handler",
        "bin_arm64/cli/cli_core",
    ]
    assert plan.images == {
        n: f"registry.example:5000/{n}:v1.0.0"
        for n in ("ms_chat", "ms_core", "ms_payments", "cli_core")
    }
    assert plan.s3_keys == {
        n: f"binaries/v1.0.0/{n}"
        for n in (
            "ms_chat",
            "ms_core",
            "ms_payments",
            "lambda_auth_handler",
            "lambda_webhook_handler",
        )
    }
    assert (plan.gitops_repo, plan.gitops_projects, plan.updates_routes, plan.api_gateway_repo) == (
        "gitops-production",
        ["ms_chat", "ms_core", "ms_payments"],
        False,
        "terraform-apps-production",
    )


def test_extra_platforms_get_their_own_binaries_and_s3_objects():
    config = CONFIG.model_copy(update={"platforms": ["arm64", "amd64"]})
    plan = build_plan(parse_tag("v0.1.0-rc.1"), COMMIT, "tag", SERVICES[:1], config, settings(), [])
    assert plan.binaries == ["bin_arm64/ms/ms_chat", "bin_amd64/ms/ms_chat"]
    assert plan.s3_keys == {
        "ms_chat": "binaries/v0.1.0-rc.1/ms_chat",
        "ms_chat_amd64": "binaries/v0.1.0-rc.1/ms_chat_amd64",
    }
    assert plan.images == {"ms_chat": "registry.example:5000/ms_chat:v0.1.0-rc.1"}


def test_a_kind_without_a_dockerfile_template_gets_no_image():
    envs = {
        **CONFIG.envs,
        "prod": CONFIG.envs["prod"].model_copy(update={"images": ["ms", "lambdas"]}),
    }
    plan = build_plan(
        parse_tag("v1.0.0"),
        COMMIT,
        "tag",
        SERVICES,
        CONFIG.model_copy(update={"envs": envs}),
        settings(DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING="1"),
        [],
    )
    assert sorted(plan.images) == ["ms_chat", "ms_core", "ms_payments"]
