"""Commit trailers as status and rollback read them: only git's trailer block, first value of a
key wins. Real git repos, no release needed. (That no value we write can hold a line break is
pure: unit/test_trailers.py.)"""

from deploy_assets.records.status import env_history
from deploy_assets.resources.git import run_git
from deploy_assets.resources.gitops import GitOpsResource, commit_message

REPO = "gitops-development"


def _commit(git_root, tmp_path, message: str) -> None:
    work = tmp_path / f"w{len(list(tmp_path.iterdir()))}"
    run_git(["clone", "--quiet", str(git_root / f"{REPO}.git"), str(work)])
    run_git(["commit", "--quiet", "--allow-empty", "-m", message], cwd=work)
    run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=work)


def test_only_the_trailer_block_git_parses_counts_and_the_first_value_wins(git_root, tmp_path):
    gitops = GitOpsResource(root=str(git_root))
    _commit(
        git_root, tmp_path, commit_message("dev", "v1.0.0-alpha.1", "abc", ["ms_core"], "run-1")
    )
    _commit(
        git_root,
        tmp_path,
        "deploy(dev): ms_core -> v1.0.0-alpha.2\n\nRelease-Tag: v1.0.0-alpha.2\n"
        "Rollback-By: eve\nRelease-Tag: v9.9.9\n",
    )  # as a forged value once landed
    _commit(git_root, tmp_path, "notes\n\nRelease-Tag: v9.9.9\n\nthis paragraph ends the message")
    _commit(git_root, tmp_path, "Release-Tag: v9.9.8")  # a subject is never a trailer
    history = env_history(gitops, REPO)
    assert [(d.tag, d.run_id) for d in history] == [
        ("v1.0.0-alpha.1", "run-1"),
        ("v1.0.0-alpha.2", ""),
    ]
