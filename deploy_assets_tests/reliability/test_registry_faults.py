"""The registry dies in the middle of a release's pushes; a tag someone else pushed is never overwritten."""

import re
import tempfile
from pathlib import Path

import dagster as dg
import docker
import pytest

from deploy_assets.cli.runner import run_release
from deploy_assets.resources.docker import DockerResource
from deploy_assets_tests.reliability.conftest import (
    MS,
    failure,
    gitops_bumps,
    new_bucket,
    scenario_stack,
    with_resources,
)
from deploy_assets_tests.reliability.faults import missing_blobs, when_log_line

pytestmark = pytest.mark.reliability

TAG = "v1.0.0-alpha.1"
PARTITION = f"dev|{TAG}"


def test_registry_killed_mid_push_fails_naming_it_and_a_rerun_completes_with_one_bump(
    rig, killable_registry, s3_bucket
):
    harness = rig(killable_registry.host, *s3_bucket)
    # One retry of a failing layer instead of the default two: the same code path, 10 s sooner.
    with_resources(harness, docker=DockerResource(max_push_retries=1))
    harness.monorepo.tag(TAG)
    host = killable_registry.host
    first_upload = r'"POST /v2/ms_\w+/blobs/uploads/'

    # 1. It dies at the first layer upload, which the binaries step makes while go still compiles
    # (under the content-key tag): the release fails before any release tag, naming the registry.
    killer = when_log_line(killable_registry.log, first_upload, killable_registry.kill)
    failed = run_release(harness.defs, harness.instance, TAG)

    killer.join(timeout=5)
    assert not killer.is_alive(), "the registry saw no blob upload: the fault was not injected"
    assert not failed.success
    error = failure(harness.instance, failed.run_id)
    assert error.startswith("images: "), error
    assert f"images not published to {host} ({', '.join(MS)}): registry {host} unreachable" in error
    killable_registry.start()  # same port, same data directory
    assert all(missing_blobs(host, name, TAG) is None for name in MS)
    early = {
        name: f"ck-{harness.metadata(f'binary/{name}', PARTITION)['content_key_arm64']}"
        for name in MS
    }
    for name, tag in early.items():  # an early push that got through is whole
        assert missing_blobs(host, name, tag) in (None, [])
    assert gitops_bumps(harness, PARTITION) == []

    # 2. The re-run builds nothing (the binaries are cached), so the images step pushes what the
    # first run could not; the registry dies again at its first layer upload.
    killer = when_log_line(killable_registry.log, first_upload, killable_registry.kill)
    failed = run_release(harness.defs, harness.instance, TAG)

    killer.join(timeout=5)
    assert not killer.is_alive(), "the images step uploaded no blob: the fault was not injected"
    error = failure(harness.instance, failed.run_id)
    assert error.startswith("images: ") and f"images not published to {host}" in error, error
    killable_registry.start()
    not_pushed = [name for name in MS if missing_blobs(host, name, TAG) is None]
    assert not_pushed, "every image was pushed before the registry died: the fault came too late"
    for name in not_pushed:
        assert f"{name}: push of {host}/{name}:{TAG}" in error
    for name in set(MS) - set(not_pushed):  # what did get through is whole
        assert missing_blobs(host, name, TAG) == []
    assert (
        len(harness.gitops_log("gitops-development")) == 1
        and gitops_bumps(harness, PARTITION) == []
    )

    again = run_release(harness.defs, harness.instance, TAG)

    assert again.success, failure(harness.instance, again.run_id)
    log = harness.gitops_log("gitops-development")
    assert len(log) == 2 and log[0].endswith(f"-> {TAG}")
    for name in MS:
        assert missing_blobs(host, name, TAG) == []
        assert harness.metadata(f"image/{name}", PARTITION)[
            "digest"
        ] == harness.registry.manifest_digest(name, TAG)


def _push_foreign_image(registry: str, name: str, tag: str) -> str:
    """Someone else's image under our future tag, pushed with the docker SDK; returns its digest."""
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text("FROM scratch\nCOPY other /other\n")
        Path(ctx, "other").write_text(f"not our build {tempfile.gettempprefix()} {ctx}\n")
        client.images.build(path=ctx, tag=f"{registry}/{name}:{tag}", rm=True, pull=False)
    digest = DockerResource().push(f"{registry}/{name}", tag)
    client.images.remove(f"{registry}/{name}:{tag}", noprune=True)
    client.close()
    return digest


@pytest.fixture(scope="module")
def conflict(tmp_path_factory, s3_server, docker_engine):
    """Someone pushed another image as ms_core:TAG; then TAG is released."""
    with (
        scenario_stack(tmp_path_factory.mktemp("conflict")) as stack,
        dg.instance_for_test() as instance,
    ):
        harness = stack.harness(instance, s3_server, new_bucket(s3_server))
        theirs = _push_foreign_image(stack.registry.host, "ms_core", TAG)
        outcome = harness.release(TAG)
        yield harness, theirs, outcome, failure(instance, outcome.run_id)


def test_an_existing_tag_with_another_digest_is_refused_and_kept(conflict):
    harness, theirs, outcome, error = conflict
    assert not outcome.success
    assert error.startswith("images: "), error
    assert f"{harness.settings.registry}/ms_core:{TAG} already exists with digest {theirs}" in error
    assert "not overwriting" in error
    assert harness.registry.manifest_digest("ms_core", TAG) == theirs
    assert (
        len(harness.gitops_log("gitops-development")) == 1
        and gitops_bumps(harness, PARTITION) == []
    )


def test_the_refusal_names_both_digests(conflict):
    _, theirs, _, error = conflict
    assert set(re.findall(r"sha256:[0-9a-f]{64}", error)) - {theirs}, error
