"""Running git: an argument list (never a shell), credentials through the environment only.

Every git command of the source mirror, the gitops repos and the CLI goes through run_git, so
a token in a remote URL never reaches argv, a log or an error, and a git that hangs is killed
with its remote helpers.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from deploy_assets.resources.credentials import (
    git_credentials,
    has_credentials,
    plain_url,
    redact_text,
)
from deploy_assets.resources.processes import kill_tree

GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "deploy-assets",
    "GIT_AUTHOR_EMAIL": "deploy-assets@localhost",
    "GIT_COMMITTER_NAME": "deploy-assets",
    "GIT_COMMITTER_EMAIL": "deploy-assets@localhost",
}


# git's words when a remote answered 401/403 to the credentials we sent
_AUTH_REFUSED = ("could not read Username", "Authentication failed", "error: 401", "error: 403")


class GitError(RuntimeError):
    pass


def run_git(
    args: list[str],
    cwd: str | Path | None = None,
    input_bytes: bytes | None = None,
    timeout: float = 300,
    auth: str = "",
) -> bytes:
    """Run git with an argument list (never a shell); raise GitError with git's own words.

    A URL with credentials never reaches argv: it is replaced by its plain URL and the secret
    goes to git through its environment (`auth`: the URL behind a remote name, as in `fetch
    origin`); error text is redacted. On timeout git is killed with its children, so no
    `git-remote-https` child outlives the call either."""
    secrets = [a for a in [*args, auth] if has_credentials(a)]
    env = {**os.environ, **GIT_ENV}
    for url in dict.fromkeys(secrets):
        env.update(git_credentials(url, env)[1])
    argv = ["git", *(plain_url(a) for a in args)]
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise GitError(f"cannot run git: {redact_text(str(exc), *secrets)}") from None
    try:
        stdout, stderr = proc.communicate(input_bytes, timeout=timeout)
    except BaseException as exc:  # a timeout, Ctrl-C or a terminated run: no git outlives the call
        kill_tree(proc.pid)  # resources/processes.py: git and its remote helpers
        proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise GitError(f"git {_subcommand(argv[1:])} timed out after {timeout:g}s") from None
        raise
    if proc.returncode != 0:
        message = redact_text(stderr.decode(errors="replace").strip(), *secrets)
        if secrets and any(m in message for m in _AUTH_REFUSED):
            message += " (the remote refused the credentials in the URL: wrong or expired token?)"
        raise GitError(f"git {_subcommand(argv[1:])} failed: {message}")
    return stdout


def _subcommand(args: list[str]) -> str:
    """The subcommand and its first argument, not the `-c` config overrides; never a secret."""
    command = args[:]
    while command[:1] == ["-c"]:
        command = command[2:]
    return redact_text(" ".join(command[:2]))


def parse_ls_remote(output: str) -> dict[str, str]:
    """tag name -> commit; annotated tags resolve to the commit they point at (the ^{} line)."""
    tags: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref[len("refs/tags/") :]
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            tags[name] = sha
    tags.update(peeled)
    return tags
