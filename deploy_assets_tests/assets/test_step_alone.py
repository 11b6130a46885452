"""A step materialized alone on a worker whose work folder is empty (a fresh container, a click in
the UI) takes what it needs from shared state: the source facts and binaries from the instance,
the tree from git at the recorded commit, the bytes from the build cache (the worker's, else the
artifact bucket's)."""

import json
import shutil

import dagster as dg
import pytest

from deploy_assets.assets import build_store
from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
from deploy_assets.checks.toolchain import TOOLCHAIN_CHECK
from deploy_assets.resources.s3 import file_sha256
from deploy_assets_tests.assets.run_events import run_subset

TAG = "v0.7.0-alpha.1"
PARTITION = f"dev|{TAG}"
MS = ["ms_chat", "ms_core", "ms_payments"]


def _run(harness, keys: set[str]) -> dg.ExecuteInProcessResult:
    return run_subset(harness, keys, TAG)


def _error(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        str(e.event_specific_data.error)
        for e in result.all_events
        if e.is_step_failure and e.event_specific_data and e.event_specific_data.error
    )


@pytest.fixture
def built(harness):
    """`source` and the binaries materialized, then the work folder removed (another container)."""
    harness.monorepo.tag(TAG)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [TAG])
    assert _run(harness, {"source", "routes", *(f"binary/{n}" for n in MS)}).success
    shutil.rmtree(harness.settings.work_dir)
    return {n: harness.metadata(f"binary/{n}", PARTITION) for n in MS}


def test_artifacts_alone_on_an_empty_work_folder_upload_the_recorded_binaries(harness, built):
    result = _run(
        harness, {"s3/routes_json", *(f"s3/{n}" for n in MS)}
    )  # what a click on `artifacts` runs

    assert result.success, _error(result)
    routes = harness.metadata("s3/routes_json", PARTITION)
    table = json.loads(harness.s3.get_bytes(routes["s3_key"]))
    counts = {name: sum(1 for row in table if row["service"] == name) for name in MS}
    assert (
        counts == harness.metadata("routes", PARTITION)["routes_per_service"]
    )  # parsed again, same routes
    for name in MS:
        stored = harness.metadata(f"s3/{name}", PARTITION)
        assert stored["commit"] == built[name]["commit"]
        for platform in harness.config.platforms:
            assert stored[f"sha256_{platform}"] == built[name][f"sha256_{platform}"]
            # the bytes in the bucket are the recorded binary's, not only the claim in metadata
            assert (
                harness.s3.download_sha256(stored[f"s3_key_{platform}"])[0]
                == built[name][f"sha256_{platform}"]
            )


def test_images_alone_on_an_empty_work_folder_ship_the_recorded_binaries(harness, built):
    result = _run(harness, {f"image/{n}" for n in MS})

    assert result.success, _error(result)
    for name in MS:
        image = harness.metadata(f"image/{name}", PARTITION)
        assert image["binary_sha256"] == built[name]["sha256_arm64"]
        assert image["content_key"] == built[name]["content_key_arm64"]
        assert harness.registry.manifest_digest(name, TAG) == image["digest"]


def test_routes_alone_on_an_empty_work_folder_export_the_recorded_commit_again(harness, built):
    routes_before = harness.metadata("routes", PARTITION)

    result = _run(harness, {"routes"})

    assert result.success, _error(result)
    assert (
        harness.metadata("routes", PARTITION)["routes_per_service"]
        == routes_before["routes_per_service"]
    )
    marker = harness.settings.work_dir / "dev" / TAG / "src" / ".deploy-assets-commit"
    assert marker.read_text() == built["ms_core"]["commit"]


def test_a_check_alone_on_an_empty_worker_reads_the_binaries_from_the_bucket_build_cache(
    harness, built
):
    shutil.rmtree(harness.settings.cache_dir)  # no mirror, no local build cache: a fresh container
    checks = {dg.AssetCheckKey(dg.AssetKey(["binary", n]), TOOLCHAIN_CHECK) for n in MS}
    job = harness.defs.resolve_job_def("release_to_dev").get_subset(
        asset_selection=set(), asset_check_selection=checks
    )

    result = job.execute_in_process(
        instance=harness.instance,
        partition_key=release_partition_key("dev", TAG),
        raise_on_error=False,
    )

    assert result.success, _error(result)
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(evaluations) == len(MS) and all(e.passed for e in evaluations), evaluations
    for name in MS:  # the bytes it judged are the recorded binary's, downloaded and verified
        path = harness.settings.work_dir / "dev" / TAG / "out" / built[name]["path_arm64"]
        assert file_sha256(path) == built[name]["sha256_arm64"]
        assert (
            file_sha256(
                build_store.cache_path(
                    harness.settings.cache_dir, built[name]["content_key_arm64"], name
                )
            )
            == built[name]["sha256_arm64"]
        )


def test_a_step_with_nothing_recorded_names_the_partition_and_the_asset_to_materialize(harness):
    harness.monorepo.tag(TAG)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [TAG])

    result = _run(harness, {f"s3/{n}" for n in MS})

    assert not result.success
    assert (
        f"materialization of source for {PARTITION}: materialize the source asset of {PARTITION}"
        in _error(result)
    )
