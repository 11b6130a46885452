"""Dispatch mode end to end: releases whose GitOps step is the old GitHub workflows.

Everything is real (Go, Docker, registry, S3 API, Dagster) except GitHub's API, which is the
local stand-in PyGithub talks to over HTTP. The token comes from WORKFLOW_PAT as in production.
"""

import dagster as dg
import pytest

from deploy_assets.assets.api_gateway import UPDATE_ROUTES_WORKFLOW
from deploy_assets.assets.gitops import UPDATE_VERSION_WORKFLOW
from deploy_assets.records.history import GITOPS_KEY
from deploy_assets.resources.github import GitHubResource
from deploy_assets_tests.assets.run_events import step_failures
from deploy_assets_tests.github_standin import GitHubStandin

PAT = "ghp_dispatchModeSecret0123456789"
OWNER = "example-org"
MS = "ms_chat ms_core ms_payments"


@pytest.fixture
def standin():
    with GitHubStandin(token=PAT) as s:
        yield s
    assert s.unknown == [], f"PyGithub requested paths the stand-in does not know: {s.unknown}"


def dispatch_mode(harness, standin, monkeypatch, envs: tuple[str, ...]) -> None:
    """Switch envs to dispatch mode, point Settings.github_api at the stand-in, set WORKFLOW_PAT."""
    monkeypatch.setenv("WORKFLOW_PAT", PAT)
    envs_config = dict(harness.config.envs)
    for env in envs:
        envs_config[env] = envs_config[env].model_copy(update={"gitops_mode": "dispatch"})
    config = harness.config.model_copy(update={"envs": envs_config})
    harness.settings = harness.settings.model_copy(
        update={"github_api": standin.url, "github_owner": OWNER}
    )
    harness.reload(config)


def with_github_timeout(harness, timeout_s: float) -> None:
    """Settings has no field for the wait limit (30 min by default): swap in a short-waiting resource."""
    defs = harness.defs
    github = GitHubResource(
        api_url=harness.settings.github_api,
        owner=OWNER,
        token=dg.EnvVar("WORKFLOW_PAT"),
        poll_interval_s=0.05,
        timeout_s=timeout_s,
    )
    harness._defs = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        sensors=defs.sensors,
        schedules=defs.schedules,
        executor=defs.executor,
        loggers=defs.loggers,
        resources={**defs.resources, "github": github},
    )


def run_logs(harness, run_id: str) -> list[dg.EventLogEntry]:
    return harness.instance.all_logs(run_id)


def assert_token_never_logged(harness, run_id: str) -> None:
    entries = run_logs(harness, run_id)
    assert entries
    for entry in entries:
        assert PAT not in (entry.user_message or "") and PAT not in str(entry.dagster_event or "")


def gitops_materialized(harness, partition: str) -> bool:
    records = harness.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=GITOPS_KEY, asset_partitions=[partition]), limit=1
    ).records
    return bool(records)


def test_dev_release_dispatches_the_version_workflow_and_waits_for_success(
    harness, standin, monkeypatch
):
    standin.add_workflow(
        f"{OWNER}/gitops-development",
        UPDATE_VERSION_WORKFLOW,
        outcome="success",
        queued_polls=0,
        in_progress_polls=0,
    )
    dispatch_mode(harness, standin, monkeypatch, ("dev",))

    outcome = harness.release("v0.5.0-alpha.1")

    assert outcome.success, outcome.error
    assert standin.dispatches(f"{OWNER}/gitops-development") == [
        {
            "ref": "main",
            "inputs": {"newVersion": "v0.5.0-alpha.1", "projectNames": MS, "updatesRoutes": "true"},
            "return_run_details": True,
        }
    ]
    assert all(
        r.headers.get("Authorization") in (f"token {PAT}", f"Bearer {PAT}")
        for r in standin.requests
    )
    bump = harness.metadata("gitops_bump", "dev|v0.5.0-alpha.1")
    assert bump["mode"] == "dispatch" and bump["conclusion"] == "success"
    assert bump["workflow_run"].startswith(
        f"https://github.com/{OWNER}/gitops-development/actions/runs/"
    )
    assert bump["commit"] == harness.monorepo.head()
    # Dispatch mode writes nothing to the repo itself: the workflow does.
    assert len(harness.gitops_log("gitops-development")) == 1
    assert_token_never_logged(harness, outcome.run_id)


