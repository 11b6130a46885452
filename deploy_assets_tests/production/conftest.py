"""Fixtures of the production-like tests: a PostgreSQL server and a Dagster home on it.

The release components (registry, S3 API, git repos, monorepo) are the harness's, from the main
conftest; what this adds is the production storage and the environment that the daemon, the
webserver and run containers read (misc/configs/dagster.production.yaml).
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.local import stack as local_stack
from deploy_assets_tests.production import deployment
from deploy_assets_tests.production.postgres import (
    PostgresServer,
    PostgresUnavailable,
    start_postgres,
    stop_postgres,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real server per session (initdb is the slow part); each test gets its own database."""
    try:
        server = start_postgres(local_stack.free_port())
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL is needed for the production tests: {exc}")
    try:
        yield server
    finally:
        stop_postgres(server)


@dataclass
class ProductionDeployment:
    """A Dagster home with the production config, its environment, and the harness behind it."""

    home: Path
    env: dict[str, str]
    database: str
    postgres: PostgresServer
    state_dir: Path

    def write_config(self, config: dict) -> None:
        deployment.write_dagster_home(self.home, config)

    def instance(self) -> dg.DagsterInstance:
        """The instance exactly as the daemon and webserver load it (env refs resolved)."""
        return dg.DagsterInstance.from_config(str(self.home))


@pytest.fixture
def production(harness, postgres_server, s3_server, tmp_path, monkeypatch) -> ProductionDeployment:
    """Production storage (own database) + compute logs in the harness bucket on the S3 API.

    The variables are also set in this process, so the in-process instance resolves the
    config's `{env: ...}` references as the daemon does.
    """
    database = postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    home = tmp_path / "dagster_home"
    env = deployment.deployment_env(
        harness.settings,
        home,
        **postgres_server.env(database),
        DAGSTER_COMPUTE_LOGS_BUCKET=harness.settings.bucket,
        AWS_ENDPOINT_URL_S3=s3_server,
        WORKFLOW_PAT="",
    )
    for key in (
        "DAGSTER_HOME",
        "DAGSTER_COMPUTE_LOGS_BUCKET",
        "AWS_ENDPOINT_URL_S3",
        *postgres_server.env(database),
    ):
        monkeypatch.setenv(key, env[key])
    prod = ProductionDeployment(home, env, database, postgres_server, tmp_path / "processes")
    prod.write_config(deployment.production_config(run_launcher=deployment.DEFAULT_RUN_LAUNCHER))
    return prod
