"""Releases the way production runs them: the code location serves from a container of the
code-location image, the daemon (PostgreSQL storage, queued runs) hands the sensor's runs to
DockerRunLauncher, and each release executes in a new container of that image.

The images are built here from Debian packages alone (misc/scripts/build-base-image.sh:
debootstrap + docker import; misc/scripts/build-code-location-image.sh: wheels built on the host,
misc/dockerfiles/code-location.Dockerfile). Both scripts reuse an image whose inputs did not
change, so only the first run on a machine pays the full build.

The instance config is dagster.production.yaml changed only in its network (this engine runs
without a bridge, so containers use the host network) and endpoints (the S3 API's URL is passed
on). Nothing is mounted but the Docker socket: every container starts with an empty disk and
shares with the others only PostgreSQL, the registry, the S3 API and the git remotes, which are
served over git's smart HTTP (deploy_assets_tests/git_http.py). So the rc builds in one fresh
container, and the prod promotion of its commit, in another, must find everything it reuses
through that shared state: it runs no `go build` and ships the rc's image digests.
"""

import os
import subprocess
import uuid

import boto3
import dagster as dg
import docker
import pytest

from deploy_assets.config import REPO_ROOT
from deploy_assets.local import stack as local_stack
from deploy_assets.records.history import latest_for_partition
from deploy_assets_tests.conftest import make_settings
from deploy_assets_tests.git_http import serve_git
from deploy_assets_tests.production import deployment

# Two cold-container releases after a possible image build: well past the suite's 900 s default.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

RC, PROD = "v0.1.0-rc.1", "v0.1.0"
MS = ["ms_chat", "ms_core", "ms_payments"]
SCRIPTS = REPO_ROOT / "misc" / "scripts"
ENDPOINT_ENV = ["AWS_ENDPOINT_URL_S3"]  # the S3 API's address: an endpoint, as AWS S3 needs none
DOCKER_SOCKET = "/var/run/docker.sock:/var/run/docker.sock"
USER = "x-access-token"
SHARED_ORIGINS = (
    "bucket cache",
    "local cache",
)  # metadata build_<platform> of a binary not built again


