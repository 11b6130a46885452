"""The source monorepo: tags, commits and an isolated checkout of one commit.

Everything goes through a local bare mirror so a sensor tick or a plan never clones, and a
release's source tree is an export of exactly one commit (no shared worktree to lock or go
stale after a crash).

Several processes share the mirror (the code location loading, every run, the CLI), and any of
them may be killed hard mid-fetch. Writers therefore take an OS file lock (`flock`), which the
kernel drops when its holder dies, so a crash never leaves a lock behind; holding it, a writer
knows that git's own `*.lock` files in the mirror are leftovers of a killed git and removes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
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
        command = args[:]
        while command[:1] == ["-c"]:  # name the subcommand, not the config overrides
            command = command[2:]
        raise GitError(f"git {' '.join(command[:2])} failed: {proc.stderr.decode(errors='replace').strip()}")
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

    @contextlib.contextmanager
    def _mirror_lock(self) -> Iterator[Path]:
        """Exclusive use of the mirror among our processes; released by the kernel on any exit."""
        mirror = self.mirror_path
        mirror.parent.mkdir(parents=True, exist_ok=True)
        with open(mirror.with_name(f"{mirror.name}.flock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield mirror
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def fetch(self) -> Path:
        """Bring the mirror up to date (clone it the first time) and return its path."""
        with self._mirror_lock() as mirror:
            # Under the lock nobody else writes here: these are leftovers of a killed clone/fetch.
            for leftover in mirror.parent.glob(f"{mirror.name}.*.tmp"):
                shutil.rmtree(leftover, ignore_errors=True)
            if (mirror / "HEAD").exists():
                remove_stale_git_locks(mirror)
            else:
                tmp = mirror.with_name(f"{mirror.name}.{uuid.uuid4().hex[:8]}.tmp")
                run_git(["clone", "--mirror", "--quiet", "--", self.remote, str(tmp)])
                tmp.rename(mirror)
            # No auto-gc: a detached gc would outlive the lock and race the next fetch.
            run_git(["-c", "gc.auto=0", "-c", "maintenance.auto=false", "fetch", "--prune", "--prune-tags",
                     "--force", "--quiet", "origin"], cwd=mirror)
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
        """Materialize one commit's tree at dest, atomically: a crash leaves no half tree.

        The tree is extracted beside dest and renamed into place; an old tree is renamed away
        before it is deleted, so a crash mid-delete can't leave a partial tree that still
        carries the commit marker. Leftovers of killed exports (their pid is dead) are removed.
        """
        marker = dest / ".deploy-assets-commit"
        if marker.exists() and marker.read_text() == commit:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        for leftover in dest.parent.glob(f".{dest.name}.*"):
            if not _pid_alive(leftover.name[len(dest.name) + 2:].split(".")[0]):
                shutil.rmtree(leftover, ignore_errors=True)
        archive = run_git(["archive", "--format=tar", commit], cwd=self.mirror_path)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.11.4 (Debian 12's python3): refuse absolute or ".." paths ourselves
                for member in tar.getmembers():
                    if member.name.startswith("/") or ".." in Path(member.name).parts:
                        raise GitError(f"archive of {commit} has an unsafe path {member.name!r}")
                tar.extractall(tmp)
        (tmp / marker.name).write_text(commit)
        if dest.exists():
            old = dest.with_name(f"{tmp.name}.old")
            dest.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(dest)
        return dest


def remove_stale_git_locks(repo: Path) -> list[Path]:
    """Delete git's `*.lock` files in a bare repo; call only while holding the repo's flock."""
    removed = []
    for pattern in ("*.lock", "refs/**/*.lock", "objects/info/*.lock"):
        for lock in repo.glob(pattern):
            if lock.is_file():
                lock.unlink(missing_ok=True)
                removed.append(lock)
    return removed


def _pid_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
