"""How a CLI command ends: exit codes and advice from what a run reported (pure decisions)."""

import argparse

import pytest

from deploy_assets.cli import commands as cli
from deploy_assets.cli.outcome import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_GATE,
    EXIT_OK,
    EXIT_PREFLIGHT,
    EXIT_REFUSED,
    epilog,
    release_verdict,
    rollback_verdict,
)

GATE = (
    "promotion gate: v0.9.0 refused before any side effect: no successful staging release "
    "v0.9.0-rc.N on commit 0123456789ab (staging releases of 0.9.0: none)"
)


def verdict(step: str, cls: str, reason: str, success: bool = False):
    return release_verdict("v0.9.0", "0.9.0", success, step, cls, reason)


def test_a_gate_refusal_exits_3_and_says_which_rc_to_release_first():
    found = verdict("source", "PlanError", GATE)
    assert (found.code, found.refused) == (EXIT_GATE, True)
    assert found.hint.startswith("release v0.9.0-rc.N to staging first, then v0.9.0 again")
    assert "`deploy-assets plan v0.9.0`" in found.hint and "nothing was built" in found.hint


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        ("DestinationUnreachable", EXIT_PREFLIGHT),
        ("PreflightError", EXIT_PREFLIGHT),
        ("PlanError", EXIT_REFUSED),
        ("TagRejected", EXIT_REFUSED),
        ("ConfigError", EXIT_REFUSED),
        ("ServiceStateError", EXIT_REFUSED),
    ],
)
def test_refusals_in_the_source_step_have_their_codes(cls, code):
    found = verdict("source", cls, "tag v0.9.0 does not exist in /git/monorepo.git")
    assert (found.code, found.refused) == (code, True) and found.hint


@pytest.mark.parametrize(
    ("step", "cls", "reason"),
    [
        ("source", "GitError", "git fetch failed"),  # not a refusal: an unexpected failure
        ("images", "PlanError", GATE),  # past source something may be published: a failed run
        ("binaries", "GoBuildError", "ms_core: undefined: x"),
        ("gitops_bump", "DestinationUnreachable", "the repo does not answer"),
    ],
)
def test_other_failures_are_failed_runs(step, cls, reason):
    found = verdict(step, cls, reason)
    assert (found.code, found.refused, found.hint) == (EXIT_FAILED, False, "")


def test_success_exits_0():
    assert verdict("", "", "", success=True).code == EXIT_OK


def test_rollback_verdicts():
    refused = rollback_verdict("prod", False, True)
    assert (refused.code, refused.refused) == (EXIT_REFUSED, True)
    assert "`deploy-assets rollback prod --to VERSION`" in refused.hint
    assert rollback_verdict("prod", False, False).code == EXIT_FAILED
    assert rollback_verdict("prod", True, False).code == EXIT_OK


def test_help_documents_every_exit_code():
    text = cli.build_parser().format_help()
    assert "exit codes:" in text and text.endswith(epilog() + "\n")
    for code in EXIT_CODES:
        assert f"\n  {code}  " in epilog()
    assert all(len(line) <= 78 for line in epilog().splitlines())
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert "exit codes:" in sub.choices["release"].format_help()
    for name in ("release", "rollback", "demo"):
        assert "--verbose" in sub.choices[name].format_help()
