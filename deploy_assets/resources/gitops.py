"""GitOps and Terraform repos in git mode: clone, edit, commit, push.

A bump is a pure edit function applied to a fresh clone. If the push is rejected because
someone else pushed first, we fetch, reset onto the new head and apply the same edit again, so
their commit is kept and ours lands exactly once. No diff means no commit: re-running a release
never adds a second bump. Any other refusal (a protected branch, a hook) fails at once: retrying
cannot fix it. Every file's new text is computed before anything is written, and a file with
nothing to update fails the whole bump (the plan: resources/gitops_files.py; the splices:
resources/gitops_layouts.py).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from deploy_assets.gitops_config import GitOpsLayout
from deploy_assets.resources.credentials import redact_url
from deploy_assets.resources.git import GitError, run_git
from deploy_assets.resources.gitops_files import (  # noqa: F401 (re-exported)
    layout_path,
    planned_files,
    read_version,
    refuse_shared_names,
)
from deploy_assets.resources.gitops_layouts import GitOpsError

Edit = Callable[[Path], None]
# git's words for "the remote moved on": the only refusal a rebase-and-retry can fix.
_RACE_MARKERS = ("(fetch first)", "(non-fast-forward)", "cannot lock ref")


@dataclass(frozen=True)
class PushResult:
    repo: str
    commit: str
    changed: bool
    attempts: int


def one_line(name: str, value: str) -> str:
    """value, refused if it holds a line break or any control character: in a commit message a
    newline in `requested_by` would forge trailers (`Release-Tag: v9.9.9`) that status and the
    rollback target trust."""
    bad = next(
        (
            c
            for c in value
            if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")
        ),
        None,
    )
    if bad is not None:
        raise GitOpsError(
            f"{name} {value!r} contains the control character {bad!r}; "
            "values written into a commit message must be a single line of text"
        )
    return value


def trailer_block(trailers: list[tuple[str, str]]) -> str:
    """`Key: value` lines, each value checked to be one line (see one_line)."""
    return "".join(f"{key}: {one_line(key, value)}\n" for key, value in trailers)


def commit_message(env: str, tag: str, commit: str, projects: list[str], run_id: str) -> str:
    """Trailers make every bump traceable to its tag, source commit and Dagster run."""
    subject = f"deploy({env}): {' '.join(one_line('project', p) for p in projects)} -> {one_line('tag', tag)}"
    return f"{one_line('subject', subject)}\n\n" + trailer_block(
        [("Release-Tag", tag), ("Source-Commit", commit), ("Dagster-Run", run_id)]
    )


def _inside(repo: Path, relpath: str) -> Path:
    """repo/relpath, refusing a symlink on the way: a link in the repo must never make us read
    or write a file outside it (nor one elsewhere in it under another name)."""
    target, current = repo / relpath, repo
    for part in Path(relpath).parts:
        current = current / part
        if current.is_symlink():
            raise GitOpsError(
                f"{relpath}: {current.relative_to(repo)} is a symlink (to {os.readlink(current)}) "
                "in the GitOps repo; replace it with a regular file or directory"
            )
    if not target.resolve().is_relative_to(repo.resolve()):
        raise GitOpsError(f"{relpath} resolves to {target.resolve()}, outside the GitOps repo")
    return target


def _read_in_repo(repo: Path, relpath: str, shown: str) -> str | None:
    try:
        target = _inside(repo, relpath)
    except GitOpsError as exc:
        raise GitOpsError(f"{shown}: {exc}") from None
    return target.read_text() if target.is_file() else None


def bump_edit(
    layout: GitOpsLayout | list[GitOpsLayout],
    env: str,
    images: dict[str, str],
    version: str,
    routes: dict[str, list[dict]] | None,
) -> Edit:
    """The edit that sets every project to version in each layout given (the targets of one
    repo: one commit for all), and writes its routes when asked. Every file of every layout is
    planned before one is written."""
    layouts = layout if isinstance(layout, list) else [layout]

    def edit(repo: Path) -> None:
        def read(relpath: str) -> str | None:
            target = _inside(repo, relpath)
            # Bytes, not text mode: a CRLF file must keep its line endings, not be rewritten to LF.
            return target.read_bytes().decode() if target.is_file() else None

        writes: dict[Path, str] = {}
        for one in layouts:
            for relpath, text in planned_files(one, env, images, version, read).items():
                if _inside(repo, relpath) in writes:  # the second edit would drop the first
                    raise GitOpsError(f"{relpath} is written by two GitOps targets of this repo")
                writes[_inside(repo, relpath)] = text
            for project in sorted(images) if routes is not None else []:
                route_file = _inside(
                    repo, layout_path(one, project, env, one.routes_path_template, version)
                )
                writes[route_file] = json.dumps(routes.get(project, []), indent=2) + "\n"
        for target, text in writes.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode())

    return edit


class GitOpsResource(dg.ConfigurableResource):
    """Env repos live at `{root}/{name}.git` (a folder of bare repos, or a URL prefix).

    `root` may carry credentials in its user info (resources/credentials.py): git gets them
    through its environment only (see resources/credentials.py), clones store the plain URL, and
    `url()` — what every message and metadata entry shows — is redacted.
    """

    root: str
    branch: str = "main"
    max_push_attempts: int = 5
    git_timeout: float = 300  # seconds any one clone, fetch or push may take

    def url(self, repo: str) -> str:
        """The repo's URL as shown to people: credentials replaced by ***."""
        return redact_url(self._remote(repo))

    def _remote(self, repo: str) -> str:
        return f"{self.root.rstrip('/')}/{repo}.git"

    def _git(self, args: list[str], cwd: Path | None = None) -> bytes:
        return run_git(args, cwd=cwd, timeout=self.git_timeout, auth=self.root)

    def head(self, repo: str) -> str | None:
        out = self._git(
            ["ls-remote", "--", self._remote(repo), f"refs/heads/{self.branch}"]
        ).decode()
        return out.split("\t", 1)[0] or None

    def _clone(self, repo: str, dest: Path, *options: str) -> None:
        try:
            self._git(
                [
                    "clone",
                    "--quiet",
                    *options,
                    "--branch",
                    self.branch,
                    "--",
                    self._remote(repo),
                    str(dest),
                ]
            )
        except GitError as exc:
            raise GitOpsError(f"cannot clone GitOps repo {self.url(repo)}: {exc}") from None

    def commit_and_push(
        self, repo: str, edit: Edit, message: str, log: Callable[[str], None] = lambda _: None
    ) -> PushResult:
        """Apply edit on the branch head, commit if anything changed, push; retry on races."""
        with tempfile.TemporaryDirectory(prefix=f"gitops-{repo}-") as tmp:
            clone = Path(tmp) / repo
            self._clone(repo, clone)
            for attempt in range(1, self.max_push_attempts + 1):
                edit(clone)
                self._git(["add", "-A"], cwd=clone)
                if not self._git(["status", "--porcelain"], cwd=clone).strip():
                    head = self._git(["rev-parse", "HEAD"], cwd=clone).decode().strip()
                    log(f"{repo}: already at the target state ({head[:12]}), no commit")
                    return PushResult(repo, head, changed=False, attempts=attempt)
                self._git(["commit", "--quiet", "-m", message], cwd=clone)
                try:
                    self._git(
                        ["push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}"], cwd=clone
                    )
                except GitError as exc:
                    if not any(marker in str(exc) for marker in _RACE_MARKERS):
                        raise GitOpsError(f"push to {self.url(repo)} refused: {exc}") from None
                    log(
                        f"{repo}: push rejected (remote moved on), re-applying on the new head, attempt {attempt}"
                    )
                    self._git(["fetch", "--quiet", "origin", self.branch], cwd=clone)
                    self._git(["reset", "--quiet", "--hard", f"origin/{self.branch}"], cwd=clone)
                    continue
                head = self._git(["rev-parse", "HEAD"], cwd=clone).decode().strip()
                log(f"{repo}: pushed {head[:12]}")
                return PushResult(repo, head, changed=True, attempts=attempt)
        raise GitOpsError(
            f"push to {self.url(repo)} still rejected after {self.max_push_attempts} attempts: "
            "the branch keeps moving"
        )

    def read_files(self, repo: str, paths: list[str]) -> dict[str, str | None]:
        """Read files at the branch head of the pushed repo (what a check must trust).

        A path that is a symlink, or lies under one, is refused: the repo's content is what was
        committed, never a file of this machine that a link in the repo points at.
        """
        tmp = Path(tempfile.mkdtemp(prefix=f"gitops-read-{repo}-"))
        try:
            self._clone(repo, tmp / "r", "--depth", "1")
            return {p: _read_in_repo(tmp / "r", p, self.url(repo)) for p in paths}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def log(self, repo: str, limit: int = 50) -> list[dict[str, str]]:
        """Recent commits of the env repo (sha, date, subject, trailers) for status and rollback.

        Trailers are parsed by git itself (`%(trailers)`), so only the trailer block git
        recognises counts, never a `Key: value` line elsewhere in the body.
        """
        tmp = Path(tempfile.mkdtemp(prefix=f"gitops-log-{repo}-"))
        try:
            self._clone(repo, tmp / "r", "--bare")
            out = self._git(
                [
                    "log",
                    f"-{limit}",
                    "--format=%H%x1f%cI%x1f%s%x1f%b%x1f%(trailers:only,unfold,separator=%x1d)%x1e",
                ],
                cwd=tmp / "r",
            ).decode()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        commits = []
        for record in filter(None, (r.strip() for r in out.split("\x1e"))):
            sha, date, subject, body, block = (record.split("\x1f") + [""] * 5)[:5]
            commits.append(
                {"sha": sha, "date": date, "subject": subject, "body": body, "trailers": block}
            )
        return commits
