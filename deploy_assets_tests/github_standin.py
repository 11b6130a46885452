"""A local HTTP server speaking the GitHub REST endpoints PyGithub 2.10 calls for workflow dispatch.

Usage::

    with GitHubStandin(token="pat") as gh:
        gh.add_workflow("example-org/gitops-production", "Update Project List Version", outcome="success")
        GitHubResource(api_url=gh.url, owner="example-org", token="pat").dispatch_and_wait(...)
        gh.dispatches("example-org/gitops-production")  # the JSON bodies POSTed

A dispatch asking ``return_run_details`` is answered 200 with the run's id and URLs, as GitHub
does, unless ``run_details=False`` (an API without it: 204, no body). A dispatched run is ``queued`` for ``queued_polls`` reads, then ``in_progress`` for
``in_progress_polls`` reads, then ``completed`` with ``conclusion=outcome``; ``outcome="never"``
keeps it ``in_progress`` forever. A "read" is any response containing the run (list or single).
Every request is recorded in ``requests``; unknown paths are logged, recorded in ``unknown`` and
answered 404.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_LOG = logging.getLogger(__name__)
_ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class _Workflow:
    id: int
    repo: str
    name: str
    path: str
    outcome: str
    queued_polls: int
    in_progress_polls: int
    run_name_input: str | None = None
    someone_else: str | None = None


@dataclass
class _Run:
    id: int
    repo: str
    workflow_id: int
    created_at: datetime
    outcome: str
    queued_polls: int
    in_progress_polls: int
    inputs: dict[str, Any] = field(default_factory=dict)
    reads: int = 0

    def state(self) -> tuple[str, str | None]:
        if self.outcome != "never" and self.reads > self.queued_polls + self.in_progress_polls:
            return "completed", self.outcome
        return ("queued" if self.reads <= self.queued_polls else "in_progress"), None


class GitHubStandin:
    def __init__(self, token: str | None = None, run_details: bool = True) -> None:
        """``token``: if set, requests whose Authorization header does not carry it get 401."""
        self.token = token
        self.run_details = run_details
        self.requests: list[RecordedRequest] = []
        self.unknown: list[str] = []
        self._lock = threading.Lock()
        self._repos: dict[str, int] = {}
        self._workflows: dict[int, _Workflow] = {}
        self._runs: dict[int, _Run] = {}
        self._next_id = 1000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- setup ---------------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_workflow(
        self,
        repo: str,
        name: str,
        outcome: str = "success",
        queued_polls: int = 1,
        in_progress_polls: int = 1,
        run_name_input: str | None = None,
        someone_else: str | None = None,
    ) -> int:
        """Register ``name`` in ``repo`` ("owner/name", created if new); returns the workflow id.

        ``run_name_input``: the workflow's ``run-name`` is "<name> ${{ inputs.<run_name_input> }}"
        (its runs' ``display_title``). ``someone_else``: with each dispatch a person's run of the
        same workflow appears first (same second, lower id), already completed with this conclusion.
        """
        with self._lock:
            self._repos.setdefault(repo, self._new_id())
            wid = self._new_id()
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            self._workflows[wid] = _Workflow(
                wid,
                repo,
                name,
                f".github/workflows/{slug}.yaml",
                outcome,
                queued_polls,
                in_progress_polls,
                run_name_input,
                someone_else,
            )
            return wid

    def add_run(self, repo: str, workflow_name: str, conclusion: str = "failure") -> int:
        """A run that already completed (e.g. an earlier dispatch), created now; returns its id."""
        with self._lock:
            wf = next(
                w for w in self._workflows.values() if w.repo == repo and w.name == workflow_name
            )
            rid = self._new_id()
            self._runs[rid] = _Run(rid, repo, wf.id, _now(), conclusion, 0, 0, reads=1)
            return rid

    def dispatches(self, repo: str | None = None) -> list[Any]:
        """JSON bodies of the dispatch POSTs (to ``repo`` if given), in order."""
        prefix = f"/repos/{repo}/" if repo else "/repos/"
        return [
            r.json
            for r in self.requests
            if r.method == "POST" and r.path.startswith(prefix) and r.path.endswith("/dispatches")
        ]

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "stand-in not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GitHubStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._handle(self)

            def do_POST(self) -> None:
                standin._handle(self)

            def do_PATCH(self) -> None:
                standin._handle(self)

            def do_PUT(self) -> None:
                standin._handle(self)

            def do_DELETE(self) -> None:
                standin._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                _LOG.debug("github stand-in: " + format, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="github-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GitHubStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP ----------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(
                RecordedRequest(h.command, split.path, query, dict(h.headers.items()), body)
            )
            status, payload = self._route(
                h.command, split.path, query, body, h.headers.get("Authorization", "")
            )
        data = b"" if payload is None else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, auth: str
    ) -> tuple[int, Any]:
        if self.token is not None and auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {"message": "Bad credentials", "status": "401"}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if m and m.group(1) in self._repos:
            repo, rest = m.group(1), m.group(2) or ""
            if method == "GET" and rest == "":
                return 200, self._repo_json(repo)
            if method == "GET" and rest == "/actions/workflows":
                wfs = [self._workflow_json(w) for w in self._workflows.values() if w.repo == repo]
                return 200, {"total_count": len(wfs), "workflows": wfs}
            wm = re.fullmatch(r"/actions/workflows/([^/]+)(/dispatches|/runs)?", rest)
            wf = self._find_workflow(repo, wm.group(1)) if wm else None
            if wf is not None and wm is not None:
                if method == "GET" and wm.group(2) is None:
                    return 200, self._workflow_json(wf)
                if method == "POST" and wm.group(2) == "/dispatches":
                    return self._dispatch(wf, body)
                if method == "GET" and wm.group(2) == "/runs":
                    return 200, self._list_runs(wf, query)
            rm = re.fullmatch(r"/actions/runs/(\d+)", rest)
            if method == "GET" and rm and int(rm.group(1)) in self._runs:
                run = self._runs[int(rm.group(1))]
                if run.repo == repo:
                    return 200, self._run_json(run)
        if not (m and method == "GET" and re.fullmatch(r"/repos/[^/]+/[^/]+", path)):
            _LOG.warning("github stand-in: unknown request %s %s", method, path)
            self.unknown.append(f"{method} {path}")
        return 404, {"message": "Not Found", "status": "404"}

    def _find_workflow(self, repo: str, key: str) -> _Workflow | None:
        for w in self._workflows.values():
            if w.repo == repo and (str(w.id) == key or w.path.rsplit("/", 1)[-1] == key):
                return w
        return None

    def _dispatch(self, wf: _Workflow, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("ref"), str):
            return 422, {"message": "Invalid request: 'ref' is required", "status": "422"}
        inputs = body.get("inputs") or {}
        if wf.someone_else is not None:  # a person's run, listed before ours
            other = self._new_id()
            self._runs[other] = _Run(other, wf.repo, wf.id, _now(), wf.someone_else, 0, 0, reads=1)
        rid = self._new_id()
        self._runs[rid] = _Run(
            rid, wf.repo, wf.id, _now(), wf.outcome, wf.queued_polls, wf.in_progress_polls, inputs
        )
        if self.run_details and body.get("return_run_details") is True:
            return 200, {
                "workflow_run_id": rid,
                "run_url": f"{self.url}/repos/{wf.repo}/actions/runs/{rid}",
                "html_url": f"https://github.com/{wf.repo}/actions/runs/{rid}",
            }
        return 204, None

    def _list_runs(self, wf: _Workflow, query: dict[str, str]) -> dict[str, Any]:
        runs = [r for r in self._runs.values() if r.workflow_id == wf.id]
        if query.get("event") not in (None, "workflow_dispatch"):
            runs = []
        created = query.get("created", "")
        if created.startswith(">="):
            since = datetime.strptime(created[2:], _ISO).replace(tzinfo=UTC)
            runs = [r for r in runs if r.created_at >= since]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)  # newest first, like GitHub
        return {"total_count": len(runs), "workflow_runs": [self._run_json(r) for r in runs]}

    # -- JSON ----------------------------------------------------------------------------------
    def _repo_json(self, repo: str) -> dict[str, Any]:
        owner, name = repo.split("/")
        return {
            "id": self._repos[repo],
            "name": name,
            "full_name": repo,
            "owner": {"login": owner, "id": 1, "type": "Organization"},
            "private": True,
            "default_branch": "main",
            "url": f"{self.url}/repos/{repo}",
            "html_url": f"https://github.com/{repo}",
        }

    def _workflow_json(self, w: _Workflow) -> dict[str, Any]:
        return {
            "id": w.id,
            "node_id": f"W_{w.id}",
            "name": w.name,
            "path": w.path,
            "state": "active",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "url": f"{self.url}/repos/{w.repo}/actions/workflows/{w.id}",
            "html_url": f"https://github.com/{w.repo}/blob/main/{w.path}",
            "badge_url": f"https://github.com/{w.repo}/workflows/{w.id}/badge.svg",
        }

    def _run_json(self, r: _Run) -> dict[str, Any]:
        r.reads += 1
        status, conclusion = r.state()
        wf = self._workflows[r.workflow_id]
        title = (
            wf.name
            if wf.run_name_input is None
            else f"{wf.name} {r.inputs.get(wf.run_name_input, '')}".strip()
        )
        return {
            "id": r.id,
            "name": wf.name,
            "display_title": title,
            "workflow_id": wf.id,
            "run_number": r.id,
            "event": "workflow_dispatch",
            "head_branch": "main",
            "status": status,
            "conclusion": conclusion,
            "created_at": r.created_at.strftime(_ISO),
            "updated_at": _now().strftime(_ISO),
            "url": f"{self.url}/repos/{r.repo}/actions/runs/{r.id}",
            "html_url": f"https://github.com/{r.repo}/actions/runs/{r.id}",
        }


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
