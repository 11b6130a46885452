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
import socket
import tarfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
from pydantic import Field

from deploy_assets.resources.credentials import plain_url, redact_url
from deploy_assets.resources.git_locks import lock_holder, pid_alive, remove_stale_git_locks
from deploy_assets.resources.git_run import GIT_ENV, GitError, parse_ls_remote, run_git

__all__ = ["GIT_ENV", "GitError", "GitSourceResource", "parse_ls_remote", "run_git"]


class GitSourceResource(dg.ConfigurableResource):
    """The monorepo's remote (a path or any git URL) and our local mirror of it. A token in
    `remote` reaches git only through its environment; whatever is shown uses display_remote."""

    remote: str = Field(
        description="The monorepo: a path or any git URL; a token in it is kept out of argv and logs."
    )
    cache_dir: str = Field(description="Directory of the local bare mirror (under mirrors/).")
    lock_timeout: float = Field(
        default=900, description="Seconds to wait for another process's fetch of the mirror."
    )
    git_timeout: float = Field(default=600, description="Seconds any one git command may take.")

    @property
    def display_remote(self) -> str:
        return redact_url(self.remote)

    @property
    def mirror_path(self) -> Path:
        # the plain URL: a rotated token must not make a second mirror (or put itself in a path)
        digest = hashlib.sha256(plain_url(self.remote).encode()).hexdigest()[:12]
        return Path(self.cache_dir) / "mirrors" / f"source-{digest}.git"

    def ls_remote_tags(self, timeout: float = 30) -> dict[str, str]:
        """One `git ls-remote` for all tags: the sensor's only I/O per tick."""
        out = self._git(["ls-remote", "--tags", "--", self.remote], timeout=timeout)
        return parse_ls_remote(out.decode(errors="replace"))

    def _git(self, args: list[str], cwd: Path | None = None, timeout: float | None = None) -> bytes:
        """run_git with our credentials and timeout; errors name the remote, redacted."""
        try:
            return run_git(args, cwd=cwd, timeout=timeout or self.git_timeout, auth=self.remote)
        except GitError as exc:
            raise GitError(f"{exc} (source remote {self.display_remote})") from None

    @contextlib.contextmanager
    def _mirror_lock(self) -> Iterator[Path]:
        """Exclusive use of the mirror among our processes; released by the kernel on any exit.
        Retried until `lock_timeout`: a stuck holder fails us naming the lock and the holder,
        instead of hanging the release and the code location forever."""
        mirror = self.mirror_path
        mirror.parent.mkdir(parents=True, exist_ok=True)
        lock_file = mirror.with_name(f"{mirror.name}.flock")
        with open(lock_file, "a+") as handle:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise GitError(
                            f"the source mirror's lock {lock_file} is still held after "
                            f"{self.lock_timeout:g}s by {lock_holder(lock_file)}; if that "
                            "process is stuck, stop it and retry"
                        ) from None
                    time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            try:  # for lock_holder where /proc/locks cannot tell (another container or host)
                handle.seek(0)
                handle.truncate()
                handle.write(
                    f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%FT%T%z')}\n"
                )
                handle.flush()
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
                self._forget_credentials(mirror)
            else:
                tmp = mirror.with_name(f"{mirror.name}.{uuid.uuid4().hex[:8]}.tmp")
                self._git(["clone", "--mirror", "--quiet", "--", self.remote, str(tmp)])
                tmp.rename(mirror)
            # No auto-gc: a detached gc would outlive the lock and race the next fetch.
            self._git(
                [
                    "-c",
                    "gc.auto=0",
                    "-c",
                    "maintenance.auto=false",
                    "fetch",
                    "--prune",
                    "--prune-tags",
                    "--force",
                    "--quiet",
                    "origin",
                ],
                cwd=mirror,
            )
        return mirror

    def _forget_credentials(self, mirror: Path) -> None:
        """A mirror cloned by an older version may hold the token in its config: replace it."""
        if run_git(
            ["config", "--get", "remote.origin.url"], cwd=mirror
        ).decode().strip() != plain_url(self.remote):
            run_git(["config", "remote.origin.url", plain_url(self.remote)], cwd=mirror)
        # Older versions named the mirror after the URL with its token (and stored the token in it).
        legacy = mirror.with_name(
            f"source-{hashlib.sha256(self.remote.encode()).hexdigest()[:12]}.git"
        )
        if legacy != mirror and legacy.exists():
            shutil.rmtree(legacy, ignore_errors=True)

    def resolve(self, ref: str) -> str:
        """Commit sha of a tag, branch or HEAD in the mirror."""
        out = run_git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
            cwd=self.mirror_path,
            timeout=self.git_timeout,
        )
        return out.decode().strip()

    def list_files(self, commit: str) -> list[str]:
        out = run_git(
            ["ls-tree", "-r", "--name-only", "-z", commit],
            cwd=self.mirror_path,
            timeout=self.git_timeout,
        )
        return [p for p in out.decode(errors="surrogateescape").split("\0") if p]

    def read_file(self, commit: str, path: str) -> str | None:
        try:
            return run_git(
                ["show", f"{commit}:{path}"], cwd=self.mirror_path, timeout=self.git_timeout
            ).decode()
        except GitError:
            return None

    def export(self, commit: str, dest: Path, paths: Sequence[str] = (".",)) -> Path:
        """One commit's tree at dest (only `paths`: what source_export.py says a build needs),
        atomically: extracted beside dest and renamed into place; an old tree is renamed away
        before it is deleted, so a crash never leaves a partial tree carrying the marker (the
        commit, and the paths when not the whole tree). Leftovers of killed exports are removed."""
        marker, whole = dest / ".deploy-assets-commit", tuple(paths) == (".",)
        stamp = commit if whole else "\n".join([commit, *paths])
        if marker.exists() and marker.read_text() == stamp:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        for leftover in dest.parent.glob(f".{dest.name}.*"):
            if not pid_alive(leftover.name[len(dest.name) + 2 :].split(".")[0]):
                shutil.rmtree(leftover, ignore_errors=True)
        pathspecs = [] if whole else ["--", *(f":(literal){p}" for p in paths)]
        archive = run_git(
            ["archive", "--format=tar", commit, *pathspecs],
            cwd=self.mirror_path,
            timeout=self.git_timeout,
        )
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        try:
            _extract(archive, tmp, commit)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        (tmp / marker.name).write_text(stamp)
        if dest.exists():
            old = dest.with_name(f"{tmp.name}.old")
            dest.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(dest)
        return dest


def _extract(archive: bytes, dest: Path, commit: str) -> None:
    """Extract a `git archive` tar into dest, refusing a member that lands or points outside it
    (a `..` path, a link like `cmd/ms/evil -> /etc` that go build or a copy would follow)."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.name.startswith("/") or ".." in Path(member.name).parts:
                raise GitError(
                    f"archive of {commit} has an unsafe path {member.name!r}; fix the monorepo"
                )
            if member.issym() or member.islnk():
                base = dest / Path(member.name).parent if member.issym() else dest
                target = os.path.normpath(os.path.join(base, member.linkname))
                if member.linkname.startswith("/") or not Path(target).is_relative_to(dest):
                    raise GitError(
                        f"archive of {commit} has a link {member.name} -> {member.linkname} that "
                        "points outside the source tree; remove it from the monorepo"
                    )
        try:  # and the stdlib's own checks where it has them (not before Python 3.11.4, Debian 12's)
            tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        except tarfile.TarError as exc:
            raise GitError(f"archive of {commit} refused: {exc}") from None
