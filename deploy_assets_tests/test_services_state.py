"""The service list is state refreshed on purpose: loading the code location runs no git.

Real git repos and the code location's own loading paths (`build_definitions`, the `defs`
entry point the code server loads, `deploy-assets refresh`). Git processes are counted with
GIT_TRACE, which every git process appends to; the remote being down is its bare repo moved away.
"""

import json
import logging
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.cli import commands as cli
from deploy_assets.config import load_pipeline_config
from deploy_assets.definitions import build_definitions, defs as code_location_defs
from deploy_assets.records.release_rows import service_names
from deploy_assets.state.services import (
    ServiceState,
    ServiceStateError,
    read_state,
    refresh,
    state_path,
)
from deploy_assets_tests.conftest import make_settings
from deploy_assets_tests.production.deployment import settings_env

SERVICES = [
    "cli_core",
    "lambda_auth_handler",
    "lambda_webhook_handler",
    "ms_chat",
    "ms_core",
    "ms_payments",
]
NEW_MAIN = "package main\n\nfunc main() {}\n"


@pytest.fixture
def settings(tmp_path, monorepo, monkeypatch):
    """Settings for the monorepo, also as the environment the code location's `defs` reads."""
    settings = make_settings(
        tmp_path,
        "registry.test:5000",
        "http://127.0.0.1:9",
        tmp_path / "git",
        monorepo.bare,
        "unused",
    )
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DEPLOY_ASSETS_ENV_FILE", str(tmp_path / "no.env"))
    return settings


@pytest.fixture
def git_trace(tmp_path, monkeypatch) -> Path:
    trace = tmp_path / "git-trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    return trace


def git_commands(trace: Path) -> list[str]:
    """The git commands run since the trace began (`trace: built-in: git fetch ...` lines)."""
    if not trace.exists():
        return []
    return [
        line.split("built-in: ", 1)[1]
        for line in trace.read_text().splitlines()
        if "built-in: git" in line
    ]


def test_the_code_location_loads_with_the_remote_down_after_a_refresh(
    settings, monorepo, git_trace, tmp_path
):
    refresh(settings, load_pipeline_config())
    monorepo.bare.rename(tmp_path / "remote-is-down.git")
    git_trace.unlink()

    assert service_names(build_definitions(settings)) == SERVICES
    assert service_names(code_location_defs()) == SERVICES  # the entry point the code server loads
    assert git_commands(git_trace) == [] and not git_trace.exists()


def test_the_first_load_with_no_state_discovers_once_and_records_it(
    settings, monorepo, git_trace, caplog
):
    path = state_path(settings)
    assert not path.exists()
    with caplog.at_level(logging.WARNING):
        assert service_names(code_location_defs()) == SERVICES
    assert any(c.startswith("git fetch") for c in git_commands(git_trace)), git_commands(git_trace)
    assert (
        f"service state {path}: none exists yet; discovering the services once from {monorepo.bare}"
        in caplog.text
    )
    recorded = json.loads(path.read_text())
    assert [s["name"] for s in recorded["services"]] == [
        "ms_chat",
        "ms_core",
        "ms_payments",
        "lambda_auth_handler",
        "lambda_webhook_handler",
        "cli_core",
    ]
    assert recorded["commit"] == monorepo.head() and recorded["remote"] == str(monorepo.bare)

    git_trace.unlink()
    assert service_names(build_definitions(settings)) == SERVICES  # the second load reads the file
    assert git_commands(git_trace) == []


def test_refresh_prints_an_added_service_and_says_to_reload(settings, monorepo, capsys):
    assert cli.main(["refresh"]) == 0
    first = capsys.readouterr().out
    assert (
        "added cli_core, lambda_auth_handler, lambda_webhook_handler, ms_chat, ms_core, ms_payments"
        in first
    )
    monorepo.write("cmd/ms/ms_search/main.go", NEW_MAIN)
    head = monorepo.commit("ms_search: a new service")
    loaded = build_definitions(settings)  # a code location loaded before the refresh

    assert cli.main(["refresh"]) == 0
    out = capsys.readouterr().out
    assert (
        f"services of {monorepo.bare} at {head[:12]} (HEAD), recorded in {state_path(settings)}:"
        in out
    )
    assert "  ms_search                ms       cmd/ms/ms_search" in out
    assert "added ms_search; removed none since " in out
    assert "after a reload (UI: Deployment -> Reload" in out
    assert "ms_search" not in service_names(loaded)
    assert "ms_search" in service_names(build_definitions(settings))  # the reload
    assert read_state(state_path(settings)).commit == head


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "is corrupt (JSONDecodeError"),
        ('{"format": 1, "services": [{"name": "ms_core"}]}', "is corrupt (TypeError"),
        ('{"format": 7}', "is corrupt (ValueError: format 7, expected 1)"),
        (None, "is unreadable ("),  # a directory where the file should be
    ],
)
def test_an_unusable_state_file_fails_the_load_naming_it_and_refresh(settings, content, problem):
    path = state_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(content) if content is not None else path.mkdir()
    for load in (lambda: build_definitions(settings), code_location_defs):
        with pytest.raises(ServiceStateError) as failed:
            load()
        assert f"service state {path} {problem}" in str(failed.value)
        assert "run `deploy-assets refresh`" in str(failed.value)


