"""Build once, promote the same bytes; and never prod without staging.

The facts are asked from the systems themselves: digests from the registry, objects and their
sha256 from the S3 API, commits from the git repos. Dagster metadata is checked for what it
claims (what was reused, from which release).
"""

import json
import logging

import boto3
import dagster as dg
import requests
import yaml

from deploy_assets.config import Settings
from deploy_assets.resources.git import run_git
from deploy_assets_tests.assets.run_events import step_failures, user_logs

MS = ["ms_chat", "ms_core", "ms_payments"]
LAMBDAS = ["lambda_auth_handler", "lambda_webhook_handler"]
PROD_REPOS = ("gitops-production", "terraform-apps-production")


def s3_keys(harness, prefix: str) -> list[str]:
    client = boto3.client(
        "s3", endpoint_url=harness.settings.s3_endpoint, region_name=harness.settings.aws_region
    )
    listing = client.list_objects_v2(Bucket=harness.settings.bucket, Prefix=prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def registry_repositories(harness) -> list[str]:
    catalog = requests.get(f"http://{harness.settings.registry}/v2/_catalog", timeout=10)
    catalog.raise_for_status()
    return catalog.json()["repositories"] or []


def show(harness, repo: str, path: str) -> str:
    return run_git(["show", f"main:{path}"], cwd=f"{harness.settings.git_root}/{repo}.git").decode()


def assert_prod_untouched(harness, tag: str) -> None:
    for name in MS + ["cli_core"]:
        assert harness.registry.manifest_digest(name, tag) is None, name
    assert s3_keys(harness, f"binaries/{tag}/") == []
    for repo in PROD_REPOS:
        assert len(harness.gitops_log(repo)) == 1, repo


def test_prod_promotes_the_bytes_staging_validated(harness):
    rc = harness.release("v0.1.0-rc.1")
    assert rc.success, rc.error
    prod = harness.release("v0.1.0")  # same commit
    assert prod.success, prod.error

    staging, production = "staging|v0.1.0-rc.1", "prod|v0.1.0"
    assert harness.metadata("source", production)["staging_release"] == "v0.1.0-rc.1"
    for name in MS:
        rc_digest = harness.registry.manifest_digest(name, "v0.1.0-rc.1")
        assert rc_digest and harness.registry.manifest_digest(name, "v0.1.0") == rc_digest, name
        image = harness.metadata(f"image/{name}", production)
        assert image["action"] == f"retagged from {staging}" and image["digest"] == rc_digest

        binary = harness.metadata(f"binary/{name}", production)
        assert binary["reused_from"] == staging  # no go build: the content key's bytes were there
        assert binary["sha256_arm64"] == harness.metadata(f"binary/{name}", staging)["sha256_arm64"]

        s3 = harness.metadata(f"s3/{name}", production)
        assert s3["action_arm64"] == f"copied from binaries/v0.1.0-rc.1/{name}"
        assert harness.s3.download_sha256(f"binaries/v0.1.0/{name}") == harness.s3.download_sha256(
            f"binaries/v0.1.0-rc.1/{name}"
        )

    # Staging ships no CLI or lambdas but prebuilt them: prod runs no docker build for the CLI, it
    # retags the image staging left under its content key; lambdas are copied from the bucket's build
    # cache, where staging stored them (no bytes uploaded again).
    cli_image = harness.metadata("image/cli_core", production)
    assert cli_image["action"] == f"retagged from the image prebuilt in {staging}"
    assert cli_image["reused_from"] == staging
    prebuilt = harness.registry.manifest_digest("cli_core", f"ck-{cli_image['content_key']}")
    assert (
        prebuilt
        and harness.registry.manifest_digest("cli_core", "v0.1.0")
        == cli_image["digest"]
        == prebuilt
    )
    assert (
        harness.registry.image_labels("cli_core", "v0.1.0")["io.deploy-assets.content-key"]
        == harness.metadata("binary/cli_core", production)["content_key_arm64"]
    )
    assert harness.registry.manifest_platform("cli_core", "v0.1.0") == "linux/arm64"
    assert harness.registry.manifest_digest("cli_core", "v0.1.0-rc.1") is None
    assert not harness.instance.fetch_materializations(  # a prebuild is not part of the staging release
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(["image", "cli_core"]), asset_partitions=[staging]
        ),
        limit=1,
    ).records
    for name in LAMBDAS:
        binary = harness.metadata(f"binary/{name}", production)
        assert binary["reused_from"] == ""
        assert (
            harness.metadata(f"s3/{name}", production)["action_arm64"]
            == f"copied from the build cache binaries/build-cache/{binary['content_key_arm64']}/{name}"
        )
        assert harness.s3.download_sha256(f"binaries/v0.1.0/{name}")[0] == binary["sha256_arm64"]
    stored = s3_keys(harness, "binaries/v0.1.0/")
    assert {f"binaries/v0.1.0/{n}" for n in MS + LAMBDAS} <= set(stored)
    assert "binaries/v0.1.0/cli_core" not in stored  # CLIs are images only, as in the old matrix

    for repo in ("gitops-staging", "gitops-production", "terraform-apps-production"):
        log = harness.gitops_log(repo)
        assert len(log) == 2, (repo, log)
    assert harness.gitops_log("gitops-production")[0].endswith(
        f"deploy(prod): {' '.join(MS)} -> v0.1.0"
    )
    kustomization = yaml.safe_load(
        show(harness, "gitops-production", "apps/ms_core/kustomization.yaml")
    )
    assert kustomization["images"][0]["newTag"] == "v0.1.0"
    tfvars = json.loads(
        show(harness, "terraform-apps-production", "api_gateway/routes.auto.tfvars.json")
    )
    assert tfvars["api_version"] == "v0.1.0"
    assert {"service": "ms_core", "method": "GET", "path": "/healthz"} in tfvars["routes"]
    routes = harness.metadata("api_gateway_routes", production)
    assert routes["gitops_commit"] == harness.gitops_log("terraform-apps-production")[0].split()[0]


