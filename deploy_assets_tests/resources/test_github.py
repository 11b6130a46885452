"""GitHubResource (dispatch mode) through the real PyGithub against the local GitHub stand-in."""

from __future__ import annotations

import logging
import socket

import dagster as dg
import pytest

from deploy_assets.resources.github import GitHubResource, WorkflowDispatchError, WorkflowRunOutcome
from deploy_assets_tests.github_standin import GitHubStandin

PAT = "ghp_standinSecretToken0123456789abcdef"
OWNER = "example-org"
REPO = "gitops-production"
FULL = f"{OWNER}/{REPO}"
VERSION_WF = "Update Project List Version"
ROUTES_WF = "Update API Gateway Routes"
INPUTS = {"newVersion": "1.4.0", "projectNames": "billing users gateway", "updatesRoutes": "true"}


@pytest.fixture
def standin():
    with GitHubStandin(token=PAT) as s:
        yield s
    assert s.unknown == [], f"PyGithub requested paths the stand-in does not know: {s.unknown}"


def make(standin: GitHubStandin, **overrides) -> GitHubResource:
    fields = dict(api_url=standin.url, owner=OWNER, token=PAT, poll_interval_s=0.05, timeout_s=5.0)
    fields.update(overrides)
    return GitHubResource(**fields)


