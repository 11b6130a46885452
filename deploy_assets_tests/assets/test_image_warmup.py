"""Images are built into the engine while `go build` runs; nothing is published before the
images step, which then finds them in the engine's build cache."""

import logging

import dagster as dg
import docker

from deploy_assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
from deploy_assets_tests.assets.run_events import user_logs

TAG = "v0.6.0-alpha.1"
MS = ["ms_chat", "ms_core", "ms_payments"]


def _run(harness, keys: set[str]) -> dg.ExecuteInProcessResult:
    job = harness.defs.resolve_job_def("release_to_dev").get_subset(
        asset_selection={dg.AssetKey.from_user_string(k) for k in keys}, asset_check_selection=set())
    return job.execute_in_process(instance=harness.instance, partition_key=release_partition_key("dev", TAG),
                                  raise_on_error=False)


def test_binaries_step_warms_the_image_cache_without_publishing_and_images_step_reuses_it(harness):
    harness.monorepo.tag(TAG)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [TAG])
    engine = docker.from_env()

    built = _run(harness, {"source", *(f"binary/{n}" for n in MS)})

    assert built.success
    logs = user_logs(harness.instance, built.run_id, logging.INFO)
    assert any("3/3 images built into the engine's cache while go was compiling" in line for line in logs), logs
    warmed = {}
    for name in MS:
        ref = f"{harness.settings.registry}/{name}:{TAG}"
        image = engine.images.get(ref)  # in the local engine ...
        binary = harness.metadata(f"binary/{name}", f"dev|{TAG}")
        assert image.labels["io.deploy-assets.content-key"] == binary["content_key_arm64"]
        assert image.labels["io.deploy-assets.built-in"] == f"dev|{TAG}"
        assert harness.registry.manifest_digest(name, TAG) is None  # ... and not published
        warmed[name] = image.id

    pushed = _run(harness, {f"image/{n}" for n in MS})

    assert pushed.success
    for name in MS:
        image = harness.metadata(f"image/{name}", f"dev|{TAG}")
        assert image["action"] == "built and pushed"
        assert harness.registry.manifest_digest(name, TAG) == image["digest"]
        # The images step's build was the warmed image itself: every layer came from the cache.
        assert engine.images.get(f"{harness.settings.registry}/{name}:{TAG}").id == warmed[name]
