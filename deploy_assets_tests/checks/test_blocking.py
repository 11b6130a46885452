"""A failed blocking check stops the stages after it: no GitOps bump after a broken image.

The image is broken for real between the push and its check: the release job runs in two
parts (up to the image push, then the rest together with the checklist), and in between the
pushed manifest is deleted from the registry.
"""

import dagster as dg

from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
from deploy_assets.checks.rerun import release_check_keys
from deploy_assets_tests.checks.evaluations import check_evaluations, materialized_keys

TAG = "v0.4.0-alpha.1"
MS = ("ms_chat", "ms_core", "ms_payments")
# The whole release, split after the pushes (the bump's deploy gate wants every service published).
FIRST_PART = {"source", "routes"} | {
    f"{kind}/{name}" for kind in ("binary", "image") for name in MS
}
SECOND_PART = {f"s3/{name}" for name in MS} | {"s3/routes_json", "s3/manifest_json", "gitops_bump"}


def _run_part(harness, assets: set[str], with_checks: bool) -> dg.ExecuteInProcessResult:
    keys = {dg.AssetKey.from_user_string(k) for k in assets}
    checks = (
        {
            k
            for k in release_check_keys(harness.defs, "dev")
            if k.asset_key in keys or k.asset_key == dg.AssetKey(["image", "ms_core"])
        }
        if with_checks
        else set()
    )
    job = harness.defs.resolve_job_def("release_to_dev").get_subset(
        asset_selection=keys, asset_check_selection=checks
    )
    return job.execute_in_process(
        instance=harness.instance,
        partition_key=release_partition_key("dev", TAG),
        raise_on_error=False,
    )


def test_a_broken_image_blocks_the_gitops_bump(harness):
    harness.monorepo.tag(TAG)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [TAG])
    first = _run_part(harness, FIRST_PART, with_checks=False)
    assert first.success
    assert materialized_keys(harness.instance, first.run_id) == FIRST_PART
    digest = harness.registry.manifest_digest("ms_core", TAG)
    harness.registry.delete_tag_manifest("ms_core", digest)
    gitops_before = harness.gitops_log("gitops-development")

    second = _run_part(harness, SECOND_PART, with_checks=True)
    assert not second.success
    results = check_evaluations(harness.instance, second.run_id)
    image_check = results["image/ms_core:served_with_recorded_digest"]
    assert not image_check.passed and image_check.blocking
    assert image_check.description == (
        f"{harness.settings.registry}/ms_core:{TAG} is not in the registry "
        f"(recorded digest {digest})"
    )
    assert results["s3/ms_core:objects_match_build"].passed  # S3 does not depend on the image
    assert "gitops_bump" not in materialized_keys(harness.instance, second.run_id)
    assert "s3/manifest_json" not in materialized_keys(harness.instance, second.run_id)
    assert "gitops_bump:repo_at_version" not in results
    assert harness.gitops_log("gitops-development") == gitops_before
    assert [e.step_key for e in second.all_events if e.is_step_failure] == ["image_checks"]

    # Push the image again: the same second part now passes the check and bumps GitOps.
    assert _run_part(harness, {"image/ms_core"}, with_checks=False).success
    third = _run_part(harness, SECOND_PART, with_checks=True)
    assert third.success
    assert check_evaluations(harness.instance, third.run_id)[
        "image/ms_core:served_with_recorded_digest"
    ].passed
    assert "gitops_bump" in materialized_keys(harness.instance, third.run_id)
    assert len(harness.gitops_log("gitops-development")) == len(gitops_before) + 1


def test_a_damaged_build_cache_entry_is_caught_before_anything_is_published(harness):
    """A reused binary's sha256 comes from the cache record written when it was built; the
    blocking toolchain check hashes the bytes themselves, so bytes damaged in the cache since
    are never pushed or uploaded."""
    first = harness.release("v0.5.0-alpha.1")
    assert first.success, first.error
    built = harness.metadata("binary/ms_core", "dev|v0.5.0-alpha.1")
    cached = (
        harness.settings.cache_dir
        / "builds"
        / built["content_key_arm64"][:2]
        / built["content_key_arm64"]
        / "ms_core"
    )
    cached.chmod(0o755)
    with open(cached, "r+b") as fh:  # one flipped byte, same size
        fh.seek(4096)
        byte = fh.read(1)
        fh.seek(4096)
        fh.write(bytes([byte[0] ^ 0xFF]))

    second = harness.release("v0.5.0-alpha.2")

    assert not second.success
    results = check_evaluations(harness.instance, second.run_id)
    toolchain = results["binary/ms_core:built_with_configured_go"]
    assert not toolchain.passed and toolchain.blocking
    assert "ms_core is not the recorded binary (missing or changed)" in toolchain.description
    assert harness.registry.manifest_digest("ms_core", "v0.5.0-alpha.2") is None
    assert harness.s3.head("binaries/v0.5.0-alpha.2/ms_core") is None
    assert "gitops_bump" not in materialized_keys(harness.instance, second.run_id)
