"""A token in an HTTPS remote never leaks: not to output, Dagster's storage, disk, nor argv.

The source monorepo and the GitOps repos are served over git's smart HTTP with basic auth
(deploy_assets_tests/git_http.py), and both settings are `http://x-access-token:TOKEN@...`
URLs, the way teams push to GitHub over HTTPS. A real release runs against them; then every
byte it left behind is searched for the token.
"""

import base64
import os
import re
import shutil
import stat
import uuid
from pathlib import Path

import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster_shared.serdes import serialize_value

from deploy_assets.cli.runner import run_release
from deploy_assets.config import load_pipeline_config
from deploy_assets.resources.credentials import git_credentials, plain_url, redact_text, redact_url
from deploy_assets.resources.git import GitError, GitSourceResource, run_git
from deploy_assets.resources.gitops import GitOpsError, GitOpsResource, bump_edit
from deploy_assets.resources.s3 import S3Resource
from deploy_assets_tests.conftest import Harness, make_settings
from deploy_assets_tests.git_http import serve_git
from deploy_assets_tests.instances import local_instance_for_test

USER = "x-access-token"


@pytest.mark.parametrize(
    "url, shown, plain",
    [
        (
            "https://x-access-token:ghs_abc@github.com/org",
            "https://***@github.com/org",
            "https://github.com/org",
        ),
        (
            "https://ghp_tokenonly@github.com/org/r.git",
            "https://***@github.com/org/r.git",
            "https://github.com/org/r.git",
        ),
        (
            "http://u:p%40ss@127.0.0.1:8080/x.git",
            "http://***@127.0.0.1:8080/x.git",
            "http://127.0.0.1:8080/x.git",
        ),
        ("ssh://git:pw@host/x.git", "ssh://git:***@host/x.git", "ssh://host/x.git"),
        (
            "ssh://git@github.com/org/r.git",
            "ssh://git@github.com/org/r.git",
            "ssh://git@github.com/org/r.git",
        ),
        ("git@github.com:org/r.git", "git@github.com:org/r.git", "git@github.com:org/r.git"),
        ("/srv/git/monorepo.git", "/srv/git/monorepo.git", "/srv/git/monorepo.git"),
        ("https://github.com/org", "https://github.com/org", "https://github.com/org"),
    ],
)
def test_urls_are_shown_redacted_and_given_to_git_plain(url, shown, plain):
    assert redact_url(url) == shown
    assert plain_url(url) == plain


def test_git_gets_the_credentials_as_a_header_scoped_to_the_url_and_keeps_existing_entries():
    plain, env = git_credentials(
        "https://x-access-token:s3cr%2Ft@host:8443/org", {"GIT_CONFIG_COUNT": "2"}
    )
    assert plain == "https://host:8443/org"
    assert env["GIT_CONFIG_COUNT"] == "3"
    assert env["GIT_CONFIG_KEY_2"] == "http.https://host:8443/org.extraHeader"
    assert (
        env["GIT_CONFIG_VALUE_2"]
        == "Authorization: Basic " + base64.b64encode(b"x-access-token:s3cr/t").decode()
    )
    assert git_credentials("/srv/git/monorepo.git") == ("/srv/git/monorepo.git", {})
    with pytest.raises(ValueError, match=r"ssh://git:\*\*\*@host/x: a password in a ssh:// URL"):
        git_credentials("ssh://git:pw@host/x")


def test_free_text_loses_every_userinfo_and_every_literal_secret():
    url = "https://x-access-token:tok123@host/org"
    text = (
        "fatal: unable to access 'https://x-access-token:tok123@host/org/a.git/': tok123 rejected"
    )
    assert (
        redact_text(text, url)
        == "fatal: unable to access 'https://***@host/org/a.git/': *** rejected"
    )
    assert (
        redact_text("see http://someone:pw@h/x and ftp://a@b/c")
        == "see http://***@h/x and ftp://***@b/c"
    )


def _log(git_root: Path, repo: str) -> list[str]:
    """Subjects of the served bare repo's main branch, newest first (read on disk, not over HTTP)."""
    return (
        run_git(["log", "--format=%s", "main"], cwd=git_root / f"{repo}.git").decode().splitlines()
    )


def _argv_recorder(bin_dir: Path, log: Path) -> None:
    """A `git` first on PATH that appends its argv to log (one line) and runs the real git."""
    real = shutil.which("git")
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)


