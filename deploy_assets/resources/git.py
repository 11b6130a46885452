"""The source monorepo: tags, commits and an isolated checkout of one commit.

Everything goes through a local bare mirror so a sensor tick or a plan never clones, and a
release's source tree is an export of exactly one commit (no shared worktree to lock or go
stale after a crash).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import dagster as dg

GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "deploy-assets",
    "GIT_AUTHOR_EMAIL": "deploy-assets@localhost",
    "GIT_COMMITTER_NAME": "deploy-assets",
    "GIT_COMMITTER_EMAIL": "deploy-assets@localhost",
}


class GitError(RuntimeError):
    pass


def run_git(args: list[str], cwd: str | Path | None = None, input_bytes: bytes | None = None,
            timeout: float = 300) -> bytes:
    """Run git with an argument list (never a shell); raise GitError with git's own words."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, input=input_bytes, capture_output=True, timeout=timeout,
            env={**os.environ, **GIT_ENV},
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def parse_ls_remote(output: str) -> dict[str, str]:
    """tag name -> commit; annotated tags resolve to the commit they point at (the ^{} line)."""
    tags: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref[len("refs/tags/"):]
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            tags[name] = sha
    tags.update(peeled)
    return tags


class GitSourceResource(dg.ConfigurableResource):
    """The monorepo's remote (a path or any git URL) and our local mirror of it."""

    remote: str
    cache_dir: str

    @property
    def mirror_path(self) -> Path:
        digest = hashlib.sha256(self.remote.encode()).hexdigest()[:12]
        return Path(self.cache_dir) / "mirrors" / f"source-{digest}.git"

    def ls_remote_tags(self, timeout: float = 30) -> dict[str, str]:
        """One `git ls-remote` for all tags: the sensor's only I/O per tick."""
        out = run_git(["ls-remote", "--tags", "--", self.remote], timeout=timeout)
        return parse_ls_remote(out.decode(errors="replace"))

    def fetch(self) -> Path:
        """Bring the mirror up to date (clone it the first time) and return its path."""
        mirror = self.mirror_path
        if not (mirror / "HEAD").exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            tmp = mirror.with_name(f"{mirror.name}.{uuid.uuid4().hex[:8]}.tmp")
            run_git(["clone", "--mirror", "--quiet", "--", self.remote, str(tmp)])
            try:
                tmp.rename(mirror)
            except OSError:  # another process won the race; its mirror is as good as ours
                shutil.rmtree(tmp, ignore_errors=True)
        run_git(["fetch", "--prune", "--prune-tags", "--force", "--quiet", "origin"], cwd=mirror)
        return mirror

    def resolve(self, ref: str) -> str:
        """Commit sha of a tag, branch or HEAD in the mirror."""
        out = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
                      cwd=self.mirror_path)
        return out.decode().strip()

    def list_files(self, commit: str) -> list[str]:
        out = run_git(["ls-tree", "-r", "--name-only", "-z", commit], cwd=self.mirror_path)
        return [p for p in out.decode(errors="surrogateescape").split("\0") if p]

    def read_file(self, commit: str, path: str) -> str | None:
        try:
            return run_git(["show", f"{commit}:{path}"], cwd=self.mirror_path).decode()
        except GitError:
            return None

    def export(self, commit: str, dest: Path) -> Path:
        """Materialize one commit's tree at dest, atomically: a crash leaves no half tree."""
        marker = dest / ".deploy-assets-commit"
        if marker.exists() and marker.read_text() == commit:
            return dest
        archive = run_git(["archive", "--format=tar", commit], cwd=self.mirror_path)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        (tmp / marker.name).write_text(commit)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
        return dest
