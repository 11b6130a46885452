"""Never prod without staging: the promotion gate over the staging releases that succeeded.

A decision, not a read: records.history turns the instance's runs into StagingRecords, and
both `deploy-assets plan` (plan.build_plan) and the release's source step ask this one
function, so what the plan promises about the gate is what the run decides. Pure code, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import semver

from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.tags import Release, TagRejected, parse_tag


@dataclass(frozen=True)
class StagingRecord:
    """A staging release that succeeded (its GitOps bump materialized).

    `rolled_back` says how staging was later rolled back away from it (empty while it stands):
    an rc that staging no longer runs validated nothing, whatever its bump once recorded.
    """

    tag: str
    commit: str
    rolled_back: str = ""


@dataclass(frozen=True)
class PromotionGate:
    passes: bool
    reason: str
    staging_tag: str | None = None


def promotion_gate(
    release: Release,
    commit: str,
    config: PipelineConfig,
    settings: Settings,
    staging: Iterable[StagingRecord],
) -> PromotionGate:
    """Never prod without staging: X.Y.Z needs a successful vX.Y.Z-rc.N (same commit by default)
    that staging was not rolled back away from; one that was is named, with its rollback.

    The only way around it is an explicit switch, and the reason then says so in capitals and
    names the switch, so the bypass is visible in the run's log and metadata.
    """
    if not release.is_prod:
        return PromotionGate(True, f"{release.env} releases need no staging validation")
    candidates = [(s, _staging_version(s.tag)) for s in staging]
    candidates = [
        (s, v) for s, v in candidates if v is not None and v.finalize_version() == release.version
    ]
    matching = [
        (s, v)
        for s, v in candidates
        if not s.rolled_back and (s.commit == commit or not config.promotion.same_commit)
    ]
    if matching:
        best, _ = max(matching, key=lambda pair: pair[1])
        return PromotionGate(
            True, f"staging release {best.tag} validated commit {best.commit[:12]}", best.tag
        )
    want = f"v{release.base_version}-rc.N" + (
        f" on commit {commit[:12]}" if config.promotion.same_commit else ""
    )
    seen = (
        ", ".join(
            f"{s.tag}@{s.commit[:12]}" + (f" ({s.rolled_back})" if s.rolled_back else "")
            for s, _ in candidates
        )
        or "none"
    )
    switches = []
    if not config.promotion.require_staging:
        switches.append("promotion.require_staging=false")
    if settings.allow_prod_without_staging:
        switches.append("DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING")
    if switches:
        return PromotionGate(
            True,
            f"ALLOWED WITHOUT STAGING by explicit switch {' and '.join(switches)}: "
            f"no successful {want} (seen: {seen})",
        )
    return PromotionGate(
        False,
        f"no successful staging release {want} "
        f"(staging releases of {release.base_version}: {seen})",
    )


def _staging_version(tag: str) -> semver.Version | None:
    """The semver of an rc tag, or None for anything else (records are never trusted blindly)."""
    try:
        parsed = parse_tag(tag)
    except TagRejected:
        return None
    return parsed.version if parsed.env == "staging" else None