def test_prod_tag_without_a_staging_release_fails_before_any_side_effect(harness):
    outcome = harness.release("v0.2.0")

    assert not outcome.success
    failures = step_failures(harness.instance, outcome.run_id)
    assert list(failures) == ["source"]
    assert "v0.2.0 refused before any side effect" in failures["source"]
    assert (
        f"no successful staging release v0.2.0-rc.N on commit {harness.monorepo.head()[:12]}"
        in failures["source"]
    )
    assert "(staging releases of 0.2.0: none)" in failures["source"]
    assert registry_repositories(harness) == []  # nothing pushed at all, under any tag
    assert_prod_untouched(harness, "v0.2.0")


def test_prod_tag_on_another_commit_than_its_rc_is_refused(harness):
    rc = harness.release("v0.3.0-rc.1")
    assert rc.success, rc.error
    validated = harness.monorepo.head()
    harness.monorepo.write(
        "cmd/ms/ms_core/hotfix.go", "package main\n\nconst hotfix = 1\n\nvar _ = hotfix\n"
    )
    unvalidated = harness.monorepo.commit("a change staging never saw")

    outcome = harness.release("v0.3.0")

    assert not outcome.success
    error = step_failures(harness.instance, outcome.run_id)["source"]
    assert f"no successful staging release v0.3.0-rc.N on commit {unvalidated[:12]}" in error
    assert f"v0.3.0-rc.1@{validated[:12]}" in error
    assert_prod_untouched(harness, "v0.3.0")


def test_the_explicit_switch_allows_prod_without_staging_and_says_so(harness):
    assert Settings.from_env(
        {"DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING": "1"}
    ).allow_prod_without_staging
    harness.settings = harness.settings.model_copy(update={"allow_prod_without_staging": True})
    harness.reload()

    outcome = harness.release("v0.4.0")

    assert outcome.success, outcome.error
    warnings = user_logs(harness.instance, outcome.run_id, logging.WARNING)
    assert any(
        "ALLOWED WITHOUT STAGING by explicit switch" in w and "no successful v0.4.0-rc.N" in w
        for w in warnings
    ), warnings
    assert "ALLOWED WITHOUT STAGING" in harness.metadata("source", "prod|v0.4.0")["promotion_gate"]
    for name in MS:
        image = harness.metadata(f"image/{name}", "prod|v0.4.0")
        assert image["action"] == "built and pushed"
        assert harness.registry.manifest_digest(name, "v0.4.0") == image["digest"]
    assert len(harness.gitops_log("gitops-production")) == 2
