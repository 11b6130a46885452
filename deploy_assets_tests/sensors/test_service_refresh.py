"""The tag sensor refreshes the service state when a new tag brings a service the loaded code
location does not know, holds that release back saying to reload, and launches it after the
reload. Real git (the example monorepo), the sensor evaluated with build_sensor_context."""

import dagster as dg
import pytest

from deploy_assets.config import load_pipeline_config
from deploy_assets.definitions import build_definitions
from deploy_assets.sensors.release_tags import SENSOR_NAME
from deploy_assets.state.services import read_state, refresh, state_path
from deploy_assets_tests.conftest import make_settings
from deploy_assets_tests.test_services_state import NEW_MAIN, git_commands

TAG = "v0.5.0-alpha.1"


@pytest.fixture
def settings(tmp_path, monorepo):
    settings = make_settings(
        tmp_path,
        "registry.test:5000",
        "http://127.0.0.1:9",
        tmp_path / "git",
        monorepo.bare,
        "unused",
    )
    refresh(settings, load_pipeline_config())
    return settings


def tick(defs: dg.Definitions, cursor: str | None):
    with dg.build_sensor_context(
        cursor=cursor, definitions=defs, resources=dict(defs.resources)
    ) as context:
        return defs.resolve_sensor_def(SENSOR_NAME)(context)


def test_a_tag_with_a_new_service_refreshes_the_state_and_says_to_reload(
    settings, monorepo, tmp_path, monkeypatch
):
    loaded = build_definitions(settings)
    baseline = tick(loaded, None)
    monorepo.write("cmd/ms/ms_search/main.go", NEW_MAIN)
    commit = monorepo.commit("ms_search: a new service")
    monorepo.tag(TAG)

    held = tick(loaded, baseline.cursor)

    path = state_path(settings)
    assert held.run_requests == [] and held.dynamic_partitions_requests == []
    assert held.skip_reason.skip_message == (
        f"tag {TAG} at {commit[:12]} has services ms_search that the loaded code location does not know: "
        f"recorded ms_search in the service state {path}; reload the code location (UI: Deployment -> Reload) "
        "and the release launches"
    )
    state = read_state(path)
    assert "ms_search" in state.names and state.commit == commit
    assert {"ms_chat", "ms_core", "ms_payments", "cli_core"} <= set(state.names)  # kept

    # Until the reload, each tick says so again, without fetching or rewriting the state.
    trace = tmp_path / "git-trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    again = tick(loaded, held.cursor)
    assert again.run_requests == []
    assert (
        f"the service state {path} has them already; reload the code location"
        in again.skip_reason.skip_message
    )
    assert not any(c.startswith("git fetch") for c in git_commands(trace)), git_commands(trace)
    assert read_state(path) == state

    reloaded = build_definitions(
        settings
    )  # Deployment -> Reload: the code location reads the state
    launched = tick(reloaded, again.cursor)
    assert [(r.run_key, r.job_name) for r in launched.run_requests] == [
        (f"{TAG}@{commit}", "release_to_dev")
    ]
    assert tick(reloaded, launched.cursor).skip_message.startswith("no new tags")


def test_a_tag_with_known_services_launches_at_once(settings, monorepo):
    loaded = build_definitions(settings)
    baseline = tick(loaded, None)
    monorepo.write("cmd/ms/ms_core/extra.go", "package main\n")
    commit = monorepo.commit("ms_core: a change")
    monorepo.tag(TAG)
    result = tick(loaded, baseline.cursor)
    assert [r.run_key for r in result.run_requests] == [f"{TAG}@{commit}"]
    assert "ms_search" not in read_state(state_path(settings)).names
