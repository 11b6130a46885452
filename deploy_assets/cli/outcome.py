"""How a CLI command ends: its exit code, and for an expected refusal what to do about it.

Plain decisions on what a run reported (the failed step, the class and message of what it
raised), so they are unit-tested without running anything. A refusal is a release stopped in
its first step (`source`: tag, config, promotion gate, preflight), before anything was built or
published; every other failure is a failed run, exit 1, whose reason the CLI prints all the same.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from deploy_assets.names import SOURCE_KEY

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_GATE, EXIT_PREFLIGHT = 0, 1, 2, 3, 4
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "the release or rollback ran and failed (the reason and Dagster's log are named)",
    EXIT_REFUSED: "refused, nothing changed: a malformed tag, a bad config or service directory, "
    "a rollback with no verified target",
    EXIT_GATE: "refused by the promotion gate: prod without a successful staging rc "
    "(`plan`: the gate would refuse; the plan is printed all the same)",
    EXIT_PREFLIGHT: "refused by the preflight, nothing changed: a registry, bucket, Docker engine "
    "or GitOps repo the release needs does not answer",
}
SOURCE_STEP = SOURCE_KEY.to_python_identifier()
GATE_PREFIX = "promotion gate:"
REFUSED_CLASSES = frozenset({"PlanError", "TagRejected", "ConfigError", "ServiceStateError"})
PREFLIGHT_CLASSES = frozenset({"DestinationUnreachable", "PreflightError"})
NOTHING_CHANGED = "nothing was built or published"


def epilog() -> str:
    """The exit codes, for `deploy-assets --help`."""
    return "exit codes:\n" + "\n".join(
        textwrap.fill(text, width=78, initial_indent=f"  {code}  ", subsequent_indent=" " * 5)
        for code, text in EXIT_CODES.items()
    )


@dataclass(frozen=True)
class Verdict:
    code: int
    refused: bool  # an expected refusal: say why and what to do, never a stack trace
    hint: str = ""  # what to do, for a refusal


def release_verdict(
    tag: str, base_version: str, success: bool, failed_step: str, error_class: str, reason: str
) -> Verdict:
    """Exit code and advice for a finished release run of `tag` (base_version: its X.Y.Z)."""
    if success:
        return Verdict(EXIT_OK, False)
    if failed_step != SOURCE_STEP:
        return Verdict(EXIT_FAILED, False)
    if error_class == "PlanError" and reason.startswith(GATE_PREFIX):
        return Verdict(
            EXIT_GATE,
            True,
            f"release v{base_version}-rc.N to staging first, then {tag} again; "
            f"`deploy-assets plan {tag}` shows the gate; {NOTHING_CHANGED}",
        )
    if error_class in PREFLIGHT_CLASSES:
        return Verdict(
            EXIT_PREFLIGHT,
            True,
            "start or fix what it names (the local stack: `deploy-assets stack up`), "
            f"then run the release again; {NOTHING_CHANGED}",
        )
    if error_class in REFUSED_CLASSES:
        return Verdict(
            EXIT_REFUSED, True, f"fix what it names, then run the release again; {NOTHING_CHANGED}"
        )
    return Verdict(EXIT_FAILED, False)


def rollback_verdict(env: str, success: bool, refused: bool) -> Verdict:
    """Exit code and advice for a finished rollback run of `env`."""
    if success:
        return Verdict(EXIT_OK, False)
    if refused:
        return Verdict(
            EXIT_REFUSED,
            True,
            f"`deploy-assets status` shows what {env} runs and ran; "
            f"`deploy-assets rollback {env} --to VERSION` names another target; "
            f"the GitOps repo was not changed",
        )
    return Verdict(EXIT_FAILED, False)
