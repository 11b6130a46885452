"""A Docker engine, Go toolchain, registry or S3 API that is not there: a clear error, nothing changed."""

from pathlib import Path

import pytest
import requests

from deploy_assets.local import stack as local_stack
from deploy_assets.resources import preflight
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.gitops import GitOpsResource
from deploy_assets.resources.go import GoResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets_tests.reliability.conftest import (
    bucket_objects,
    failure,
    gitops_bumps,
    with_resources,
)

pytestmark = pytest.mark.reliability

TAG = "v4.0.0-alpha.1"
NO_SOCKET = "unix:///nonexistent.sock"
NO_GO = "/nonexistent/go"


def test_preflight_names_every_system_that_does_not_answer(tmp_path):
    dead = f"127.0.0.1:{local_stack.free_port()}"
    with pytest.raises(preflight.PreflightError) as refused:
        preflight.check(
            go=GoResource(go_binary=NO_GO, cache_dir=str(tmp_path)),
            docker=DockerResource(base_url=NO_SOCKET),
            registry=RegistryResource(host=dead),
            s3=S3Resource(bucket="artifacts", endpoint_url=f"http://{dead}"),
            gitops=GitOpsResource(root=str(tmp_path / "nowhere")),
            gitops_repos=["gitops-development"],
        )
    problems = dict(p.split(": ", 1) for p in refused.value.problems)
    assert sorted(problems) == ["docker", "gitops gitops-development", "go", "registry", "s3"]
    assert NO_GO in problems["go"]
    assert f"no Docker engine answers at {NO_SOCKET}" in problems["docker"]
    assert f"registry {dead} unreachable" in problems["registry"]
    assert f"s3://artifacts/ via http://{dead} failed" in problems["s3"]
    assert (
        f"{tmp_path}/nowhere/gitops-development.git does not answer"
        in problems["gitops gitops-development"]
    )
    assert str(refused.value).startswith("preflight failed, nothing was changed: ")


def test_preflight_passes_on_the_real_stack(tmp_path, fresh_registry, s3_bucket, git_root):
    endpoint, bucket = s3_bucket
    answers = preflight.check(
        go=GoResource(cache_dir=str(tmp_path)),
        docker=DockerResource(),
        registry=RegistryResource(host=fresh_registry),
        s3=S3Resource(bucket=bucket, endpoint_url=endpoint),
        gitops=GitOpsResource(root=str(git_root)),
        gitops_repos=["gitops-development", "terraform-apps-production"],
        go_version="1.24",
    )
    assert answers["go"].startswith("go1.24")
    assert answers["registry"] == f"registry {fresh_registry} answers /v2/"
    assert answers["s3"] == f"bucket s3://{bucket} answers at {endpoint}"
    assert answers["gitops terraform-apps-production"].startswith(
        f"GitOps repo {git_root}/terraform-apps-production.git at "
    )
    with pytest.raises(
        preflight.PreflightError,
        match=r"go: Go toolchain is go1\.24\.\d+, the pipeline config "
        r"asks for go1\.99",
    ):
        preflight.check(go=GoResource(cache_dir=str(tmp_path)), go_version="1.99")


@pytest.mark.parametrize(
    "fault",
    [
        "docker engine missing",
        "go toolchain missing",
        "registry down",
        "s3 down",
        "gitops repo missing",
    ],
)
def test_a_missing_system_fails_the_release_before_any_side_effect(
    fault, rig, fresh_registry, s3_bucket
):
    endpoint, bucket = s3_bucket
    dead = f"127.0.0.1:{local_stack.free_port()}"
    harness = rig(
        dead if fault == "registry down" else fresh_registry,
        f"http://{dead}" if fault == "s3 down" else endpoint,
        bucket,
    )
    if fault == "docker engine missing":
        with_resources(harness, docker=DockerResource(base_url=NO_SOCKET))
    elif fault == "go toolchain missing":
        with_resources(
            harness, go=GoResource(go_binary=NO_GO, cache_dir=str(harness.settings.cache_dir))
        )
    elif fault == "gitops repo missing":
        (Path(harness.settings.git_root) / "gitops-development.git").rename(
            Path(harness.settings.git_root) / "gitops-development.git.gone"
        )
    named = {
        "docker engine missing": f"no Docker engine answers at {NO_SOCKET}",
        "go toolchain missing": f"Go toolchain not found ('{NO_GO}')",
        "registry down": f"registry {dead} unreachable",
        "s3 down": f"via http://{dead} failed",
        "gitops repo missing": "gitops-development.git",
    }[fault]

    outcome = harness.release(TAG)

    assert not outcome.success
    error = failure(harness.instance, outcome.run_id)
    assert error.startswith("source: ") and named in error, error
    # Nothing left the machine: no image, no object, no GitOps commit, and no build was run.
    if fault != "registry down":
        catalog = requests.get(f"http://{fresh_registry}/v2/_catalog", timeout=10).json()
        assert catalog["repositories"] == []
    if fault != "s3 down":
        assert bucket_objects(S3Resource(bucket=bucket, endpoint_url=endpoint)) == {}
    if fault != "gitops repo missing":
        assert len(harness.gitops_log("gitops-development")) == 1
    assert gitops_bumps(harness, f"dev|{TAG}") == []
    assert not (harness.settings.work_dir / "dev" / TAG / "out").exists()
