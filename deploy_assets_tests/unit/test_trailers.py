"""No value we write into a commit's trailers can hold a line break, and who asked for a rollback
is named cleanly. (How git parses the trailer block: deploy_assets_tests/test_trailers.py.)"""

import pytest

from deploy_assets.records.rollback import (
    RollbackPlan,
    RollbackRefused,
    requested_by,
    rollback_message,
)
from deploy_assets.resources.gitops import GitOpsError, commit_message, one_line

REPO = "gitops-development"


@pytest.mark.parametrize(
    "value", ["eve\nRelease-Tag: v9.9.9", "eve\rRelease-Tag: v9", "a\x1db", "a\u2028b", "tab\there"]
)
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
    assert "\nRollback-By: alice\nRollback-At: t\nDagster-Run: r\n" in rollback_message(
        plan, "alice", "t", "r"
    )
