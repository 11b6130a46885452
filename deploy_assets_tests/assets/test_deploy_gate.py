"""The deploy gate: a step that changes an env, run on its own (one asset clicked in the UI, a
backfill), refuses unless every image and S3 object of the release is published as recorded.

Reproduces issue 15's first finding: `source,routes` materialized, then `gitops_bump` alone.
"""

import shutil

import boto3
import dagster as dg

from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
from deploy_assets_tests.assets.run_events import step_failures

MS = ["ms_chat", "ms_core", "ms_payments"]


def materialize(harness, env: str, tag: str, keys: list[str]) -> dg.ExecuteInProcessResult:
    """What a click on these assets in the UI runs: a run of exactly them, nothing else."""
    if not harness.instance.has_dynamic_partition(VERSION_PARTITIONS_NAME, tag):
        harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [tag])
    job = harness.defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=harness.instance,
        partition_key=release_partition_key(env, tag),
        asset_selection=[dg.AssetKey.from_user_string(k) for k in keys],
        raise_on_error=False,
    )


def env_keys(harness, env: str, *, without: tuple[str, ...] = ()) -> list[str]:
    job = harness.defs.resolve_job_def(f"release_to_{env}")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    return sorted(keys - set(without))


def test_a_bump_alone_refuses_images_that_were_never_pushed(harness):
    tag = "v3.0.0-alpha.1"
    harness.monorepo.write(
        "cmd/ms/ms_core/gate.go", "package main\n\nconst gate = 1\n\nvar _ = gate\n"
    )
    harness.monorepo.commit("new commit, never built")
    harness.monorepo.tag(tag)
    assert materialize(harness, "dev", tag, ["source", "routes"]).success
    before = harness.gitops_log("gitops-development")

    bump = materialize(harness, "dev", tag, ["gitops_bump"])

    assert not bump.success
    message = step_failures(harness.instance, bump.run_id)["gitops_bump"]
    assert "GitOps bump of gitops-development refused, nothing changed" in message
    for name in MS:
        assert f"image/{name} was never published for dev|{tag}" in message
        assert f"s3/{name} was never uploaded for dev|{tag}" in message
        assert harness.registry.manifest_digest(name, tag) is None
    assert harness.gitops_log("gitops-development") == before


def test_a_tampered_object_refuses_the_bump_and_an_intact_release_deploys_from_shared_state(
    harness,
):
    tag = "v3.1.0-alpha.1"
    harness.monorepo.tag(tag)
    published = materialize(harness, "dev", tag, env_keys(harness, "dev", without=("gitops_bump",)))
    assert published.success
    before = harness.gitops_log("gitops-development")
    key = f"binaries/{tag}/ms_chat"
    original = harness.s3.get_bytes(key)
    s3 = boto3.client("s3", endpoint_url=harness.settings.s3_endpoint, region_name="eu-west-1")
    s3.put_object(Bucket=harness.settings.bucket, Key=key, Body=b"not the binary")

    refused = materialize(harness, "dev", tag, ["gitops_bump"])
    assert not refused.success
    message = step_failures(harness.instance, refused.run_id)["gitops_bump"]
    assert f"s3/ms_chat ({key}) has 14 bytes, not the recorded {len(original)}" in message
    assert harness.gitops_log("gitops-development") == before

    # Bytes restored, and the worker's disk gone (a fresh pod): the bump needs only shared state.
    s3.put_object(Bucket=harness.settings.bucket, Key=key, Body=original)
    shutil.rmtree(harness.settings.work_dir)
    bumped = materialize(harness, "dev", tag, ["gitops_bump"])
    assert bumped.success, step_failures(harness.instance, bumped.run_id)
    log = harness.gitops_log("gitops-development")
    assert len(log) == len(before) + 1 and log[0].endswith(f"deploy(dev): {' '.join(MS)} -> {tag}")


def test_api_gateway_alone_refuses_when_prods_lambda_uploads_are_missing(harness):
    harness.settings = harness.settings.model_copy(update={"allow_prod_without_staging": True})
    harness.reload()
    tag = "v3.2.0"
    harness.monorepo.tag(tag)
    keys = env_keys(
        harness, "prod", without=("api_gateway_routes", "gitops_bump", "s3/lambda_auth_handler")
    )
    assert materialize(harness, "prod", tag, keys).success
    before = harness.gitops_log("terraform-apps-production")

    routes = materialize(harness, "prod", tag, ["api_gateway_routes"])

    assert not routes.success
    message = step_failures(harness.instance, routes.run_id)["api_gateway_routes"]
    assert "API-gateway update of terraform-apps-production refused" in message
    assert f"s3/lambda_auth_handler was never uploaded for prod|{tag}" in message
    assert "lambda_webhook_handler" not in message  # uploaded: not named
    assert harness.gitops_log("terraform-apps-production") == before