def test_no_state_and_the_remote_down_fails_the_load_instead_of_an_empty_code_location(
    settings, monorepo, tmp_path
):
    monorepo.bare.rename(tmp_path / "remote-is-down.git")
    with pytest.raises(ServiceStateError) as failed:
        code_location_defs()
    message = str(failed.value)
    assert f"no usable service state at {state_path(settings)} (none exists yet)" in message
    assert f"the source remote {monorepo.bare} cannot be read" in message
    assert "run `deploy-assets refresh` once it answers" in message
    assert not state_path(settings).exists()


def test_another_source_layout_rediscovers_instead_of_using_a_list_found_with_other_globs(
    settings, git_trace
):
    config = load_pipeline_config()
    refresh(settings, config)
    only_ms = config.model_copy(
        update={
            "source": config.source.model_copy(update={"kinds": {"ms": config.source.kinds["ms"]}})
        }
    )
    git_trace.unlink()
    assert service_names(build_definitions(settings, only_ms)) == [
        "ms_chat",
        "ms_core",
        "ms_payments",
    ]
    assert any(c.startswith("git fetch") for c in git_commands(git_trace))


# --- a run worker builds the code server's list, not the file's ---------------------------------


def launch_through_code_server(
    instance: dg.DagsterInstance,
    workspace_file: Path,
    job: str,
    asset: dg.AssetKey,
    partition_key: str,
    tags: dict[str, str],
) -> str:
    """What the UI's Materialize and the daemon's dequeue do: the code server (a gRPC subprocess)
    makes the execution plan, the instance's run launcher (DefaultRunLauncher) starts a worker
    process that reconstructs the code location from it. Returns the run id once it finished."""
    import time

    from dagster._core.definitions.selector import JobSubsetSelector
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    from deploy_assets.assets.partitions import release_partitions

    with WorkspaceProcessContext(instance, WorkspaceFileTarget([str(workspace_file)])) as process:
        request = process.create_request_context()
        location = request.get_code_location("deploy_assets")
        remote = location.get_job(
            JobSubsetSelector(
                location_name="deploy_assets",
                repository_name="__repository__",
                job_name=job,
                op_selection=None,
                asset_selection={asset},
            )
        )
        plan = location.get_execution_plan(
            remote, {}, step_keys_to_execute=None, known_state=None, instance=instance
        )
        run = instance.create_run(
            job_name=job,
            run_id=None,
            run_config={},
            resolved_op_selection=None,
            step_keys_to_execute=None,
            op_selection=None,
            status=None,
            root_run_id=None,
            parent_run_id=None,
            tags={
                **remote.tags,
                **release_partitions.get_tags_for_partition_key(partition_key),
                **tags,
            },
            job_snapshot=remote.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote.parent_job_snapshot,
            remote_job_origin=remote.get_remote_origin(),
            job_code_origin=remote.get_python_origin(),
            asset_selection=frozenset({asset}),
            asset_check_selection=None,
            asset_graph=location.get_repository("__repository__").asset_graph,
        )
        instance.launch_run(run.run_id, request)
        deadline = time.monotonic() + 180
        while not instance.get_run_by_id(run.run_id).is_finished:
            assert time.monotonic() < deadline, (
                f"run {run.run_id} is {instance.get_run_by_id(run.run_id).status} after 180 s"
            )
            time.sleep(0.5)
    return run.run_id


def test_a_run_worker_builds_the_code_servers_list_even_if_the_state_changed_since(
    harness, tmp_path, monkeypatch
):
    from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
    from deploy_assets.assets.source import SOURCE_KEY
    from deploy_assets.state.services import new_state, write_state
    from deploy_assets_tests.production.deployment import write_workspace

    for key, value in settings_env(harness.settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DEPLOY_ASSETS_ENV_FILE", str(tmp_path / "no.env"))
    settings, config, tag = harness.settings, harness.config, "v0.6.0-alpha.1"
    refresh(settings, config)
    harness.monorepo.tag(tag)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [tag])
    path = state_path(settings)

    class ChangeStateAfterPlan:  # the code server has loaded by the time the run is created
        def __init__(self):
            self.original = read_state(path)

        def __call__(self):
            without_core = [s for s in self.original.services if s.name != "ms_core"]
            write_state(path, new_state(without_core, self.original.commit, settings, config))

    change = ChangeStateAfterPlan()
    monkeypatch.setattr(
        harness.instance, "launch_run", _before(change, harness.instance.launch_run)
    )
    run_id = launch_through_code_server(
        harness.instance,
        write_workspace(tmp_path / "workspace.yaml"),
        "release_to_dev",
        SOURCE_KEY,
        release_partition_key("dev", tag),
        {},
    )

    assert "ms_core" not in read_state(path).names  # the file changed under the run
    run = harness.instance.get_run_by_id(run_id)
    snapshot = harness.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    recorded = snapshot.repository_load_data.reconstruction_metadata["deploy_assets/services"]
    carried = ServiceState.from_json(json.loads(recorded.data), "the run's execution plan snapshot")
    assert "ms_core" in carried.names  # what the code server had, carried by the run
    # The worker knew ms_core: had it read the file, `source` would have refused the release.
    assert run.status == dg.DagsterRunStatus.SUCCESS, [
        e.message
        for e in harness.instance.all_logs(run_id)
        if e.is_dagster_event and e.dagster_event.is_step_failure
    ]
    assert "ms_core" in harness.metadata("source", f"dev|{tag}")["services"]
    assert "ms_core" not in service_names(
        build_definitions(settings)
    )  # a reload would see the new file


def _before(hook, fn):
    def wrapped(*args, **kwargs):
        hook()
        return fn(*args, **kwargs)

    return wrapped