def assert_no_token(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    assert caplog.records, "expected log records"
    for record in caplog.records:
        assert PAT not in record.getMessage(), record.getMessage()
    assert PAT not in caplog.text
    for text in texts:
        assert PAT not in text


def test_success_returns_outcome_and_sends_inputs(standin, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)  # PyGithub's own request logging too
    standin.add_workflow(FULL, ROUTES_WF)
    standin.add_workflow(FULL, VERSION_WF, outcome="success", queued_polls=1, in_progress_polls=2)
    monkeypatch.setenv("WORKFLOW_PAT", PAT)
    resource = make(standin, token=dg.EnvVar("WORKFLOW_PAT"))

    with dg.build_resources({"github": resource}) as resources:
        outcome = resources.github.dispatch_and_wait(
            REPO, VERSION_WF, INPUTS, log=logging.getLogger("test.gitops")
        )

    assert isinstance(outcome, WorkflowRunOutcome)
    assert outcome.conclusion == "success"
    assert outcome.html_url == f"https://github.com/{FULL}/actions/runs/{outcome.run_id}"
    assert standin.dispatches(FULL) == [
        {"ref": "main", "inputs": INPUTS, "return_run_details": True}
    ]
    dispatch = next(r for r in standin.requests if r.method == "POST")
    assert dispatch.path.endswith("/dispatches")
    assert dispatch.json["inputs"]["projectNames"].split(" ") == ["billing", "users", "gateway"]
    assert all(
        r.headers.get("Authorization") in (f"token {PAT}", f"Bearer {PAT}")
        for r in standin.requests
    )
    # GitHub named our run: it is polled by id, the workflow's run list is never read.
    polls = [r.path for r in standin.requests if r.method == "GET" and "/actions/runs" in r.path]
    assert polls and set(polls) == {f"/repos/{FULL}/actions/runs/{outcome.run_id}"}

    messages = [r.getMessage() for r in caplog.records if r.name == "test.gitops"]
    assert any(m.startswith(f"dispatched {FULL} workflow '{VERSION_WF}'") for m in messages)
    assert any(f"found: {outcome.html_url}" in m for m in messages)
    assert any("queued -> in_progress" in m for m in messages)
    assert any("in_progress -> completed" in m for m in messages)
    assert_no_token(caplog, repr(resource), repr(resources.github), str(resources.github))


def test_earlier_runs_in_the_window_are_not_taken_for_ours(standin):
    standin.add_workflow(FULL, VERSION_WF, outcome="success")
    earlier = standin.add_run(FULL, VERSION_WF, conclusion="failure")

    outcome = make(standin).dispatch_and_wait(REPO, VERSION_WF, {"newVersion": "2.0.0"})

    assert outcome.conclusion == "success" and outcome.run_id != earlier


def test_a_persons_run_of_the_workflow_beside_ours_is_not_taken_for_ours(standin):
    # Someone runs the same workflow in the same second, listed before ours, and it succeeds; ours fails.
    standin.add_workflow(FULL, VERSION_WF, outcome="failure", someone_else="success")

    with pytest.raises(WorkflowDispatchError) as err:
        make(standin).dispatch_and_wait(REPO, VERSION_WF, {"newVersion": "2.0.0"})

    runs = sorted(standin._runs)
    assert len(runs) == 2 and len(standin.dispatches()) == 1
    theirs, ours = runs  # the person's run was created first
    assert f"runs/{ours} concluded 'failure'" in str(err.value)
    assert f"runs/{theirs}" not in str(err.value)


def test_without_run_details_our_run_is_the_one_whose_name_carries_our_dispatch_id():
    with GitHubStandin(token=PAT, run_details=False) as standin:
        standin.add_workflow(
            FULL,
            VERSION_WF,
            outcome="failure",
            run_name_input="dispatch_id",
            someone_else="success",
        )

        with pytest.raises(WorkflowDispatchError) as err:
            make(standin, dispatch_id_input="dispatch_id").dispatch_and_wait(
                REPO, VERSION_WF, {"newVersion": "2.0.0"}
            )

        sent = standin.dispatches(FULL)[0]["inputs"]
        theirs, ours = sorted(standin._runs)
        assert sent["newVersion"] == "2.0.0" and sent["dispatch_id"].startswith("deploy-assets-")
        assert f"runs/{ours} concluded 'failure'" in str(err.value) and f"runs/{theirs}" not in str(
            err.value
        )
        listed = [r for r in standin.requests if r.path.endswith("/runs")]
        assert listed and all(r.query["created"].startswith(">=") for r in listed)
        assert standin.unknown == []


def test_without_run_details_or_a_dispatch_id_no_run_is_taken(caplog):
    with GitHubStandin(token=PAT, run_details=False) as standin:
        standin.add_workflow(
            FULL, VERSION_WF, outcome="success"
        )  # even when ours is the only new run

        with pytest.raises(WorkflowDispatchError) as err:
            make(standin).dispatch_and_wait(REPO, VERSION_WF, {"newVersion": "2.0.0"})

    message = str(err.value)
    assert (
        "GitHub returned no run id" in message
        and "our run cannot be told from anyone else's" in message
    )
    assert "dispatch_id_input" in message and len(standin.dispatches()) == 1
    assert not [r for r in standin.requests if "/actions/runs" in r.path]  # no run was looked at


def test_a_dispatch_id_the_workflow_does_not_echo_times_out_saying_so():
    with GitHubStandin(token=PAT, run_details=False) as standin:
        standin.add_workflow(FULL, VERSION_WF, outcome="success")  # no run-name with the id

        with pytest.raises(WorkflowDispatchError) as err:
            make(standin, dispatch_id_input="dispatch_id", timeout_s=0.5).dispatch_and_wait(
                REPO, VERSION_WF, {}
            )

    assert "timed out after" in str(
        err.value
    ) and "no run named with dispatch id deploy-assets-" in str(err.value)


def test_failed_run_raises(standin, caplog):
    caplog.set_level(logging.DEBUG)
    standin.add_workflow(FULL, ROUTES_WF, outcome="failure", queued_polls=0, in_progress_polls=1)

    with pytest.raises(WorkflowDispatchError) as err:
        make(standin).dispatch_and_wait(REPO, ROUTES_WF, {"updatesRoutes": "false"})

    message = str(err.value)
    assert FULL in message and ROUTES_WF in message and "'failure'" in message
    assert f"https://github.com/{FULL}/actions/runs/" in message
    assert_no_token(caplog, message, repr(err.value))


def test_timeout_names_the_seconds_and_last_status(standin, caplog):
    caplog.set_level(logging.DEBUG)
    standin.add_workflow(FULL, VERSION_WF, outcome="never")

    with pytest.raises(WorkflowDispatchError) as err:
        make(standin, timeout_s=0.6).dispatch_and_wait(REPO, VERSION_WF, {"newVersion": "1.0.0"})

    message = str(err.value)
    assert FULL in message and VERSION_WF in message
    assert "timed out after" in message and "timeout_s=0.6" in message
    assert "last status: in_progress" in message
    assert len(standin.dispatches()) == 1
    assert_no_token(caplog, message)


def test_unknown_workflow_lists_available_names_and_dispatches_nothing(standin):
    standin.add_workflow(FULL, VERSION_WF)
    standin.add_workflow(FULL, ROUTES_WF)

    with pytest.raises(WorkflowDispatchError) as err:
        make(standin).dispatch_and_wait(REPO, "Update Everything", {})

    message = str(err.value)
    assert "Update Everything" in message and VERSION_WF in message and ROUTES_WF in message
    assert standin.dispatches() == []


def test_api_errors_are_wrapped_without_the_token(standin, caplog):
    caplog.set_level(logging.DEBUG)
    standin.add_workflow(FULL, VERSION_WF)
    wrong = "ghp_wrongToken9876543210"

    with pytest.raises(WorkflowDispatchError) as bad_token:
        make(standin, token=wrong).dispatch_and_wait(REPO, VERSION_WF, {})
    with pytest.raises(WorkflowDispatchError) as no_repo:
        make(standin).dispatch_and_wait("no-such-repo", VERSION_WF, {})

    assert "401" in str(bad_token.value) and "Bad credentials" in str(bad_token.value)
    assert wrong not in str(bad_token.value) and wrong not in caplog.text
    assert f"{OWNER}/no-such-repo" in str(no_repo.value) and "404" in str(no_repo.value)
    assert standin.dispatches() == []
    assert_no_token(caplog, str(no_repo.value))


def test_non_string_inputs_are_rejected_before_dispatch(standin):
    standin.add_workflow(FULL, ROUTES_WF)
    with pytest.raises(TypeError, match="updatesRoutes"):
        make(standin).dispatch_and_wait(REPO, ROUTES_WF, {"updatesRoutes": True})  # type: ignore[dict-item]
    assert standin.requests == []


def test_repr_and_str_hide_the_token():
    resource = GitHubResource(owner=OWNER, token=PAT)
    assert PAT not in repr(resource) and PAT not in str(resource) and PAT not in f"{resource!r}"
    assert "owner='example-org'" in repr(resource)


def test_standin_stop_shuts_the_server_down():
    standin = GitHubStandin().start()
    port = int(standin.url.rsplit(":", 1)[1])
    standin.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
