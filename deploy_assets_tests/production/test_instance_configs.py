"""The dagster.yaml variants load as Dagster instances and say what the README promises.

misc/configs/dagster.local.yaml: sqlite under DAGSTER_HOME, runs as local processes.
misc/configs/dagster.production.yaml: PostgreSQL (loaded against a real server), queued runs
with one release per env, runs in containers of the code-location image, logs in S3.
misc/configs/dagster.production-k8s.yaml: the same with K8sRunLauncher (dagster-k8s is not
installed here, so only its agreement with the Docker variant is checked).
"""

import re
import shutil

import dagster as dg
import yaml
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_docker import DockerRunLauncher
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from deploy_assets.config import REPO_ROOT
from deploy_assets.local.instance import ENGINES_KEPT, EngineReusingSqliteEventLogStorage
from deploy_assets_tests.production import deployment

K8S_YAML = REPO_ROOT / "misc" / "configs" / "dagster.production-k8s.yaml"
# Settings that point a run at a folder of its own disk: passed on, they would claim a shared
# folder that a fresh container or pod does not have.
WORKER_DISK_ENV = {
    "DEPLOY_ASSETS_WORK_DIR",
    "DEPLOY_ASSETS_CACHE_DIR",
    "DEPLOY_ASSETS_GOCACHE",
    "DEPLOY_ASSETS_LOCAL_DIR",
    "GOCACHE",
}
ENV_LIMITS = [
    {"key": "deploy_assets/env", "limit": 1, "value": {"applyLimitPerUniqueValue": True}},
    {"key": "deploy_assets/env", "value": "prod", "limit": 1},
]


