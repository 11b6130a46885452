"""Service layouts: per-kind include/exclude globs and name templates, and every bad input of them.

Bad templates and globs fail when the config is loaded (naming the value); bad layouts of the
monorepo itself (an exclude that leaves a kind empty, a directory of two kinds, two directories
of one name) fail at discovery, which `source`, `plan` and the code location all run first.
"""

from pathlib import Path

import pytest
import yaml

from deploy_assets.config import (
    DEFAULT_CONFIG,
    ConfigError,
    KindLayout,
    Settings,
    load_pipeline_config,
)
from deploy_assets.plan import PlanError, Service, build_plan, discover_services
from deploy_assets.tags import parse_tag

COMMIT = "a" * 40


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


MONOREPO = [
    "go.mod",
    "cmd/auth/main.go",
    "cmd/auth/handlers.go",
    "cmd/things/main.go",
    "cmd/cli/main.go",
    "cmd/cli/commands/ping.go",
    "internal/httpx/httpx.go",
    "lambdas/webhook/main.go",
]
KINDS = {
    "ms": {
        "include": "cmd/*",
        "exclude": ["cmd/cli"],
        "name_template": "ms_{dir}",
        "dockerfile": "ms.Dockerfile",
    },
    "lambdas": {"include": ["lambdas/*"], "name_template": "lambda_{dir}"},
    "cli": {"include": "cmd/cli", "name_template": "cli_{dir}", "dockerfile": "cli.Dockerfile"},
}