def test_a_failed_workflow_run_fails_the_release_and_records_no_bump(harness, standin, monkeypatch):
    standin.add_workflow(
        f"{OWNER}/gitops-development",
        UPDATE_VERSION_WORKFLOW,
        outcome="failure",
        queued_polls=0,
        in_progress_polls=0,
    )
    dispatch_mode(harness, standin, monkeypatch, ("dev",))

    outcome = harness.release("v0.5.0-beta.1")

    assert not outcome.success
    failures = step_failures(harness.instance, outcome.run_id)
    assert list(failures) == ["gitops_bump"]
    assert (
        f"{OWNER}/gitops-development workflow '{UPDATE_VERSION_WORKFLOW}'"
        in failures["gitops_bump"]
    )
    assert "concluded 'failure', expected 'success'" in failures["gitops_bump"]
    assert not gitops_materialized(harness, "dev|v0.5.0-beta.1")
    assert len(standin.dispatches()) == 1
    # What came before the bump did happen, and is recorded (a re-run reuses it).
    assert harness.registry.manifest_digest("ms_core", "v0.5.0-beta.1")
    assert_token_never_logged(harness, outcome.run_id)


def test_a_persons_successful_run_beside_our_failed_one_records_no_bump(
    harness, standin, monkeypatch
):
    # Someone runs "Update Project List Version" by hand the same second; theirs succeeds, ours fails.
    standin.add_workflow(
        f"{OWNER}/gitops-development",
        UPDATE_VERSION_WORKFLOW,
        outcome="failure",
        queued_polls=0,
        in_progress_polls=0,
        someone_else="success",
    )
    dispatch_mode(harness, standin, monkeypatch, ("dev",))

    outcome = harness.release("v0.5.2-alpha.1")

    assert not outcome.success
    theirs, ours = sorted(standin._runs)
    error = step_failures(harness.instance, outcome.run_id)["gitops_bump"]
    assert (
        f"actions/runs/{ours} concluded 'failure'" in error
        and f"actions/runs/{theirs}" not in error
    )
    assert not gitops_materialized(harness, "dev|v0.5.2-alpha.1")


def test_a_workflow_run_that_never_concludes_times_out(harness, standin, monkeypatch):
    standin.add_workflow(f"{OWNER}/gitops-development", UPDATE_VERSION_WORKFLOW, outcome="never")
    dispatch_mode(harness, standin, monkeypatch, ("dev",))
    with_github_timeout(harness, timeout_s=1.0)

    outcome = harness.release("v0.5.1-alpha.1")

    assert not outcome.success
    error = step_failures(harness.instance, outcome.run_id)["gitops_bump"]
    assert "timed out after" in error and "timeout_s=1" in error
    assert "last status: in_progress" in error
    assert not gitops_materialized(harness, "dev|v0.5.1-alpha.1")


def test_prod_dispatches_gateway_routes_then_the_version_bump(harness, standin, monkeypatch):
    for repo in ("gitops-staging", "gitops-production"):
        standin.add_workflow(
            f"{OWNER}/{repo}", UPDATE_VERSION_WORKFLOW, queued_polls=0, in_progress_polls=0
        )
    standin.add_workflow(
        f"{OWNER}/terraform-apps-production",
        UPDATE_ROUTES_WORKFLOW,
        queued_polls=0,
        in_progress_polls=0,
    )
    dispatch_mode(harness, standin, monkeypatch, ("staging", "prod"))

    staging = harness.release("v0.6.0-rc.1")
    assert staging.success, staging.error
    prod = harness.release("v0.6.0")  # the gate accepts a staging release done in dispatch mode
    assert prod.success, prod.error

    posts = [r.path for r in standin.requests if r.method == "POST"]
    assert [p.split("/")[3] for p in posts] == [
        "gitops-staging",
        "terraform-apps-production",
        "gitops-production",
    ]
    assert standin.dispatches(f"{OWNER}/gitops-staging")[0]["inputs"] == {
        "newVersion": "v0.6.0-rc.1",
        "projectNames": MS,
        "updatesRoutes": "true",
    }
    assert standin.dispatches(f"{OWNER}/terraform-apps-production")[0]["inputs"] == {
        "newVersion": "v0.6.0"
    }
    assert standin.dispatches(f"{OWNER}/gitops-production")[0]["inputs"] == {
        "newVersion": "v0.6.0",
        "projectNames": MS,
        "updatesRoutes": "false",
    }
    routes = harness.metadata("api_gateway_routes", "prod|v0.6.0")
    assert (
        routes["mode"] == "dispatch" and routes["conclusion"] == "success" and routes["routes"] > 0
    )
    assert harness.metadata("source", "prod|v0.6.0")["staging_release"] == "v0.6.0-rc.1"
    for repo in ("gitops-staging", "gitops-production", "terraform-apps-production"):
        assert len(harness.gitops_log(repo)) == 1
