"""GitHub "dispatch mode" GitOps: trigger a workflow_dispatch and wait for its run to conclude.

This is how the old system updated the GitOps repos: it dispatched a named workflow (for example
"Update Project List Version" or "Update API Gateway Routes") in a repo of ``owner`` and waited
for the run it started to finish. Which run is ours is known for sure, never guessed by
position: a person may run the same workflow a second after us, with another outcome.
GitHub returns the dispatched run's id when asked (``return_run_details``); where an API does
not, a unique id sent in ``dispatch_id_input`` and echoed in the workflow's ``run-name`` names
our run. With neither, the step fails rather than take someone else's result.

The token (``dg.EnvVar("WORKFLOW_PAT")``) never appears in logs, exception messages or ``repr``.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import github
import requests
from github.GithubException import GithubException
from github.WorkflowRun import WorkflowRun
from pydantic import Field
from urllib3.util.retry import Retry

_LOG = logging.getLogger(__name__)

# GitHub's and our clocks may differ a little; runs created this long before the dispatch count.
CLOCK_SKEW = timedelta(seconds=10)
DISPATCH_EVENT = "workflow_dispatch"


class WorkflowDispatchError(RuntimeError):
    """The workflow could not be dispatched, did not conclude in time, or did not succeed."""


@dataclass(frozen=True)
class WorkflowRunOutcome:
    run_id: int
    conclusion: str
    html_url: str


class GitHubResource(dg.ConfigurableResource):
    """Dispatches workflows of ``{owner}/{repo}`` on ``ref`` and waits for the runs to conclude."""

    api_url: str = "https://api.github.com"
    owner: str
    # repr=False keeps the token out of repr()/str() of the resource (pydantic shows fields).
    token: str = Field(
        default="",
        repr=False,
        description="GitHub token with actions:write, e.g. EnvVar WORKFLOW_PAT",
    )
    poll_interval_s: float = 5.0
    timeout_s: float = 1800.0
    ref: str = "main"
    # Fallback for APIs that return no run id for a dispatch (GitHub Enterprise Server without
    # return_run_details): the name of a workflow input that the workflow echoes in its run-name;
    # a unique id is sent in it and our run is the one whose name carries it.
    dispatch_id_input: str = ""

    def _client(self) -> github.Github:
        # Retry transient failures of GETs only: a retried POST could dispatch the workflow twice.
        retry = Retry(
            total=2, backoff_factor=0.5, status_forcelist=(502, 503, 504), allowed_methods={"GET"}
        )
        # PyGithub spaces requests >= 0.25 s apart; never wait longer than the poll interval.
        spacing = min(0.25, self.poll_interval_s)
        return github.Github(
            base_url=self.api_url,
            auth=github.Auth.Token(self.token),
            retry=retry,
            seconds_between_requests=spacing,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def dispatch_and_wait(
        self,
        repo: str,
        workflow_name: str,
        inputs: dict[str, str],
        log: logging.Logger | None = None,
    ) -> WorkflowRunOutcome:
        """Dispatch ``workflow_name`` of ``{owner}/{repo}`` with ``inputs``; wait for the run's result.

        Raises WorkflowDispatchError if the workflow is unknown, the API fails, the run does not
        complete within ``timeout_s`` or its conclusion is not "success".
        """
        bad = {
            k: type(v).__name__
            for k, v in inputs.items()
            if not isinstance(k, str) or not isinstance(v, str)
        }
        if bad:
            raise TypeError(f"workflow_dispatch inputs must be strings, got {bad}")
        log = log or _LOG
        full_name = f"{self.owner}/{repo}"
        if not self.token:
            raise WorkflowDispatchError(
                f"{full_name} workflow '{workflow_name}': dispatch mode needs a GitHub "
                "token: set WORKFLOW_PAT for the code location"
            )
        gh = self._client()
        try:
            return self._dispatch_and_wait(gh, full_name, workflow_name, inputs, log)
        except (GithubException, requests.RequestException) as exc:
            message = f"{full_name} workflow '{workflow_name}': GitHub API error: {type(exc).__name__}: {exc}"
            raise WorkflowDispatchError(self._redact(message)) from None
        finally:
            gh.close()

    def _run_named(self, workflow, dispatch_id: str, since: datetime, what: str) -> int | None:
        """The one run whose run-name carries our dispatch id, or None while GitHub lists none."""
        created = f">={since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        ours = [
            r
            for r in workflow.get_runs(event=DISPATCH_EVENT, created=created)
            if dispatch_id in (r.display_title or "")
        ]
        if len(ours) > 1:
            raise WorkflowDispatchError(
                f"{what}: {len(ours)} runs carry dispatch id {dispatch_id} "
                f"({', '.join(r.html_url for r in ours)}): cannot tell which is ours"
            )
        return ours[0].id if ours else None

    def _wait_or_fail(self, started: float, what: str, where: str, last_status: str) -> None:
        waited = time.monotonic() - started
        if waited >= self.timeout_s:
            raise WorkflowDispatchError(
                f"{what}: timed out after {waited:.1f}s (timeout_s={self.timeout_s:g}) waiting for the "
                f"dispatched run to complete; {where}; last status: {last_status}"
            )
        time.sleep(max(0.0, min(self.poll_interval_s, self.timeout_s - waited)))

    def _wait_for_completion(
        self, gh_repo, workflow, run_id: int, started: float, what: str, log: logging.Logger
    ):
        """Poll our run (known by id, never by position) until it completes."""
        run = gh_repo.get_workflow_run(run_id)
        if run.workflow_id != workflow.id:
            raise WorkflowDispatchError(
                f"{what}: run {run.html_url} GitHub named for our dispatch belongs to "
                f"workflow {run.workflow_id}, not {workflow.id}"
            )
        log.info(f"{what}: run {run.id} found: {run.html_url} (status {run.status})")
        last_status = run.status
        while run.status != "completed":
            self._wait_or_fail(started, what, f"run {run.html_url}", last_status)
            run = gh_repo.get_workflow_run(run_id)
            if run.status != last_status:
                log.info(f"{what}: run {run.id} status {last_status} -> {run.status}")
                last_status = run.status
        return run

    def _dispatch_and_wait(
        self,
        gh: github.Github,
        full_name: str,
        workflow_name: str,
        inputs: dict[str, str],
        log: logging.Logger,
    ) -> WorkflowRunOutcome:
        what = f"{full_name} workflow '{workflow_name}'"
        gh_repo = gh.get_repo(full_name)
        workflows = list(gh_repo.get_workflows())
        matches = [w for w in workflows if w.name == workflow_name]
        if not matches:
            available = ", ".join(sorted(repr(w.name) for w in workflows)) or "none"
            raise WorkflowDispatchError(
                f"{full_name} has no workflow named '{workflow_name}'; available: {available}"
            )
        workflow = matches[0]

        sent = dict(inputs)
        dispatch_id = ""
        if self.dispatch_id_input:
            if self.dispatch_id_input in inputs:
                raise WorkflowDispatchError(
                    f"{what}: input {self.dispatch_id_input!r} is dispatch_id_input, "
                    "it cannot also be one of the release's inputs"
                )
            dispatch_id = sent[self.dispatch_id_input] = f"deploy-assets-{uuid.uuid4().hex}"
        since = (datetime.now(UTC) - CLOCK_SKEW).replace(microsecond=0)
        started = time.monotonic()
        dispatched = workflow.create_dispatch(self.ref, sent, throw=True, return_run_details=True)
        log.info(f"dispatched {what} on ref {self.ref} with inputs {sent}")
        run_id = dispatched.id if isinstance(dispatched, WorkflowRun) else None
        if run_id is None and not dispatch_id:
            raise WorkflowDispatchError(
                f"{what}: dispatched, but GitHub returned no run id (no return_run_details support) and "
                "dispatch_id_input is not set: our run cannot be told from anyone else's run of this workflow, "
                "so its result is not taken. Set dispatch_id_input and echo that input in the workflow's run-name"
            )
        while run_id is None:
            run_id = self._run_named(workflow, dispatch_id, since, what)
            if run_id is None:
                self._wait_or_fail(
                    started, what, f"no run named with dispatch id {dispatch_id} found", "none"
                )
        run = self._wait_for_completion(gh_repo, workflow, run_id, started, what, log)

        conclusion = run.conclusion or "unknown"
        outcome = WorkflowRunOutcome(run_id=run.id, conclusion=conclusion, html_url=run.html_url)
        if conclusion != "success":
            log.error(f"{what}: run {run.id} concluded {conclusion}: {run.html_url}")
            raise WorkflowDispatchError(
                f"{what}: run {run.html_url} concluded '{conclusion}', expected 'success'"
            )
        log.info(f"{what}: run {run.id} concluded success: {run.html_url}")
        return outcome
