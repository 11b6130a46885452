"""The release matrix is what a release does: alpha -> rc -> final of the example monorepo, and
after each, the systems themselves are asked what the release left there.

Per env: the registry's repositories carrying the release tag are the matrix's images (and the
content-key tags of the images staging prebuilds for prod are there too); the bucket's keys in
`{version}/` are its S3 objects and the release record, and the build cache holds exactly the
binaries built or prebuilt so far; the env repo holds a file for each project the matrix deploys,
at the version; the run materialized the matrix's asset keys and evaluated its checks. The plan
(plan.build_plan) must name the same images, S3 keys and GitOps projects.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import boto3
import dagster as dg
import requests
import yaml

from deploy_assets.matrix import EnvMatrix, ReleaseMatrix
from deploy_assets.plan import StagingRecord, build_plan, discover_services
from deploy_assets.resources.git import run_git
from deploy_assets.tags import parse_tag

TAGS = ("v0.1.0-alpha.1", "v0.1.0-rc.1", "v0.1.0")
GITOPS_REPOS = {
    "dev": "gitops-development",
    "staging": "gitops-staging",
    "prod": "gitops-production",
}


def registry_tags(harness) -> dict[str, set[str]]:
    """repository -> its tags, as the registry's API lists them."""
    base = f"http://{harness.settings.registry}/v2"
    catalog = requests.get(f"{base}/_catalog", timeout=10)
    catalog.raise_for_status()
    tags = {}
    for name in catalog.json()["repositories"] or []:
        listing = requests.get(f"{base}/{name}/tags/list", timeout=10)
        listing.raise_for_status()
        tags[name] = set(listing.json().get("tags") or [])
    return tags


def bucket_keys(harness, prefix: str) -> set[str]:
    client = boto3.client(
        "s3", endpoint_url=harness.settings.s3_endpoint, region_name=harness.settings.aws_region
    )
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=harness.settings.bucket, Prefix=prefix
    )
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def env_repo_projects(harness, repo: str) -> dict[str, str]:
    """project -> the image tag its kustomization.yaml sets, read from the env repo's main."""
    bare = f"{harness.settings.git_root}/{repo}.git"
    files = run_git(["ls-tree", "-r", "--name-only", "main"], cwd=bare).decode().split()
    found = {}
    for path in files:
        parts = PurePosixPath(path).parts
        if len(parts) == 3 and parts[0] == "apps" and parts[2] == "kustomization.yaml":
            doc = yaml.safe_load(run_git(["show", f"main:{path}"], cwd=bare))
            found[parts[1]] = doc["images"][0]["newTag"]
    return found


def routes_files(harness, repo: str) -> set[str]:
    bare = f"{harness.settings.git_root}/{repo}.git"
    files = run_git(["ls-tree", "-r", "--name-only", "main"], cwd=bare).decode().split()
    return {
        PurePosixPath(p).parts[1]
        for p in files
        if p.startswith("apps/") and p.endswith("/routes.json")
    }


def run_keys(harness, run_id: str) -> tuple[set[dg.AssetKey], set[dg.AssetCheckKey]]:
    """(asset keys materialized, check keys evaluated) by the run, from its event log."""
    assets, checks = set(), set()
    for entry in harness.instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            assets.add(event.asset_key)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            checks.add(dg.AssetCheckKey(data.asset_key, data.check_name))
    return assets, checks


def assert_release_is_the_matrix(harness, release: EnvMatrix, tag: str, run_id: str) -> None:
    registry, s3_path = harness.settings.registry, harness.settings.s3_path
    tagged = {name for name, tags in registry_tags(harness).items() if tag in tags}
    assert tagged == set(release.image_refs(registry, tag)), release.env
    for service in release.prebuilt_images:  # waiting under its content key, not released here
        assert {t for t in registry_tags(harness)[service.name] if not t.startswith("ck-")} == set()
    objects = bucket_keys(harness, f"{s3_path}/{tag}/")
    assert objects == set(release.s3_keys(s3_path, tag).values()) | set(
        release.record_keys(s3_path, tag).values()
    )
    repo = GITOPS_REPOS[release.env]
    deployed = {s.name for s in release.deployed}
    assert env_repo_projects(harness, repo) == {name: tag for name in deployed}
    assert routes_files(harness, repo) == (deployed if release.updates_routes else set())
    assets, checks = run_keys(harness, run_id)
    assert assets == set(release.asset_keys)
    assert checks == set(release.check_keys)


def assert_plan_is_the_release(harness, services, tag: str, commit: str) -> None:
    """What `deploy-assets plan` shows for the tag is what the release left in the systems."""
    plan = build_plan(
        parse_tag(tag),
        commit,
        "tag",
        services,
        harness.config,
        harness.settings,
        [StagingRecord(TAGS[1], commit)],
    )
    tagged = {name for name, tags in registry_tags(harness).items() if tag in tags}
    assert plan.images == {name: f"{harness.settings.registry}/{name}:{tag}" for name in tagged}
    records = {
        f"{harness.settings.s3_path}/{tag}/{n}"
        for n in ("routes.json", "manifest.json", "checksums.txt")
    }
    assert (
        set(plan.s3_keys.values())
        == bucket_keys(harness, f"{harness.settings.s3_path}/{tag}/") - records
    )
    assert sorted(plan.gitops_projects) == sorted(
        env_repo_projects(harness, GITOPS_REPOS[plan.env])
    )


def test_alpha_rc_and_final_releases_are_what_the_matrix_and_the_plan_say(harness):
    files = (
        run_git(["ls-tree", "-r", "--name-only", "HEAD"], cwd=harness.monorepo.clone)
        .decode()
        .split()
    )
    services = discover_services(files, harness.config.source, harness.config.platforms)
    matrix = ReleaseMatrix.of(harness.config, services)
    commit, cached, gateway = harness.monorepo.head(), set(), False
    for tag in TAGS:
        outcome = harness.release(tag)
        assert outcome.success, outcome.error
        release = matrix.env(parse_tag(tag).env)
        assert_release_is_the_matrix(harness, release, tag, outcome.run_id)
        assert_plan_is_the_release(harness, services, tag, commit)
        # Build once: the bucket's build cache holds what was built or prebuilt, nothing else.
        cached |= {s.name for s in release.built + release.prebuilds}
        entries = bucket_keys(harness, f"{harness.settings.s3_path}/build-cache/")
        assert {PurePosixPath(k).name for k in entries} == cached, tag
        gateway |= release.updates_api_gateway
        assert (len(harness.gitops_log("terraform-apps-production")) > 1) == gateway, tag
    assert [s.name for s in matrix.env("staging").prebuilt_images] == [
        "cli_core"
    ]  # the example exercises it
