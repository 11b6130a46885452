"""GitHub "dispatch mode" GitOps: trigger a workflow_dispatch and wait for its run to conclude.

This is how the old system updated the GitOps repos: it dispatched a named workflow (for example
"Update Project List Version" or "Update API Gateway Routes") in a repo of ``owner`` and waited
for the run it started to finish. A run counts as ours when it is a ``workflow_dispatch`` run of
that workflow created at/after the dispatch time (minus a small clock skew) and was not already
listed just before the dispatch.

The token (``dg.EnvVar("WORKFLOW_PAT")``) never appears in logs, exception messages or ``repr``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import dagster as dg
import github
import requests
from github.GithubException import GithubException
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
    token: str = Field(default="", repr=False,
                       description="GitHub token with actions:write, e.g. EnvVar WORKFLOW_PAT")
    poll_interval_s: float = 5.0
    timeout_s: float = 1800.0
    ref: str = "main"

    def _client(self) -> github.Github:
        # Retry transient failures of GETs only: a retried POST could dispatch the workflow twice.
        retry = Retry(total=2, backoff_factor=0.5, status_forcelist=(502, 503, 504), allowed_methods={"GET"})
        # PyGithub spaces requests >= 0.25 s apart; never wait longer than the poll interval.
        spacing = min(0.25, self.poll_interval_s)
        return github.Github(
            base_url=self.api_url, auth=github.Auth.Token(self.token), retry=retry, seconds_between_requests=spacing
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
        bad = {k: type(v).__name__ for k, v in inputs.items() if not isinstance(k, str) or not isinstance(v, str)}
        if bad:
            raise TypeError(f"workflow_dispatch inputs must be strings, got {bad}")
        log = log or _LOG
        full_name = f"{self.owner}/{repo}"
        if not self.token:
            raise WorkflowDispatchError(f"{full_name} workflow '{workflow_name}': dispatch mode needs a GitHub "
                                        "token: set WORKFLOW_PAT for the code location")
        gh = self._client()
        try:
            return self._dispatch_and_wait(gh, full_name, workflow_name, inputs, log)
        except (GithubException, requests.RequestException) as exc:
            message = f"{full_name} workflow '{workflow_name}': GitHub API error: {type(exc).__name__}: {exc}"
            raise WorkflowDispatchError(self._redact(message)) from None
        finally:
            gh.close()

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
            raise WorkflowDispatchError(f"{full_name} has no workflow named '{workflow_name}'; available: {available}")
        workflow = matches[0]

        since = (datetime.now(timezone.utc) - CLOCK_SKEW).replace(microsecond=0)
        created = f">={since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        # Runs already in the window belong to earlier dispatches, not to ours.
        earlier = {r.id for r in workflow.get_runs(event=DISPATCH_EVENT, created=created)}
        started = time.monotonic()
        workflow.create_dispatch(self.ref, inputs, throw=True)
        log.info(f"dispatched {what} on ref {self.ref} with inputs {inputs}")

        run = None
        last_status = "no run found yet"
        while True:
            if run is None:
                # Newest first; of the runs that appeared since the dispatch, take the earliest.
                new = [
                    r
                    for r in workflow.get_runs(event=DISPATCH_EVENT, created=created)
                    if r.id not in earlier and r.created_at >= since
                ]
                if new:
                    run = new[-1]
                    last_status = run.status
                    log.info(f"{what}: run {run.id} found: {run.html_url} (status {run.status})")
            else:
                run = gh_repo.get_workflow_run(run.id)
                if run.status != last_status:
                    log.info(f"{what}: run {run.id} status {last_status} -> {run.status}")
                    last_status = run.status
            if run is not None and run.status == "completed":
                break
            waited = time.monotonic() - started
            if waited >= self.timeout_s:
                where = f"run {run.html_url}" if run is not None else "no run found"
                raise WorkflowDispatchError(
                    f"{what}: timed out after {waited:.1f}s (timeout_s={self.timeout_s:g}) waiting for the "
                    f"dispatched run to complete; {where}; last status: {last_status}"
                )
            time.sleep(max(0.0, min(self.poll_interval_s, self.timeout_s - waited)))

        conclusion = run.conclusion or "unknown"
        outcome = WorkflowRunOutcome(run_id=run.id, conclusion=conclusion, html_url=run.html_url)
        if conclusion != "success":
            log.error(f"{what}: run {run.id} concluded {conclusion}: {run.html_url}")
            raise WorkflowDispatchError(f"{what}: run {run.html_url} concluded '{conclusion}', expected 'success'")
        log.info(f"{what}: run {run.id} concluded success: {run.html_url}")
        return outcome
