"""Commit trailers as status and rollback read them: only git's trailer block, first value of a
key wins, and no value we write can hold a line break. Real git repos, no release needed."""

import pytest

from deploy_assets.resources.git import run_git
from deploy_assets.resources.gitops import GitOpsError, GitOpsResource, commit_message, one_line
from deploy_assets.rollback import RollbackPlan, requested_by, rollback_message, RollbackRefused
from deploy_assets.status import env_history

REPO = "gitops-development"


def _commit(git_root, tmp_path, message: str) -> None:
    work = tmp_path / f"w{len(list(tmp_path.iterdir()))}"
    run_git(["clone", "--quiet", str(git_root / f"{REPO}.git"), str(work)])
    run_git(["commit", "--quiet", "--allow-empty", "-m", message], cwd=work)
    run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=work)


def test_only_the_trailer_block_git_parses_counts_and_the_first_value_wins(git_root, tmp_path):
    gitops = GitOpsResource(root=str(git_root))
    _commit(git_root, tmp_path, commit_message("dev", "v1.0.0-alpha.1", "abc", ["ms_core"], "run-1"))
    _commit(git_root, tmp_path, "deploy(dev): ms_core -> v1.0.0-alpha.2\n\nRelease-Tag: v1.0.0-alpha.2\n"
                                "Rollback-By: eve\nRelease-Tag: v9.9.9\n")  # as a forged value once landed
    _commit(git_root, tmp_path, "notes\n\nRelease-Tag: v9.9.9\n\nthis paragraph ends the message")
    _commit(git_root, tmp_path, "Release-Tag: v9.9.8")  # a subject is never a trailer
    history = env_history(gitops, REPO)
    assert [(d.tag, d.run_id) for d in history] == [("v1.0.0-alpha.1", "run-1"), ("v1.0.0-alpha.2", "")]


@pytest.mark.parametrize("value", ["eve\nRelease-Tag: v9.9.9", "eve\rRelease-Tag: v9", "a\x1db", "a\u2028b", "tab\there"])
def test_values_with_control_characters_are_refused_by_name(value):
    with pytest.raises(GitOpsError, match=r"^Rollback-By .* contains the control character"):
        one_line("Rollback-By", value)
    plan = RollbackPlan("dev", REPO, "v1.0.0-alpha.2", "v1.0.0-alpha.1", ["ms_core"], "abc")
    with pytest.raises(GitOpsError, match=r"^Rollback-By "):
        rollback_message(plan, value, "2026-01-01T00:00:00+00:00", "run")
    with pytest.raises(GitOpsError, match=r"^project "):
        commit_message("dev", "v1.0.0-alpha.1", "abc", [value], "run")
    with pytest.raises(RollbackRefused, match=r"^requested_by "):
        requested_by(value, None)
    with pytest.raises(RollbackRefused, match=r"^the run's user tag "):
        requested_by("", value)


def test_a_clean_requester_is_kept_and_the_default_is_dagster():
    assert requested_by("alice@example.org", "bob") == "alice@example.org"
    assert requested_by("", "bob") == "bob"
    assert requested_by("", None) == "dagster"
    plan = RollbackPlan("dev", REPO, "v1.0.0-alpha.2", "v1.0.0-alpha.1", ["ms_core"], "abc")
    assert "\nRollback-By: alice\nRollback-At: t\nDagster-Run: r\n" in rollback_message(plan, "alice", "t", "r")
