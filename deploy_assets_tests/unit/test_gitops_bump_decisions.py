"""What the GitOps bump and the API-gateway update decide without a repo, a registry or GitHub:
their upstream assets (from the release matrix), the metadata they record, the old workflows'
inputs, and the per-target lines `deploy-assets status` prints."""

from __future__ import annotations

import dagster as dg

from deploy_assets.assets.gitops_decisions import (
    already_deployed,
    api_gateway_upstream,
    bump_metadata,
    gitops_upstream,
    image_repos,
    version_workflow_inputs,
    workflow_metadata,
)
from deploy_assets.cli.records import format_targets
from deploy_assets.config import load_pipeline_config
from deploy_assets.plan import discover_services
from deploy_assets.resources.github import WorkflowRunOutcome

CONFIG = load_pipeline_config()
SERVICES = discover_services(
    [
        "go.mod",
        "cmd/ms/ms_core/main.go",
        "cmd/ms/ms_chat/main.go",
        "cmd/lambdas/lambda_auth_handler/main.go",
        "cmd/cli/cli_core/main.go",
    ],
    CONFIG.source,
    CONFIG.platforms,
)
IMAGES = ["image/ms_chat", "image/ms_core", "image/cli_core"]  # lambdas: no Dockerfile template
ARTIFACTS = ["s3/ms_chat", "s3/ms_core", "s3/lambda_auth_handler", "s3/cli_core"]


def keys(found: list[dg.AssetKey]) -> list[str]:
    return [k.to_user_string() for k in found]


def test_the_bump_waits_for_every_image_artifact_the_record_and_the_gateway():
    assert keys(gitops_upstream(SERVICES, CONFIG)) == IMAGES + ARTIFACTS + [
        "routes",
        "s3/routes_json",
        "s3/manifest_json",
        "api_gateway_routes",  # prod has an api_gateway_repo
    ]


def test_without_a_gateway_in_any_env_the_bump_does_not_wait_for_one():
    envs = {
        env: rule.model_copy(update={"api_gateway_repo": None}) for env, rule in CONFIG.envs.items()
    }
    config = CONFIG.model_copy(update={"envs": envs})
    assert "api_gateway_routes" not in keys(gitops_upstream(SERVICES, config))


def test_the_gateway_waits_for_the_routes_and_every_image_and_artifact():
    assert keys(api_gateway_upstream(SERVICES, CONFIG)) == (
        ["routes", "s3/routes_json"] + IMAGES + ARTIFACTS
    )


def test_a_deployed_release_is_not_bumped_again_and_says_how_to_move_the_env():
    message, metadata = already_deployed(
        "v1.2.3-dev", "dev", {"gitops_commit": "abc", "changed": True}, "run-1"
    )
    assert message == (
        "v1.2.3-dev was already deployed to dev by run run-1; not bumping again "
        "(use `deploy-assets rollback` to re-point the env)"
    )
    assert metadata == {
        "gitops_commit": "abc",
        "changed": False,
        "already_deployed_by_run": "run-1",
    }


def test_bump_metadata_names_the_repos_mode_version_projects_and_commit():
    rule = CONFIG.envs["prod"]
    assert bump_metadata(rule, "v2.0.0", ["ms_core"], "c0ffee") == {
        "repo": "gitops-production",
        "mode": "git",
        "version": "v2.0.0",
        "projects": ["ms_core"],
        "commit": "c0ffee",
        "updates_routes": False,
    }


def test_the_old_workflow_gets_its_three_string_inputs():
    assert version_workflow_inputs("v1.0.0-dev", ["ms_chat", "ms_core"], True) == {
        "newVersion": "v1.0.0-dev",
        "projectNames": "ms_chat ms_core",
        "updatesRoutes": "true",
    }
    assert version_workflow_inputs("v1.0.0", [], False)["updatesRoutes"] == "false"


def test_the_workflow_run_is_linked_with_its_conclusion():
    url = "https://github.example/o/r/actions/runs/7"
    got = workflow_metadata(WorkflowRunOutcome(run_id=7, conclusion="success", html_url=url))
    assert got == {"workflow_run": dg.MetadataValue.url(url), "conclusion": "success"}


def test_image_repos_are_under_the_registry():
    assert image_repos("registry.local:5000", ["a", "b"]) == {
        "a": "registry.local:5000/a",
        "b": "registry.local:5000/b",
    }


def test_status_prints_each_target_of_an_env_that_writes_several():
    doc = {
        "dev": {"projects": {}},
        "prod": {
            "projects": {},
            "targets": {
                "eu": {"ms_core": "v2.0.0", "ms_chat": "v2.0.0"},
                "us": {"ms_core": "v1.9.0", "ms_chat": None},
                "empty": {},
            },
        },
    }
    assert format_targets(doc) == (
        "\nprod target eu: ms_chat v2.0.0, ms_core v2.0.0"
        "\nprod target us: ms_chat -, ms_core v1.9.0"
        "\nprod target empty: no projects"
    )
    assert format_targets({"dev": {"projects": {}}}) == ""