def _files_containing(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            hits += [f"{path} has {needle!r}" for needle in needles if needle in data]
    return hits


@pytest.fixture
def https_harness(tmp_path, fresh_registry, s3_server, git_root, monorepo, monkeypatch):
    """A release set-up whose source and GitOps remotes are token URLs over smart HTTP; yields
    (harness, token, served base URL, Authorization headers seen, argv log, git trace)."""
    token = f"ghs_{uuid.uuid4().hex}"
    argv_log, trace = tmp_path / "argv" / "git-argv.log", tmp_path / "argv" / "git-trace.log"
    _argv_recorder(tmp_path / "argv" / "bin", argv_log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'argv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GIT_TRACE", str(trace))  # git's own children too: remote-http, upload-pack
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    S3Resource(bucket=bucket, endpoint_url=s3_server).ensure_bucket()
    with serve_git(git_root, USER, token) as (base, seen):
        secret_base = base.replace("http://", f"http://{USER}:{token}@")
        settings = make_settings(
            tmp_path,
            fresh_registry,
            s3_server,
            git_root,
            monorepo.bare,
            bucket,
            DEPLOY_ASSETS_SOURCE_REPO=f"{secret_base}/monorepo.git",
            DEPLOY_ASSETS_GITOPS_ROOT=secret_base,
        )
        with local_instance_for_test(tmp_path / "dagster_home") as instance:
            yield (
                Harness(settings, load_pipeline_config(), instance, monorepo),
                token,
                base,
                seen,
                argv_log,
                trace,
            )


def test_a_token_in_both_remotes_reaches_git_only_through_its_environment(
    https_harness, tmp_path, git_root, capfd
):
    harness, token, base, seen, argv_log, trace = https_harness
    header = base64.b64encode(f"{USER}:{token}".encode())
    needles = [token.encode(), header]
    before = _log(git_root, "gitops-development")
    printed: list[str] = []

    harness.monorepo.tag("v1.0.0-alpha.1")
    outcome = run_release(harness.defs, harness.instance, "v1.0.0-alpha.1", progress=printed.append)

    assert outcome.success, outcome.error
    after = _log(git_root, "gitops-development")
    assert len(after) == len(before) + 1 and "-> v1.0.0-alpha.1" in after[0]
    assert seen and all(
        h == f"Basic {header.decode()}" for h in seen
    )  # every request authenticated
    console = capfd.readouterr()
    shown = "\n".join(printed) + console.out + console.err
    assert printed and token not in shown and header.decode() not in shown
    for folder in ("dagster_home", "work", "cache"):  # sqlite db, -wal, compute logs, mirror config
        assert (tmp_path / folder).is_dir(), folder
        assert _files_containing(tmp_path / folder, needles) == []
    mirror_config = next((tmp_path / "cache").rglob("mirrors/source-*.git/config")).read_text()
    assert re.search(rf"url = {re.escape(base)}/monorepo\.git\n", mirror_config)
    argv = argv_log.read_text()
    assert "clone --mirror" in argv and "push --quiet origin" in argv and "ls-remote" in argv
    assert token not in argv and header.decode() not in argv
    assert (
        "remote-http" in trace.read_text() and token not in trace.read_text()
    )  # git's own children's argv
    # What the UI shows of the code location (Resources page, Launchpad defaults) is its snapshot.
    snapshot = serialize_value(RepositorySnap.from_def(harness.defs.get_repository_def()))
    assert token not in snapshot and header.decode() not in snapshot


def test_a_wrong_token_fails_naming_the_redacted_url_and_changes_nothing(
    https_harness, tmp_path, git_root
):
    harness, token, base, _, argv_log, _ = https_harness
    wrong = "ghs_wrong0000"
    bad_root = base.replace("http://", f"http://{USER}:{wrong}@")
    shown = base.replace("http://", "http://***@")
    source = GitSourceResource(
        remote=f"{bad_root}/monorepo.git", cache_dir=str(tmp_path / "cache-wrong")
    )
    with pytest.raises(
        GitError,
        match=rf"refused the credentials.*\(source remote {re.escape(shown)}/monorepo\.git\)",
    ) as exc:
        source.fetch()
    assert wrong not in str(exc.value)
    assert not source.mirror_path.exists()

    before = _log(git_root, "gitops-development")
    gitops = GitOpsResource(root=bad_root)
    with pytest.raises(
        GitOpsError,
        match=rf"cannot clone GitOps repo {re.escape(shown)}/gitops-development\.git: "
        r".*refused the credentials",
    ) as exc:
        gitops.commit_and_push(
            "gitops-development",
            bump_edit(
                harness.config.envs["dev"].gitops, "dev", {"ms_core": "r/ms_core"}, "v9.9.9", None
            ),
            "bump",
        )
    assert wrong not in str(exc.value)
    assert _log(git_root, "gitops-development") == before
    assert wrong not in argv_log.read_text()
    assert _files_containing(tmp_path / "cache-wrong", [wrong.encode()]) == []
