"""An image is shipped only when its layer holds the binary the release built: a forged image with
the right content-key label, under the content-key tag, under the release's own tag, or recorded
as an earlier release's image, is never adopted or retagged.

Every fact is read back from the registry itself: the digest the release tag serves, and the
sha256 of the binary's file in that digest's layer (read here with plain HTTP and tarfile).
"""

import hashlib
import tarfile
import uuid

import dagster as dg
import requests

from deploy_assets.assets.image_recipe import (
    BUILT_IN_LABEL,
    CONTENT_KEY_LABEL,
    binary_path_in_image,
)
from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
from deploy_assets.config import DOCKERFILES_DIR
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.registry import MANIFEST_TYPES
from deploy_assets_tests.assets.run_events import step_failures

MS = ["ms_chat", "ms_core", "ms_payments"]
MS_DOCKERFILE = DOCKERFILES_DIR / "ms.Dockerfile"


def served_binary_sha256(host: str, name: str, reference: str) -> tuple[str, str]:
    """(digest, sha256 of /service in its top layer), straight from the registry's HTTP API."""
    got = requests.get(
        f"http://{host}/v2/{name}/manifests/{reference}",
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    got.raise_for_status()
    layer = got.json()["layers"][-1]["digest"]
    with requests.get(f"http://{host}/v2/{name}/blobs/{layer}", stream=True, timeout=30) as blob:
        blob.raise_for_status()
        with tarfile.open(fileobj=blob.raw, mode="r|*") as tar:
            for member in tar:
                if member.name.lstrip("./") == "service":
                    return got.headers["Docker-Content-Digest"], hashlib.sha256(
                        tar.extractfile(member).read()
                    ).hexdigest()
    return got.headers["Docker-Content-Digest"], ""


def push_image(harness, binary, name: str, tag: str, content_key: str, built_in: str) -> str:
    """Our recipe and our labels around `binary`, pushed under name:tag: its digest."""
    docker = DockerResource()
    ref = harness.registry.ref(name, tag)
    docker.build_image(
        binary,
        MS_DOCKERFILE,
        "arm64",
        ref,
        labels={CONTENT_KEY_LABEL: content_key, BUILT_IN_LABEL: built_in},
    )
    digest = docker.push(f"{harness.settings.registry}/{name}", tag)
    assert (
        harness.registry.image_labels(name, tag)[CONTENT_KEY_LABEL] == content_key
    )  # the label claims it
    return digest


def push_forged(
    harness, tmp_path, name: str, tag: str, content_key: str, built_in: str
) -> tuple[str, str]:
    """Our recipe and our labels around other bytes, pushed under name:tag: (digest, their sha256)."""
    forged = tmp_path / f"forged-{uuid.uuid4().hex[:6]}"
    forged.write_bytes(b"\x7fELF not the binary the release built " + uuid.uuid4().bytes)
    digest = push_image(harness, forged, name, tag, content_key, built_in)
    return digest, hashlib.sha256(forged.read_bytes()).hexdigest()


def _build_only(harness, tag: str) -> None:
    """source + binaries of a dev release: the binaries step pushes each image under ck-<key>."""
    harness.monorepo.tag(tag)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [tag])
    keys = {dg.AssetKey.from_user_string(k) for k in ["source", *(f"binary/{n}" for n in MS)]}
    job = harness.defs.resolve_job_def("release_to_dev").get_subset(
        asset_selection=keys, asset_check_selection=set()
    )
    assert job.execute_in_process(
        instance=harness.instance,
        partition_key=release_partition_key("dev", tag),
        raise_on_error=False,
    ).success


def test_the_ms_and_cli_templates_name_where_the_binary_is():
    assert binary_path_in_image(MS_DOCKERFILE) == "/service"
    assert binary_path_in_image(DOCKERFILES_DIR / "cli.Dockerfile") == "/cli"


def test_a_forged_image_under_the_content_key_tag_is_not_shipped_and_is_replaced(harness, tmp_path):
    tag = "v0.8.0-alpha.1"
    _build_only(harness, tag)
    binary = harness.metadata("binary/ms_core", f"dev|{tag}")
    key, sha256 = binary["content_key_arm64"], binary["sha256_arm64"]
    assert binary["ck_image_binary_sha256"] == sha256  # the early push was proven while go compiled
    early = {n: harness.metadata(f"binary/{n}", f"dev|{tag}")["ck_image_digest"] for n in MS}
    forged, forged_sha = push_forged(harness, tmp_path, "ms_core", f"ck-{key}", key, f"dev|{tag}")

    outcome = harness.release(tag)

    assert outcome.success, outcome.error
    image = harness.metadata("image/ms_core", f"dev|{tag}")
    digest, served_sha = served_binary_sha256(harness.settings.registry, "ms_core", tag)
    assert digest == image["digest"] != forged
    assert served_sha == sha256 == image["binary_sha256"] != forged_sha
    assert image["layer_digest"] and image["binary_path"] == "/service"
    assert image["action"] == "built and pushed"
    assert forged_sha in image["rejected"] and sha256 in image["rejected"]
    # ck- tags are ours: it now holds the real image, so the next release retags the right bytes.
    assert served_binary_sha256(harness.settings.registry, "ms_core", f"ck-{key}") == (
        digest,
        sha256,
    )
    for name in ("ms_chat", "ms_payments"):  # untouched: retagged from their proven early push
        other = harness.metadata(f"image/{name}", f"dev|{tag}")
        assert other["rejected"] == "" and other["digest"] == early[name]
        assert (
            served_binary_sha256(harness.settings.registry, name, tag)[1] == other["binary_sha256"]
        )


