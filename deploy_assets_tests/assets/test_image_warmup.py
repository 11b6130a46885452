"""Images are built and pushed under their content-key tag while `go build` runs; no release
tag exists before the images step, which then only retags."""

import logging
import uuid

import dagster as dg
import docker

from deploy_assets.assets.image_warmup import ImageWarmup, WarmupJob, WarmupOutcome
from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME
from deploy_assets.config import REPO_ROOT
from deploy_assets.local.stack import free_port
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets_tests.assets.run_events import run_subset, user_logs

TAG = "v0.6.0-alpha.1"
MS = ["ms_chat", "ms_core", "ms_payments"]


def _run(harness, keys: set[str]) -> dg.ExecuteInProcessResult:
    return run_subset(harness, keys, TAG)


def test_binaries_step_pushes_images_under_their_content_key_and_images_step_retags_them(harness):
    harness.monorepo.tag(TAG)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [TAG])
    engine = docker.from_env()

    built = _run(harness, {"source", *(f"binary/{n}" for n in MS)})

    assert built.success
    logs = user_logs(harness.instance, built.run_id, logging.INFO)
    assert any(
        "3/3 images built and pushed under their content-key tag while go was compiling" in line
        for line in logs
    ), logs
    early = {}
    for name in MS:
        key = harness.metadata(f"binary/{name}", f"dev|{TAG}")["content_key_arm64"]
        early[name] = harness.registry.manifest_digest(name, f"ck-{key}")
        assert early[name], name  # in the registry under its content key ...
        labels = harness.registry.image_labels(name, f"ck-{key}")
        assert labels["io.deploy-assets.content-key"] == key
        assert labels["io.deploy-assets.built-in"] == f"dev|{TAG}"
        assert (
            harness.registry.manifest_digest(name, TAG) is None
        )  # ... and not under the release's tag
        assert engine.images.get(f"{harness.settings.registry}/{name}:ck-{key}").labels == labels

    pushed = _run(harness, {f"image/{n}" for n in MS})

    assert pushed.success
    logs = user_logs(harness.instance, pushed.run_id, logging.INFO)
    for name in MS:
        image = harness.metadata(f"image/{name}", f"dev|{TAG}")
        assert image["action"] == "built and pushed" and image["reused_from"] == ""
        # The release tag is the early push's manifest, byte for byte: no second build or push.
        assert image["digest"] == early[name] == harness.registry.manifest_digest(name, TAG)
        assert any(
            f"{name}: built and pushed (while go was compiling, as ck-" in line for line in logs
        ), logs


def test_a_failed_early_push_is_reported_and_leaves_the_push_to_the_images_step(tmp_path):
    dead = RegistryResource(host=f"127.0.0.1:{free_port()}")
    binary = tmp_path / "out" / "ms_core"
    binary.parent.mkdir()
    binary.write_bytes(b"\x7fELF not really, the image never runs " + uuid.uuid4().bytes)
    job = WarmupJob(
        name="ms_core",
        tag=f"ck-{uuid.uuid4().hex}",
        platform="arm64",
        dockerfile=REPO_ROOT / "misc" / "dockerfiles" / "ms.Dockerfile",
        labels={"test": "warmup"},
    )
    warmup = ImageWarmup(DockerResource(), dead, {"ms_core": job, "ms_chat": job})

    warmup(binary)
    warmup(tmp_path / "out" / "not_a_service")  # go's other outputs are ignored
    outcome = warmup.finish()

    assert outcome == WarmupOutcome(pushed=[], built=["ms_core"], failed={})
    image = docker.from_env().images.get(
        dead.ref("ms_core", job.tag)
    )  # built for the engine's cache
    assert image.labels["test"] == "warmup" and image.attrs["Architecture"] == "arm64"
    docker.from_env().images.remove(image.id, force=True)
