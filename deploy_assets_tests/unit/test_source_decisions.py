"""The decisions `source` takes before any side effect: a moved tag, and the promotion gate's
verdict. Plain functions, so each case is one line here instead of one release."""

import pytest

from deploy_assets.assets.source import gate_verdict, moved_since_released, moved_since_requested
from deploy_assets.plan import PlanError, PromotionGate
from deploy_assets.tags import parse_tag

A, B = "a" * 40, "b" * 40


def test_a_tag_on_the_commit_it_was_released_from_has_not_moved():
    assert moved_since_released("v1.0.0-rc.1", A, A, "run-1") is None
    assert moved_since_released("v1.0.0-rc.1", A, None, "run-1") is None  # never released


def test_a_tag_moved_since_its_release_names_both_commits_and_the_run():
    assert moved_since_released("v1.0.0-rc.1", B, A, "run-1") == (
        f"tag v1.0.0-rc.1 MOVED from {A[:12]} (released by run run-1) to {B[:12]}: a release tag "
        "must not move; create a new tag instead"
    )


def test_a_tag_moved_since_the_run_was_requested_names_both_commits():
    assert moved_since_requested("v1.0.0", A, None) is None  # a run without the request's commit
    assert moved_since_requested("v1.0.0", A, A) is None
    assert moved_since_requested("v1.0.0", B, A) == (
        f"tag v1.0.0 MOVED from {A[:12]} (when this release was requested) to {B[:12]}: a release tag "
        "must not move; create a new tag instead"
    )


def test_a_closed_gate_refuses_before_any_side_effect():
    with pytest.raises(
        PlanError, match=r"promotion gate: v1.0.0 refused before any side effect: no rc"
    ):
        gate_verdict(parse_tag("v1.0.0"), PromotionGate(False, "no rc"))


@pytest.mark.parametrize(
    ("tag", "gate", "level"),
    [
        (
            "v1.0.0",
            PromotionGate(True, "staging release v1.0.0-rc.1 validated", "v1.0.0-rc.1"),
            "info",
        ),
        ("v1.0.0", PromotionGate(True, "ALLOWED WITHOUT STAGING by explicit switch"), "warning"),
        (
            "v1.0.0-rc.1",
            PromotionGate(True, "staging releases need no staging validation"),
            "debug",
        ),
    ],
)
def test_an_open_gate_is_logged_and_the_bypass_loudly(tag, gate, level):
    assert gate_verdict(parse_tag(tag), gate) == (level, f"promotion gate: {gate.reason}")