def test_a_forged_image_under_the_release_tag_is_refused_naming_both_sha256s(harness, tmp_path):
    first = harness.release("v0.8.0-alpha.1")
    assert first.success, first.error
    binary = harness.metadata("binary/ms_core", "dev|v0.8.0-alpha.1")
    key, sha256 = binary["content_key_arm64"], binary["sha256_arm64"]
    tag = "v0.8.0-alpha.2"  # same commit, same key: the pre-fix code adopted a labelled image here
    forged, forged_sha = push_forged(harness, tmp_path, "ms_core", tag, key, f"dev|{tag}")
    bumps = harness.gitops_log("gitops-development")

    outcome = harness.release(tag)

    assert not outcome.success
    error = step_failures(harness.instance, outcome.run_id)["images"]
    assert f"{harness.registry.ref('ms_core', tag)} already exists with digest {forged}" in error
    assert f"sha256 {forged_sha}" in error and f"binary sha256 {sha256}" in error
    assert "Tags are immutable: not overwriting" in error
    assert harness.registry.manifest_digest("ms_core", tag) == forged  # left as found
    assert harness.gitops_log("gitops-development") == bumps  # nothing deployed


def test_an_image_a_killed_run_pushed_before_its_record_is_adopted_once_its_layer_is_proven(
    harness, tmp_path
):
    first = harness.release("v0.8.0-alpha.1")
    assert first.success, first.error
    binary = harness.metadata("binary/ms_core", "dev|v0.8.0-alpha.1")
    key, sha256 = binary["content_key_arm64"], binary["sha256_arm64"]
    real = tmp_path / "ms_core"
    real.write_bytes(
        harness.s3.get_bytes(harness.metadata("s3/ms_core", "dev|v0.8.0-alpha.1")["s3_key_arm64"])
    )
    assert hashlib.sha256(real.read_bytes()).hexdigest() == sha256
    tag = "v0.8.0-alpha.2"  # same commit, same key; the killed run's image has a digest no record names
    pushed = push_image(harness, real, "ms_core", tag, key, f"dev|{tag}")
    assert pushed != harness.metadata("image/ms_core", "dev|v0.8.0-alpha.1")["digest"]

    outcome = harness.release(tag)

    assert outcome.success, outcome.error
    image = harness.metadata("image/ms_core", f"dev|{tag}")
    assert (image["digest"], image["action"]) == (pushed, "adopted (pushed by an interrupted run)")
    assert (
        image["binary_proof"] == "layer downloaded and hashed" and image["binary_sha256"] == sha256
    )
    assert served_binary_sha256(harness.settings.registry, "ms_core", tag) == (pushed, sha256)


def test_a_promotion_does_not_retag_an_earlier_release_image_that_holds_other_bytes(
    harness, tmp_path
):
    rc = harness.release("v0.9.0-rc.1")
    assert rc.success, rc.error
    staging = "staging|v0.9.0-rc.1"
    real = harness.metadata("image/ms_core", staging)
    # The rc tag re-pushed with other bytes and our label, and the rc's record naming that image, as
    # the pre-fix code wrote it when it adopted such an image: the promotion would retag it.
    forged, forged_sha = push_forged(
        harness, tmp_path, "ms_core", "v0.9.0-rc.1", real["content_key"], staging
    )
    poisoned = {
        k: v for k, v in real.items() if k not in ("layer_digest", "binary_path", "binary_proof")
    }
    harness.instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey(["image", "ms_core"]),
            partition=staging,
            metadata={
                **poisoned,
                "digest": forged,
                "action": "adopted (pushed by an interrupted run)",
            },
        )
    )

    prod = harness.release("v0.9.0")

    # The images step ships the real bytes, never the forged ones; the promotion check then sees
    # that they are not the digest staging's record names, and nothing is deployed.
    image = harness.metadata("image/ms_core", "prod|v0.9.0")
    digest, served_sha = served_binary_sha256(harness.settings.registry, "ms_core", "v0.9.0")
    assert digest == image["digest"] != forged
    assert served_sha == image["binary_sha256"] == real["binary_sha256"] != forged_sha
    assert (
        f"the image of {staging} is not shipped" in image["rejected"]
        and forged_sha in image["rejected"]
    )
    assert (
        image["action"] == f"retagged from the image prebuilt in {staging}"
    )  # its proven ck- image
    assert not prod.success
    assert "image/ms_core: same_bytes_as_staging" in prod.error
    assert "images" not in step_failures(harness.instance, prod.run_id)
    for repo in ("gitops-production", "terraform-apps-production"):
        assert len(harness.gitops_log(repo)) == 1, repo  # prod untouched
    for name in (
        "ms_chat",
        "ms_payments",
    ):  # their proof is in the rc's record: a retag, no download
        other = harness.metadata(f"image/{name}", "prod|v0.9.0")
        assert (
            other["action"] == f"retagged from {staging}"
            and other["binary_proof"] == f"recorded by {staging}"
        )
