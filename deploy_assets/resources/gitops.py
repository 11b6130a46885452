"""GitOps and Terraform repos in git mode: clone, edit, commit, push.

A bump is a pure edit function applied to a fresh clone. If the push is rejected because
someone else pushed first, we fetch, reset onto the new head and apply the same edit again, so
their commit is kept and ours lands exactly once. No diff means no commit: re-running a release
never adds a second bump.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg
import yaml

from deploy_assets.config import GitOpsLayout
from deploy_assets.resources.git import GitError, run_git

Edit = Callable[[Path], None]


class GitOpsError(RuntimeError):
    pass


@dataclass(frozen=True)
class PushResult:
    repo: str
    commit: str
    changed: bool
    attempts: int


def _set_kustomize_tag(text: str | None, project: str, image: str, version: str) -> str:
    doc = yaml.safe_load(text) if text else None
    doc = doc or {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    images = doc.setdefault("images", [])
    entry = next((i for i in images if i.get("name") in (project, image)), None)
    if entry is None:
        entry = {"name": project}
        images.append(entry)
    entry["newName"] = image
    entry["newTag"] = version
    return yaml.safe_dump(doc, sort_keys=False)


def _set_image_ref(text: str | None, project: str, image: str, version: str) -> str:
    if text is None:
        return f"image: {image}:{version}\n"
    pattern = re.compile(rf"(image:\s*[\"']?)(\S*/)?{re.escape(project)}:[\w.+-]+")
    new, count = pattern.subn(lambda m: f"{m.group(1)}{image}:{version}", text)
    if count == 0:
        raise GitOpsError(f"no 'image: .../{project}:TAG' reference to update")
    return new


def _read_kustomize_tag(text: str, project: str) -> str | None:
    for entry in (yaml.safe_load(text) or {}).get("images", []):
        if entry.get("name") == project or str(entry.get("newName", "")).endswith(f"/{project}"):
            return entry.get("newTag")
    return None


def _read_image_ref(text: str, project: str) -> str | None:
    match = re.search(rf"image:\s*[\"']?(?:\S*/)?{re.escape(project)}:([\w.+-]+)", text)
    return match.group(1) if match else None


def layout_path(layout: GitOpsLayout, project: str, env: str, template: str | None = None) -> str:
    path = (template or layout.path_template).format(project=project, env=env)
    if path.startswith("/") or ".." in Path(path).parts:
        raise GitOpsError(f"path {path!r} escapes the GitOps repo")
    return path


def bump_edit(layout: GitOpsLayout, env: str, images: dict[str, str], version: str,
              routes: dict[str, list[dict]] | None) -> Edit:
    """The edit that sets every project to version (and writes its routes when asked)."""
    import json

    def edit(repo: Path) -> None:
        for project, image in sorted(images.items()):
            target = repo / layout_path(layout, project, env)
            old = target.read_text() if target.exists() else None
            if layout.layout == "kustomize":
                new = _set_kustomize_tag(old, project, image, version)
            elif layout.layout == "image_ref":
                try:
                    new = _set_image_ref(old, project, image, version)
                except GitOpsError as exc:
                    raise GitOpsError(f"{target.relative_to(repo)}: {exc}") from None
            else:
                new = f"{version}\n"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(new)
            if routes is not None:
                route_file = repo / layout_path(layout, project, env, layout.routes_path_template)
                route_file.parent.mkdir(parents=True, exist_ok=True)
                route_file.write_text(json.dumps(routes.get(project, []), indent=2) + "\n")
    return edit


def read_version(layout: GitOpsLayout, env: str, project: str, text: str) -> str | None:
    if layout.layout == "kustomize":
        return _read_kustomize_tag(text, project)
    if layout.layout == "image_ref":
        return _read_image_ref(text, project)
    return text.strip() or None


class GitOpsResource(dg.ConfigurableResource):
    """Env repos live at `{root}/{name}.git` (a folder of bare repos, or a URL prefix)."""

    root: str
    branch: str = "main"
    max_push_attempts: int = 5

    def url(self, repo: str) -> str:
        return f"{self.root.rstrip('/')}/{repo}.git"

    def head(self, repo: str) -> str | None:
        out = run_git(["ls-remote", "--", self.url(repo), f"refs/heads/{self.branch}"]).decode()
        return out.split("\t", 1)[0] or None

    def commit_and_push(self, repo: str, edit: Edit, message: str,
                        log: Callable[[str], None] = lambda _: None) -> PushResult:
        """Apply edit on the branch head, commit if anything changed, push; retry on races."""
        with tempfile.TemporaryDirectory(prefix=f"gitops-{repo}-") as tmp:
            clone = Path(tmp) / repo
            try:
                run_git(["clone", "--quiet", "--branch", self.branch, "--", self.url(repo), str(clone)])
            except GitError as exc:
                raise GitOpsError(f"cannot clone GitOps repo {self.url(repo)}: {exc}") from None
            for attempt in range(1, self.max_push_attempts + 1):
                edit(clone)
                run_git(["add", "-A"], cwd=clone)
                if not run_git(["status", "--porcelain"], cwd=clone).strip():
                    head = run_git(["rev-parse", "HEAD"], cwd=clone).decode().strip()
                    log(f"{repo}: already at the target state ({head[:12]}), no commit")
                    return PushResult(repo, head, changed=False, attempts=attempt)
                run_git(["commit", "--quiet", "-m", message], cwd=clone)
                try:
                    run_git(["push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}"], cwd=clone)
                except GitError as exc:
                    if "rejected" not in str(exc) and "fetch first" not in str(exc) and "non-fast-forward" not in str(exc):
                        raise GitOpsError(f"push to {self.url(repo)} failed: {exc}") from None
                    log(f"{repo}: push rejected (remote moved on), rebasing, attempt {attempt}")
                    run_git(["fetch", "--quiet", "origin", self.branch], cwd=clone)
                    run_git(["reset", "--quiet", "--hard", f"origin/{self.branch}"], cwd=clone)
                    continue
                head = run_git(["rev-parse", "HEAD"], cwd=clone).decode().strip()
                log(f"{repo}: pushed {head[:12]}")
                return PushResult(repo, head, changed=True, attempts=attempt)
        raise GitOpsError(f"push to {self.url(repo)} still rejected after {self.max_push_attempts} attempts")

    def read_files(self, repo: str, paths: list[str]) -> dict[str, str | None]:
        """Read files at the branch head of the pushed repo (what a check must trust)."""
        tmp = Path(tempfile.mkdtemp(prefix=f"gitops-read-{repo}-"))
        try:
            run_git(["clone", "--quiet", "--depth", "1", "--branch", self.branch, "--",
                     self.url(repo), str(tmp / "r")])
            return {p: (tmp / "r" / p).read_text() if (tmp / "r" / p).is_file() else None for p in paths}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def log(self, repo: str, limit: int = 50) -> list[dict[str, str]]:
        """Recent commits of the env repo (sha, date, subject) for status and rollback."""
        tmp = Path(tempfile.mkdtemp(prefix=f"gitops-log-{repo}-"))
        try:
            run_git(["clone", "--quiet", "--bare", "--branch", self.branch, "--", self.url(repo), str(tmp / "r")])
            out = run_git(["log", f"-{limit}", "--format=%H%x1f%cI%x1f%s%x1f%b%x1e"], cwd=tmp / "r").decode()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        commits = []
        for record in filter(None, (r.strip() for r in out.split("\x1e"))):
            sha, date, subject, body = (record.split("\x1f") + [""] * 4)[:4]
            commits.append({"sha": sha, "date": date, "subject": subject, "body": body})
        return commits
