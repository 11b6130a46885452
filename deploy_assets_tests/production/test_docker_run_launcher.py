"""One release the way production runs it: the code location serves from a container of the
code-location image, the daemon (PostgreSQL storage, queued runs) hands the sensor's run to
DockerRunLauncher, and the release executes in a new container of that image.

The images are built here from Debian packages alone (misc/scripts/build-base-image.sh:
debootstrap + docker import; misc/scripts/build-code-location-image.sh: wheels built on the host,
misc/dockerfiles/code-location.Dockerfile). Both scripts reuse an image whose inputs did not
change, so only the first run on a machine pays the full build.

Containers use the host network (this engine runs without a bridge), which is also how they
reach the registry, the S3 API and PostgreSQL on 127.0.0.1; the test's directory (bare git
repos, work and cache dirs) is mounted at the same path. Those two are the only changes to
dagster.production.yaml.
"""

import os
import subprocess
import uuid

import boto3
import dagster as dg
import docker
import pytest

from deploy_assets import local_stack
from deploy_assets.config import REPO_ROOT
from deploy_assets.history import latest_for_partition
from deploy_assets_tests.production import deployment

pytestmark = pytest.mark.slow

TAG = "v0.1.0-alpha.1"
MS = ["ms_chat", "ms_core", "ms_payments"]
SCRIPTS = REPO_ROOT / "misc" / "scripts"
TEST_ONLY_ENV = ["AWS_ENDPOINT_URL_S3", "DEPLOY_ASSETS_WORK_DIR", "DEPLOY_ASSETS_CACHE_DIR", "DEPLOY_ASSETS_GOCACHE"]


def _script(name: str, *args: str) -> str:
    done = subprocess.run([str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def code_location_image(docker_engine) -> str:
    if os.geteuid() != 0:
        pytest.fail("building the base image needs root (debootstrap)")
    _script("build-base-image.sh")
    return _script("build-code-location-image.sh")


def test_release_runs_in_a_container_of_the_code_location_image(harness, production, code_location_image, tmp_path):
    client = docker.from_env(timeout=600)  # creating a container copies the image on a vfs engine
    gocache = os.environ["DEPLOY_ASSETS_GOCACHE"]
    env = {**production.env, "DEPLOY_ASSETS_CODE_IMAGE": code_location_image,
           "DEPLOY_ASSETS_DOCKER_NETWORK": "host", "DEPLOY_ASSETS_GOCACHE": gocache}
    config = deployment.production_config()
    launcher = config["run_launcher"]["config"]
    launcher["env_vars"] += TEST_ONLY_ENV
    launcher["container_kwargs"]["volumes"] += [f"{tmp_path}:{tmp_path}", f"{gocache}:{gocache}"]
    production.write_config(config)

    container_env = {name: env[name] for name in launcher["env_vars"]}
    grpc_port = local_stack.free_port()
    label = f"deploy-assets-test-{uuid.uuid4().hex[:8]}"
    client.containers.run(  # the code location, as production runs it
        code_location_image, detach=True, network_mode="host", labels={label: "code-server"},
        environment={**container_env, "DAGSTER_CURRENT_IMAGE": code_location_image},
        volumes=[f"{tmp_path}:{tmp_path}", f"{gocache}:{gocache}"],
        command=["dagster", "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
                 "-m", "deploy_assets.definitions", "--location-name", "deploy_assets"])
    workspace = deployment.write_workspace(production.state_dir / "workspace.yaml", grpc_port=grpc_port)
    daemon = deployment.start_process([str(deployment.BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                                      env, production.state_dir, "daemon")
    run_containers = []
    try:
        with production.instance() as instance:
            deployment.wait_for(lambda: deployment.sensor_cursor(instance), 300,
                                "the tag sensor's first tick (code server in a container)", daemon)
            harness.monorepo.tag(TAG)
            # The run's container removes itself when it ends (auto_remove): look at it while it runs.
            seen = deployment.wait_for(lambda: _run_container(instance, client), 600,
                                       f"a container for the run of {TAG}", daemon)
            run_containers.append(seen["Id"])
            run = deployment.wait_for(
                lambda: (r := deployment.runs_for_tags(instance, [TAG]).get(TAG)) and r.is_finished and r,
                600, f"the run of {TAG} to finish", daemon)
            assert run.status == dg.DagsterRunStatus.SUCCESS, _run_failure(instance, run, client)

            # The run executed in a fresh container of our image, on the host network, then went away.
            assert run.tags["dagster/image"] == code_location_image
            assert run.tags["docker/container_id"] == seen["Id"]
            assert seen["Config"]["Image"] == code_location_image
            assert seen["Config"]["Labels"]["dagster/run_id"] == run.run_id
            assert seen["Config"]["Cmd"][:3] == ["dagster", "api", "execute_run"]
            assert seen["HostConfig"]["NetworkMode"] == "host"
            assert "/var/run/docker.sock:/var/run/docker.sock" in seen["HostConfig"]["Binds"]
            deployment.wait_for(lambda: not _exists(client, seen["Id"]), 120, "the run container to be removed")

            # What it released is real: images in the registry, binaries in S3, the GitOps bump.
            for name in MS:
                image = latest_for_partition(instance, dg.AssetKey(["image", name]), f"dev|{TAG}")
                assert image is not None and image.run_id == run.run_id
                assert harness.registry.manifest_digest(name, TAG) == image.metadata["digest"]
                stored = latest_for_partition(instance, dg.AssetKey(["s3", name]), f"dev|{TAG}")
                assert harness.s3.download_sha256(stored.metadata["s3_key_arm64"])[0] == stored.metadata["sha256_arm64"]
            assert harness.gitops_log("gitops-development")[0].split(" ", 1)[1] == \
                f"deploy(dev): {' '.join(MS)} -> {TAG}"

            # The run's stdout/stderr outlive its container: they are in the compute-log bucket.
            s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="eu-west-1")
            keys = [o["Key"] for o in s3.list_objects_v2(
                Bucket=env["DAGSTER_COMPUTE_LOGS_BUCKET"], Prefix="dagster-compute-logs/").get("Contents", [])]
            assert any(run.run_id in key for key in keys), keys
    finally:
        deployment.stop(daemon)
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for container_id in run_containers:
            try:
                client.containers.get(container_id).remove(force=True)
            except docker.errors.NotFound:
                pass


def _run_container(instance: dg.DagsterInstance, client: docker.DockerClient) -> dict | None:
    run = deployment.runs_for_tags(instance, [TAG]).get(TAG)
    container_id = run.tags.get("docker/container_id") if run else None
    if not container_id:
        return None
    try:
        return client.containers.get(container_id).attrs
    except docker.errors.NotFound:  # gone already: the run ended before we looked
        raise AssertionError(f"run {run.run_id} ({run.status}) ended before its container could be inspected") from None


def _exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
        return True
    except docker.errors.NotFound:
        return False


def _run_failure(instance: dg.DagsterInstance, run: dg.DagsterRun, client: docker.DockerClient) -> str:
    """The run's failure events and last error messages (its container is gone: auto_remove)."""
    events = [e.message for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.is_failure]
    errors = [e.user_message for e in instance.all_logs(run.run_id) if e.level >= 40][-5:]
    return f"run {run.run_id} {run.status}: {events}\nerrors: {errors}"
