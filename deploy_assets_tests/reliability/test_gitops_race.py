"""The GitOps remote moves on between the release's fetch and its push."""

import stat
from pathlib import Path

import pytest

from deploy_assets.resources.git import run_git
from deploy_assets_tests.reliability.conftest import failure

pytestmark = pytest.mark.reliability

TAG = "v3.0.0-alpha.1"

# A real git server-side hook: while our push is being received, someone else's commit lands on
# main (plumbing on the bare repo, outside the push's quarantine), so receive-pack's
# compare-and-swap of the ref fails exactly as when another pusher wins the race. Once only.
RACING_HOOK = """#!/bin/sh
[ -e raced ] && exit 0
: > raced
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
export GIT_INDEX_FILE="$PWD/raced.index" GIT_AUTHOR_NAME=someone GIT_AUTHOR_EMAIL=someone@example.com \\
       GIT_COMMITTER_NAME=someone GIT_COMMITTER_EMAIL=someone@example.com
old=$(git rev-parse refs/heads/main)
git read-tree "$old"
blob=$(echo "changed by someone else" | git hash-object -w --stdin)
git update-index --add --cacheinfo "100644,$blob,OTHER.md"
new=$(git commit-tree "$(git write-tree)" -p "$old" -m "someone else's change")
git update-ref refs/heads/main "$new" "$old"
rm -f "$GIT_INDEX_FILE"
"""


def test_remote_moved_between_fetch_and_push_rebases_keeps_theirs_and_bumps_once(
    rig, fresh_registry, s3_bucket, tmp_path
):
    harness = rig(fresh_registry, *s3_bucket)
    repo = Path(harness.settings.git_root) / "gitops-development.git"
    hook = repo / "hooks" / "pre-receive"
    hook.write_text(RACING_HOOK)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)

    outcome = harness.release(TAG)

    assert outcome.success, failure(harness.instance, outcome.run_id)
    assert (repo / "raced").exists(), "the hook never ran: no race was injected"
    log = [line.split(" ", 1) for line in harness.gitops_log("gitops-development")]
    assert [subject for _, subject in log] == [
        f"deploy(dev): ms_chat ms_core ms_payments -> {TAG}",
        "someone else's change",
        "Initialise gitops-development",
    ]
    bump = harness.metadata("gitops_bump", f"dev|{TAG}")
    assert bump["gitops_commit"] == log[0][0] and bump["push_attempts"] == 2
    parent = run_git(["rev-parse", f"{log[0][0]}^"], cwd=repo).decode().strip()
    assert parent == log[1][0]  # rebased onto their commit, not beside it
    files = run_git(["ls-tree", "-r", "--name-only", "main"], cwd=repo).decode().split()
    assert "OTHER.md" in files and "apps/ms_core/kustomization.yaml" in files