def load(tmp_path: Path, kinds: dict):
    """The shipped pipeline.yaml with other kinds, through the loader a deployment uses."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["source"]["kinds"] = kinds
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_pipeline_config(path)


def source(tmp_path: Path, **changes: dict):
    return load(tmp_path, {**KINDS, **changes}).source


def test_the_shipped_glob_config_means_one_include_named_by_its_directory():
    config = load_pipeline_config()
    assert config.source.kinds["ms"] == KindLayout(include=["cmd/ms/*"], dockerfile="ms.Dockerfile")
    assert KindLayout.model_validate({"glob": "cmd/ms/*"}) == KindLayout(include="cmd/ms/*")
    assert (
        config.source.kinds["ms"].name_template == "{dir}"
        and config.source.kinds["ms"].exclude == ()
    )
    assert (
        config.source.kinds["ms"].glob == "cmd/ms/*"
    )  # what messages (and legacy's file listing) show


def test_include_exclude_and_templates_name_every_service(tmp_path):
    config = load(tmp_path, KINDS)
    services = discover_services(MONOREPO, config.source, config.platforms)
    assert services == [
        Service("ms_auth", "ms", "cmd/auth"),
        Service("ms_things", "ms", "cmd/things"),
        Service("lambda_webhook", "lambdas", "lambdas/webhook"),
        Service("cli_cli", "cli", "cmd/cli"),
    ]
    assert [s.build_output for s in services] == ["auth", "things", "webhook", "cli"]

    # Every name a release derives comes from the template: binaries, images, S3 keys, GitOps projects.
    plan = build_plan(parse_tag("v1.0.0"), COMMIT, "tag", services, config, settings(), [])
    assert plan.binaries == [
        "bin_arm64/ms/ms_auth",
        "bin_arm64/ms/ms_things",
        "bin_arm64/lambdas/lambda_webhook",
        "bin_arm64/cli/cli_cli",
    ]
    assert plan.images == {
        n: f"registry.example:5000/{n}:v1.0.0" for n in ("ms_auth", "ms_things", "cli_cli")
    }
    assert sorted(plan.s3_keys.values()) == [
        "binaries/v1.0.0/lambda_webhook",
        "binaries/v1.0.0/ms_auth",
        "binaries/v1.0.0/ms_things",
    ]
    assert plan.gitops_projects == ["ms_auth", "ms_things"]


def test_an_explicit_list_of_directories_is_an_include(tmp_path):
    layout = source(
        tmp_path, ms={"include": ["cmd/auth", "cmd/things"], "name_template": "{dir}-svc"}
    )
    assert [s.name for s in discover_services(MONOREPO, layout) if s.kind == "ms"] == [
        "auth-svc",
        "things-svc",
    ]


def test_a_kind_whose_include_finds_nothing_is_empty_not_an_error(tmp_path):
    layout = source(tmp_path, lambdas={"include": "functions/*"})
    assert [s.kind for s in discover_services(MONOREPO, layout)] == ["ms", "ms", "cli"]


def test_an_exclude_that_leaves_a_kind_no_services_is_refused_naming_kind_and_globs(tmp_path):
    layout = source(tmp_path, ms={"include": "cmd/*", "exclude": ["cmd/cli", "cmd/[at]*"]})
    with pytest.raises(PlanError) as info:
        discover_services(MONOREPO, layout)
    assert str(info.value).startswith(
        "kind ms: exclude ['cmd/cli', 'cmd/[at]*'] removes every directory its include ['cmd/*'] matches "
        "(cmd/auth, cmd/cli, cmd/things), leaving no ms services"
    )


def test_a_directory_matched_by_two_kinds_is_refused_naming_both(tmp_path):
    layout = source(
        tmp_path, ms={"include": "cmd/*", "name_template": "ms_{dir}"}
    )  # no exclude of cmd/cli
    with pytest.raises(
        PlanError, match=r"'cmd/cli' matches the globs of two kinds, ms and cli; exclude it"
    ):
        discover_services(MONOREPO, layout)


def test_two_directories_with_one_templated_name_are_refused_naming_both_paths(tmp_path):
    layout = source(
        tmp_path,
        ms={"include": ["cmd/*", "services/*"], "exclude": "cmd/cli", "name_template": "ms_{dir}"},
    )
    with pytest.raises(
        PlanError, match="two services are named 'ms_auth': cmd/auth and services/auth"
    ):
        discover_services([*MONOREPO, "services/auth/main.go"], layout)


def test_templates_of_two_kinds_may_not_meet(tmp_path):
    # lambdas/ms_auth named by {dir} is the ms kind's ms_auth (cmd/auth): one image, one S3 key.
    layout = source(tmp_path, lambdas={"include": "lambdas/*"})
    with pytest.raises(
        PlanError, match="two services are named 'ms_auth': cmd/auth and lambdas/ms_auth"
    ):
        discover_services([*MONOREPO, "lambdas/ms_auth/main.go"], layout)


def test_a_template_that_makes_a_reserved_name_is_refused(tmp_path):
    layout = source(tmp_path, lambdas={"include": "lambdas/*", "name_template": "{dir}.json"})
    with pytest.raises(
        PlanError,
        match=r"'lambdas/routes' has the reserved name 'routes.json'.*change its kind's "
        "name_template",
    ):
        discover_services([*MONOREPO, "lambdas/routes/main.go"], layout)


def test_a_directory_the_template_cannot_make_safe_is_refused_naming_both(tmp_path):
    with pytest.raises(PlanError) as info:
        discover_services([*MONOREPO, "cmd/Billing/main.go"], source(tmp_path))
    assert str(info.value).startswith(
        "service directory 'cmd/Billing': name 'ms_Billing' (name_template "
        "'ms_{dir}') is not a safe image/binary name"
    )


def test_two_mains_go_would_write_to_one_file_are_refused(tmp_path):
    # `go build -o DIR/` writes cmd/ms/core and cmd/cli/core both as DIR/core, the last one winning.
    layout = source(
        tmp_path,
        ms={"include": "cmd/ms/*", "name_template": "ms_{dir}"},
        cli={"include": "cmd/cli/*", "name_template": "cli_{dir}"},
    )
    with pytest.raises(
        PlanError,
        match=r"'ms_core' \(cmd/ms/core\) and 'cli_core' \(cmd/cli/core\) would both be "
        r"written by go build as 'core'",
    ):
        discover_services(["cmd/ms/core/main.go", "cmd/cli/core/main.go"], layout)


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("ms_service", "has no {dir}"),
        ("{kind}_{dir}", "uses {kind}; only {dir}"),
        ("{dir}_{name}_{env}", "uses {env}, {name}; only {dir}"),
        ("{0}_{dir}", "uses {0}; only {dir}"),
        ("{dir:>8}", "without a format spec or conversion"),
        ("{dir!r}", "without a format spec or conversion"),
        ("{dir", "is not a valid template"),
        ("ms/{dir}", "makes unsafe names (e.g. 'ms/a')"),
        ("../{dir}", "makes unsafe names"),
        (".{dir}", "makes unsafe names (e.g. '.a')"),
        ("-{dir}", "makes unsafe names (e.g. '-a')"),
        ("MS_{dir}", "makes unsafe names (e.g. 'MS_a')"),
        ("ms__{dir}", "makes unsafe names"),
        ("ms {dir}", "makes unsafe names"),
        ("{dir}_", "makes unsafe names"),
        ("ms_{{dir}}", "has no {dir}"),
        ("x" * 128 + "{dir}", "makes unsafe names"),
    ],
)
def test_bad_templates_fail_at_config_load_naming_the_value(tmp_path, template, why):
    with pytest.raises(ConfigError) as info:
        source(tmp_path, ms={"include": "cmd/*", "exclude": "cmd/cli", "name_template": template})
    message = str(info.value)
    assert "source.kinds.ms.name_template" in message and f"name template {template!r}" in message
    assert why in message


@pytest.mark.parametrize(
    ("layout", "why"),
    [
        ({"include": "/cmd/*"}, "glob '/cmd/*' must be a relative path inside the Go module"),
        ({"include": ["cmd/*", "../other/*"]}, "glob '../other/*' must be a relative path"),
        ({"include": "cmd//*"}, "glob 'cmd//*' must be a relative path"),
        ({"include": ""}, "glob '' must be a relative path"),
        ({"include": "cmd/*", "exclude": "./cmd/cli"}, "glob './cmd/cli' must be a relative path"),
        ({"include": "cmd/**"}, "glob 'cmd/**': ** is not supported"),
        ({"include": []}, "at least 1 item"),
        (
            {"glob": "cmd/*", "include": "cmd/*"},
            "give glob ('cmd/*') or include ('cmd/*'), not both",
        ),
        ({"dockerfile": "ms.Dockerfile"}, "include: Field required"),
        (
            {"include": "cmd/*", "exclude": "cmd/cli", "name": "ms_{dir}"},
            "name: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_globs_fail_at_config_load_naming_the_value(tmp_path, layout, why):
    with pytest.raises(ConfigError, match="source.kinds.ms") as info:
        source(tmp_path, ms=layout)
    assert why in str(info.value)