def _script(name: str, *args: str) -> str:
    done = subprocess.run(
        [str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, (
        f"{name} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def code_location_image(docker_engine) -> str:
    if os.geteuid() != 0:
        pytest.fail("building the base image needs root (debootstrap)")
    _script("build-base-image.sh")
    return _script("build-code-location-image.sh")


@pytest.fixture
def served(harness, production, tmp_path, fresh_registry, s3_server):
    """The harness's git repos over smart HTTP with a token, and the deployment's environment
    pointing at them: what a container reaches over the network instead of a mount."""
    token = f"ghs_{uuid.uuid4().hex}"
    root = tmp_path / "git"
    with serve_git(root, USER, token) as (base, _):
        remote = base.replace("http://", f"http://{USER}:{token}@")
        settings = make_settings(
            tmp_path,
            fresh_registry,
            s3_server,
            root,
            harness.monorepo.bare,
            harness.settings.bucket,
            DEPLOY_ASSETS_SOURCE_REPO=f"{remote}/monorepo.git",
            DEPLOY_ASSETS_GITOPS_ROOT=remote,
        )
        yield {**production.env, **deployment.settings_env(settings)}


def test_rc_then_prod_each_in_a_fresh_container_promote_without_building(
    harness, production, served, code_location_image, record_property
):
    client = docker.from_env(timeout=600)  # creating a container copies the image on a vfs engine
    env = {
        **served,
        "DEPLOY_ASSETS_CODE_IMAGE": code_location_image,
        "DEPLOY_ASSETS_DOCKER_NETWORK": "host",
    }
    config = deployment.production_config()
    launcher = config["run_launcher"]["config"]
    launcher["env_vars"] += ENDPOINT_ENV
    production.write_config(config)
    assert launcher["container_kwargs"]["volumes"] == [
        DOCKER_SOCKET
    ]  # the shipped file: no disk shared

    label = f"deploy-assets-test-{uuid.uuid4().hex[:8]}"
    grpc_port = local_stack.free_port()
    client.containers.run(  # the code location, as production runs it: no volume at all
        code_location_image,
        detach=True,
        network_mode="host",
        labels={label: "code-server"},
        environment={
            **{name: env[name] for name in launcher["env_vars"]},
            "DAGSTER_CURRENT_IMAGE": code_location_image,
        },
        command=[
            "dagster",
            "code-server",
            "start",
            "-h",
            "127.0.0.1",
            "-p",
            str(grpc_port),
            "-m",
            "deploy_assets.definitions",
            "--location-name",
            "deploy_assets",
        ],
    )
    workspace = deployment.write_workspace(
        production.state_dir / "workspace.yaml", grpc_port=grpc_port
    )
    daemon = deployment.start_process(
        [str(deployment.BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        env,
        production.state_dir,
        "daemon",
    )
    containers = []
    try:
        with production.instance() as instance:
            deployment.wait_for(
                lambda: deployment.sensor_cursor(instance),
                300,
                "the tag sensor's first tick (code server in a container)",
                daemon,
            )
            rc_run, rc_container = _release(instance, client, harness, RC, daemon, containers)
            prod_run, prod_container = _release(instance, client, harness, PROD, daemon, containers)
            assert rc_container["Id"] != prod_container["Id"]

            # The promotion in its fresh container built nothing: every binary came from shared state.
            builds = _build_origins(instance, harness, f"prod|{PROD}")
            built = sorted(name for name, origin in builds.items() if origin not in SHARED_ORIGINS)
            record_property("prod_go_builds", sum(origin == "built" for origin in builds.values()))
            print(f"\nprod binaries in a fresh container: {builds}")
            assert built == [], (
                f"the prod run did not take {built} from the build cache (origins {builds})"
            )
            # ... and ships the very images the rc validated.
            for name in MS:
                rc_image = latest_for_partition(
                    instance, dg.AssetKey(["image", name]), f"staging|{RC}"
                )
                prod_image = latest_for_partition(
                    instance, dg.AssetKey(["image", name]), f"prod|{PROD}"
                )
                assert rc_image.run_id == rc_run.run_id and prod_image.run_id == prod_run.run_id
                assert prod_image.metadata["digest"] == rc_image.metadata["digest"], name
                assert (
                    harness.registry.manifest_digest(name, PROD)
                    == rc_image.metadata["digest"]
                    == harness.registry.manifest_digest(name, RC)
                )
                stored = latest_for_partition(instance, dg.AssetKey(["s3", name]), f"prod|{PROD}")
                assert (
                    harness.s3.download_sha256(stored.metadata["s3_key_arm64"])[0]
                    == stored.metadata["sha256_arm64"]
                )
            assert (
                harness.gitops_log("gitops-production")[0]
                .split(" ", 1)[1]
                .startswith("deploy(prod): ")
            )

            wall = _wall_time(instance, prod_run)
            record_property("prod_fresh_container_wall_s", round(wall, 1))
            print(
                f"prod release in a fresh container, run launch to success: {wall:.1f}s "
                f"(rc: {_wall_time(instance, rc_run):.1f}s)"
            )

            # The runs' stdout/stderr outlive their containers: they are in the compute-log bucket.
            s3 = boto3.client(
                "s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="eu-west-1"
            )
            keys = [
                o["Key"]
                for o in s3.list_objects_v2(
                    Bucket=env["DAGSTER_COMPUTE_LOGS_BUCKET"], Prefix="dagster-compute-logs/"
                ).get("Contents", [])
            ]
            assert any(prod_run.run_id in key for key in keys), keys
    finally:
        deployment.stop(daemon)
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for container_id in containers:
            try:
                client.containers.get(container_id).remove(force=True)
            except docker.errors.NotFound:
                pass


def _release(
    instance, client, harness, tag: str, daemon, containers: list[str]
) -> tuple[dg.DagsterRun, dict]:
    """Tag HEAD, let the sensor launch the release, and check it ran in a new, bare container."""
    harness.monorepo.tag(tag)
    # The run's container removes itself when it ends (auto_remove): look at it while it runs.
    seen = deployment.wait_for(
        lambda: _run_container(instance, client, tag),
        600,
        f"a container for the run of {tag}",
        daemon,
    )
    containers.append(seen["Id"])
    run = deployment.wait_for(
        lambda: (r := deployment.runs_for_tags(instance, [tag]).get(tag)) and r.is_finished and r,
        1500,
        f"the run of {tag} to finish",
        daemon,
    )
    assert run.status == dg.DagsterRunStatus.SUCCESS, _run_failure(instance, run)
    assert run.tags["docker/container_id"] == seen["Id"]
    assert seen["Config"]["Image"] == run.tags["dagster/image"]
    assert seen["Config"]["Labels"]["dagster/run_id"] == run.run_id
    assert seen["Config"]["Cmd"][:3] == ["dagster", "api", "execute_run"]
    assert seen["HostConfig"]["NetworkMode"] == "host"
    assert seen["HostConfig"]["Binds"] == [
        DOCKER_SOCKET
    ]  # nothing of the host's disk but the engine
    deployment.wait_for(
        lambda: not _exists(client, seen["Id"]), 120, f"the container of {tag} to be removed"
    )
    return run, seen


def _build_origins(instance: dg.DagsterInstance, harness, partition: str) -> dict[str, str]:
    """Where each binary of the release came from (metadata build_<platform>: built / local
    cache / bucket cache), for every binary the partition materialized."""
    origins = {}
    for key in instance.get_asset_keys(prefix=["binary"]):
        found = latest_for_partition(instance, key, partition)
        if found is not None:
            for platform in harness.config.platforms:
                origins[f"{key.path[-1]}/{platform}"] = str(
                    found.metadata.get(f"build_{platform}", "(not recorded)")
                )
    assert origins, f"no binary materialized for {partition}"
    return origins


def _wall_time(instance: dg.DagsterInstance, run: dg.DagsterRun) -> float:
    """From the run's creation (the sensor's launch) to its end."""
    record = instance.get_run_records(filters=dg.RunsFilter(run_ids=[run.run_id]))[0]
    return record.end_time - record.create_timestamp.timestamp()


def _run_container(
    instance: dg.DagsterInstance, client: docker.DockerClient, tag: str
) -> dict | None:
    run = deployment.runs_for_tags(instance, [tag]).get(tag)
    container_id = run.tags.get("docker/container_id") if run else None
    if not container_id:
        return None
    try:
        return client.containers.get(container_id).attrs
    except docker.errors.NotFound:  # gone already: the run ended before we looked
        raise AssertionError(
            f"run {run.run_id} ({run.status}) ended before its container could be inspected"
        ) from None


def _exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
        return True
    except docker.errors.NotFound:
        return False


def _run_failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """The run's failure events and last error messages (its container is gone: auto_remove)."""
    events = [
        e.message
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.is_failure
    ]
    errors = [e.user_message for e in instance.all_logs(run.run_id) if e.level >= 40][-5:]
    return f"run {run.run_id} {run.status}: {events}\nerrors: {errors}"
