"""Nobody launches a run who should not: the UI's door (misc/scripts/ui-proxy.sh).

Dagster's open-source webserver has no login, so the deployment puts the one that can launch
runs on 127.0.0.1 behind nginx (TLS + basic auth), and gives everyone else a
`dagster-webserver --read-only` on the proxy's no-auth port. Here both webservers are real
(one code server of deploy_assets.definitions behind them, a sqlite DAGSTER_HOME with the
local config's run queue), and every attempt is a real GraphQL `launchRun` of the rollback
job; the outcome is read from the instance's run storage. No daemon runs, so a launched run
stays QUEUED and nothing is rolled back: the point is whether a run record exists.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from deploy_assets.cli.demo import EXAMPLE_MONOREPO, create_monorepo
from deploy_assets.local import stack as local_stack
from deploy_assets_tests.conftest import make_settings
from deploy_assets_tests.production import deployment
from deploy_assets_tests.production.ui_access import (
    LAUNCH_RUN,
    Proxy,
    graphql,
    job_names,
    launch_params,
    proxy_env,
    start_proxy,
    ui_proxy,
)

USER, PASSWORD = "release-manager", "correct horse battery staple"
ROLLBACK = launch_params("rollback", {"ops": {"rollback_env": {"config": {"env": "dev"}}}})
READY_TIMEOUT = 120  # code server + two webservers loading the definitions on 2 busy cores


@dataclass
class Door:
    proxy: Proxy
    writable_url: str  # http://127.0.0.1:PORT: reachable from this host only
    home: Path

    def run_ids(self) -> set[str]:
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            return {run.run_id for run in instance.get_runs()}


def _webserver(env, state, workspace, name: str, *flags: str) -> tuple[Path, str]:
    port = local_stack.free_port()
    pidfile = deployment.start_process(
        [
            str(deployment.BIN / "dagster-webserver"),
            "-w",
            str(workspace),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            *flags,
        ],
        env,
        state,
        name,
    )
    return pidfile, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def door(tmp_path_factory) -> Iterator[Door]:
    """Code server, writable + read-only webservers, and the proxy; all stopped by pid after."""
    tmp = tmp_path_factory.mktemp("ui_access")
    create_monorepo(tmp / "git" / "monorepo.git", tmp / "monorepo", EXAMPLE_MONOREPO)
    # Nothing is released here: the registry and S3 settings only need to parse.
    settings = make_settings(
        tmp,
        "127.0.0.1:9",
        "http://127.0.0.1:9",
        tmp / "gitops",
        tmp / "git" / "monorepo.git",
        "unused-bucket",
    )
    home = deployment.write_dagster_home(
        tmp / "dagster_home", yaml.safe_load(deployment.LOCAL_YAML.read_text())
    )
    env = deployment.deployment_env(settings, home)
    patch = pytest.MonkeyPatch()
    patch.setenv("DAGSTER_HOME", str(home))  # the local config reads {env: DAGSTER_HOME}
    # The sqlite schema is made once, here: three processes creating it at once race in alembic.
    dg.DagsterInstance.from_config(str(home)).dispose()
    state = tmp / "processes"
    grpc_port = local_stack.free_port()
    workspace = deployment.write_workspace(state / "workspace.yaml", grpc_port=grpc_port)
    pidfiles = [
        deployment.start_process(
            [
                str(deployment.BIN / "dagster"),
                "code-server",
                "start",
                "-h",
                "127.0.0.1",
                "-p",
                str(grpc_port),
                "-m",
                "deploy_assets.definitions",
            ],
            env,
            state,
            "code-server",
        )
    ]
    proxy = None
    try:
        writable_pid, writable_url = _webserver(env, state, workspace, "webserver")
        read_only_pid, read_only_url = _webserver(
            env, state, workspace, "webserver-read-only", "--read-only"
        )
        pidfiles += [writable_pid, read_only_pid]
        for url, pidfile in ((writable_url, writable_pid), (read_only_url, read_only_pid)):
            deployment.wait_for(
                lambda: "rollback" in job_names(url),
                READY_TIMEOUT,
                f"{url} to serve the rollback job",
                pidfile,
            )
        proxy = start_proxy(
            proxy_env(
                tmp / "ui-proxy",
                writable_url.removeprefix("http://"),
                read_only_url.removeprefix("http://"),
                env,
            ),
            USER,
            PASSWORD,
        )
        yield Door(proxy, writable_url, home)
    finally:
        patch.undo()
        if proxy is not None:
            stopped = ui_proxy(proxy.env, "stop")
            local_stack.stop_process(
                proxy.pidfile, grace=deployment.STOP_GRACE, expect="nginx"
            )  # if stop failed
            assert stopped.returncode == 0, stopped.stderr
        for pidfile in reversed(pidfiles):
            deployment.stop(pidfile)


def test_without_credentials_the_proxy_answers_401_and_launches_nothing(door):
    before = door.run_ids()
    answer = graphql(door.proxy.url, LAUNCH_RUN, ROLLBACK, cafile=door.proxy.cert)
    assert answer.status == 401
    assert answer.www_authenticate and answer.www_authenticate.startswith("Basic ")
    assert door.run_ids() == before


def test_wrong_credentials_get_401_and_launch_nothing(door):
    before = door.run_ids()
    for credentials in ((USER, "wrong password"), ("someone-else", PASSWORD)):
        answer = graphql(
            door.proxy.url, LAUNCH_RUN, ROLLBACK, cafile=door.proxy.cert, credentials=credentials
        )
        assert answer.status == 401, credentials[0]
    assert door.run_ids() == before


def test_the_read_only_webserver_refuses_launch_run(door):
    """Its port needs no login (anyone may look); the mutation is refused by the webserver."""
    before = door.run_ids()
    answer = graphql(door.proxy.read_only_url, LAUNCH_RUN, ROLLBACK, cafile=door.proxy.cert)
    assert answer.status == 200
    result = answer.body["data"]["launchRun"]
    assert result["__typename"] == "UnauthorizedError", result
    assert door.run_ids() == before


def test_with_credentials_through_the_proxy_the_run_is_created(door):
    before = door.run_ids()
    answer = graphql(
        door.proxy.url, LAUNCH_RUN, ROLLBACK, cafile=door.proxy.cert, credentials=(USER, PASSWORD)
    )
    assert answer.status == 200
    result = answer.body["data"]["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id = result["run"]["runId"]
    assert door.run_ids() == before | {run_id}
    with dg.DagsterInstance.from_config(str(door.home)) as instance:
        run = instance.get_run_by_id(run_id)
    assert run.job_name == "rollback"
    assert run.status == dg.DagsterRunStatus.QUEUED  # enqueued; no daemon here to start it
    # Who launched it is on record: nginx's access log names the authenticated user.
    assert any(
        f" {USER} " in line and "POST /graphql" in line and '" 200 ' in line
        for line in (door.proxy.state_dir / "access.log").read_text().splitlines()
    )


def test_the_proxy_refuses_to_start_without_a_user_or_with_a_public_upstream(door, tmp_path):
    """Preflight names the value to fix, and nothing is started (no pid file)."""
    env = {**door.proxy.env, "UI_PROXY_DIR": str(tmp_path / "proxy")}
    assert ui_proxy(env, "self-signed-cert").returncode == 0
    no_user = ui_proxy(env, "start")
    assert (
        no_user.returncode == 1
        and f"no user in {tmp_path / 'proxy' / 'htpasswd'}" in no_user.stderr
    )
    assert ui_proxy(env, "passwd", USER, stdin=PASSWORD).returncode == 0
    public = ui_proxy({**env, "UI_PROXY_UPSTREAM": "0.0.0.0:3000"}, "start")
    assert public.returncode == 1 and "UI_PROXY_UPSTREAM=0.0.0.0:3000" in public.stderr
    injected = ui_proxy({**env, "UI_PROXY_LISTEN": "127.0.0.1:1; include /etc/passwd"}, "start")
    assert (
        injected.returncode == 1
        and "UI_PROXY_LISTEN=127.0.0.1:1; include /etc/passwd" in injected.stderr
    )
    assert not (tmp_path / "proxy" / "nginx.pid").exists()