def test_local_config_is_sqlite_with_one_run_per_env(tmp_path, monkeypatch):
    home = deployment.write_dagster_home(
        tmp_path / "home", yaml.safe_load(deployment.LOCAL_YAML.read_text())
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # as `dagster dev` and the CLI always have it
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.tag_concurrency_limits == ENV_LIMITS[:1]
        run = instance.create_run_for_job(
            dg.GraphDefinition("noop").to_job(), tags={"deploy_assets/env": "dev"}
        )
        assert instance.get_run_by_id(run.run_id).tags["deploy_assets/env"] == "dev"
    assert (home / "history" / "runs.db").is_file()


def test_local_storage_keeps_one_engine_per_shard_in_dagsters_own_file_layout(
    tmp_path, monkeypatch
):
    @dg.asset
    def probe() -> int:
        return 1

    home = deployment.write_dagster_home(
        tmp_path / "home", yaml.safe_load(deployment.LOCAL_YAML.read_text())
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    runs = ENGINES_KEPT + 4
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, EngineReusingSqliteEventLogStorage)
        run_ids = [dg.materialize([probe], instance=instance).run_id for _ in range(runs)]
        assert (
            len(storage._engines) == ENGINES_KEPT and "index" in storage._engines
        )  # bounded, index kept
        assert run_ids[-1] in storage._engines and run_ids[0] not in storage._engines
    # Dagster's stock sqlite storage reads the same files: nothing to migrate either way.
    plain = deployment.write_dagster_home(tmp_path / "plain", {"telemetry": {"enabled": False}})
    shutil.copytree(home / "history", plain / "history")
    with dg.DagsterInstance.from_config(str(plain)) as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        found = instance.fetch_materializations(dg.AssetKey("probe"), limit=100).records
        assert sorted(r.run_id for r in found) == sorted(run_ids)


def test_production_config_loads_against_postgres(production, monkeypatch):
    monkeypatch.setenv("DEPLOY_ASSETS_CODE_IMAGE", "registry.example:5000/deploy-assets:abc123")
    monkeypatch.setenv("DEPLOY_ASSETS_DOCKER_NETWORK", "deploy-assets")
    production.write_config(deployment.production_config())
    with production.instance() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.tag_concurrency_limits == ENV_LIMITS and queue.max_concurrent_runs == 3

        launcher = instance.run_launcher
        assert isinstance(launcher, DockerRunLauncher)
        assert launcher.image == "registry.example:5000/deploy-assets:abc123"
        assert launcher.networks == ["deploy-assets"]
        assert "/var/run/docker.sock:/var/run/docker.sock" in launcher.container_kwargs["volumes"]

        logs = instance.compute_log_manager
        assert isinstance(logs, S3ComputeLogManager)
        assert logs._s3_bucket == production.env["DAGSTER_COMPUTE_LOGS_BUCKET"]  # noqa: SLF001
        # AWS_ENDPOINT_URL_S3 (the config's documented way to an S3-compatible store) is honoured.
        assert logs._s3_session.meta.endpoint_url == production.env["AWS_ENDPOINT_URL_S3"]  # noqa: SLF001

        # A run written through the instance lands in this test's database on the server.
        run = instance.create_run_for_job(
            dg.GraphDefinition("noop").to_job(), tags={"deploy_assets/env": "prod"}
        )
    rows = production.postgres.query(production.database, "SELECT run_id, status FROM runs")
    assert rows == [(run.run_id, "NOT_STARTED")]


def test_run_containers_get_every_variable_the_instance_config_reads():
    """A run container loads the instance from the same config: each `{env: X}` it references
    must be passed on by the launcher, or the run dies before its first step."""
    text = deployment.PRODUCTION_YAML.read_text()
    referenced = set(re.findall(r"\{env: (\w+)\}", text))
    passed_on = set(yaml.safe_load(text)["run_launcher"]["config"]["env_vars"])
    launcher_only = {
        "DEPLOY_ASSETS_CODE_IMAGE",
        "DEPLOY_ASSETS_DOCKER_NETWORK",
    }  # read by the daemon alone
    assert referenced - launcher_only <= passed_on, referenced - launcher_only - passed_on
    assert {
        "DEPLOY_ASSETS_SOURCE_REPO",
        "DEPLOY_ASSETS_REGISTRY",
        "APP_ARCHIVER_BUCKET",
    } <= passed_on


def test_k8s_variant_differs_from_the_docker_one_only_in_the_launcher():
    docker, k8s = (
        yaml.safe_load(deployment.PRODUCTION_YAML.read_text()),
        yaml.safe_load(K8S_YAML.read_text()),
    )
    assert (
        k8s["run_launcher"]["module"] == "dagster_k8s"
        and k8s["run_launcher"]["class"] == "K8sRunLauncher"
    )
    assert k8s["run_launcher"]["config"]["job_image"] == {"env": "DEPLOY_ASSETS_CODE_IMAGE"}
    assert {k: v for k, v in k8s.items() if k != "run_launcher"} == {
        k: v for k, v in docker.items() if k != "run_launcher"
    }


def test_runs_need_no_disk_but_their_own_and_say_why():
    """Nothing a release needs lives only on a worker's disk (shared state: the instance, the
    bucket's build and compile caches, the registry, git), so no volume is declared for work or
    cache folders; the Docker container gets the engine's socket alone, and both files say why."""
    docker, k8s = (
        yaml.safe_load(deployment.PRODUCTION_YAML.read_text()),
        yaml.safe_load(K8S_YAML.read_text()),
    )
    docker_launcher, k8s_launcher = docker["run_launcher"]["config"], k8s["run_launcher"]["config"]
    assert docker_launcher["container_kwargs"]["volumes"] == [
        "/var/run/docker.sock:/var/run/docker.sock"
    ]
    assert not {"volumes", "volume_mounts", "run_k8s_config"} & set(k8s_launcher)
    for launcher in (docker_launcher, k8s_launcher):
        assert not WORKER_DISK_ENV & set(launcher.get("env_vars", [])), launcher["env_vars"]
    for path in (deployment.PRODUCTION_YAML, K8S_YAML):
        text = path.read_text()
        assert "build cache" in text and "compile cache" in text and "PostgreSQL" in text, path
