"""Release + pipeline config + the monorepo's files → what a release does. Pure code, no I/O.

`deploy-assets plan`, the sensor's job choice and the assets all read the same plan, so what the
CLI promises is what the run does.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Iterable

from deploy_assets.config import KINDS, EnvRule, PipelineConfig, Settings, SourceLayout
from deploy_assets.release import Release

_SAFE_NAME = re.compile(r"[a-z0-9]+(?:[_.-][a-z0-9]+)*", re.ASCII)


class PlanError(ValueError):
    """The monorepo or config cannot be released as is; the message names the offender."""


@dataclass(frozen=True)
class Service:
    name: str
    kind: str
    path: str  # relative to the Go module root, e.g. cmd/ms/ms_core

    def binary_path(self, platform: str) -> str:
        return f"bin_{platform}/{self.kind}/{self.name}"


def _matches(path: str, glob: str) -> bool:
    parts, pattern = PurePosixPath(path).parts, PurePosixPath(glob).parts
    return len(parts) == len(pattern) and all(fnmatch.fnmatchcase(p, g) for p, g in zip(parts, pattern))


def discover_services(files: Iterable[str], source: SourceLayout) -> list[Service]:
    """Service directories (holding .go files) that match a kind's glob, validated."""
    root = PurePosixPath(source.module_root)
    dirs: set[str] = set()
    for file in files:
        path = PurePosixPath(file)
        if path.suffix != ".go" or path.name.endswith("_test.go"):
            continue
        try:
            dirs.add(str(path.parent.relative_to(root)) if str(root) != "." else str(path.parent))
        except ValueError:
            continue
    services: list[Service] = []
    for kind, layout in source.kinds.items():
        for directory in sorted(d for d in dirs if _matches(d, layout.glob)):
            name = PurePosixPath(directory).name
            if not _SAFE_NAME.fullmatch(name) or len(name) > 128:
                raise PlanError(
                    f"service directory {directory!r}: name {name!r} is not a safe image/binary name "
                    "(lowercase letters, digits and single . _ - between them)"
                )
            services.append(Service(name=name, kind=kind, path=directory))
    by_name: dict[str, Service] = {}
    for service in services:
        if service.name in by_name:
            raise PlanError(
                f"two services are named {service.name!r}: {by_name[service.name].path} and {service.path}"
            )
        by_name[service.name] = service
    return sorted(services, key=lambda s: (KINDS.index(s.kind), s.name))


@dataclass(frozen=True)
class StagingRecord:
    """A staging release that succeeded (its GitOps bump materialized)."""

    tag: str
    commit: str


@dataclass(frozen=True)
class PromotionGate:
    passes: bool
    reason: str
    staging_tag: str | None = None


def promotion_gate(release: Release, commit: str, config: PipelineConfig, settings: Settings,
                   staging: Iterable[StagingRecord]) -> PromotionGate:
    """Never prod without staging: X.Y.Z needs a successful vX.Y.Z-rc.N (same commit by default)."""
    if not release.is_prod:
        return PromotionGate(True, f"{release.env} releases need no staging validation")
    candidates = [s for s in staging if s.tag.startswith(release.staging_tag_prefix())]
    if config.promotion.same_commit:
        matching = [s for s in candidates if s.commit == commit]
    else:
        matching = candidates
    if matching:
        best = max(matching, key=lambda s: int(s.tag.rsplit(".", 1)[1]))
        return PromotionGate(True, f"staging release {best.tag} validated commit {best.commit[:12]}", best.tag)
    want = f"v{release.base_version}-rc.N" + (f" on commit {commit[:12]}" if config.promotion.same_commit else "")
    seen = ", ".join(f"{s.tag}@{s.commit[:12]}" for s in candidates) or "none"
    if not config.promotion.require_staging or settings.allow_prod_without_staging:
        return PromotionGate(True, f"ALLOWED WITHOUT STAGING by explicit switch: no successful {want} (seen: {seen})")
    return PromotionGate(False, f"no successful staging release {want} (staging releases of {release.base_version}: {seen})")


@dataclass(frozen=True)
class ReleasePlan:
    tag: str
    version: str
    env: str
    commit: str
    commit_source: str  # "tag" or "HEAD (tag does not exist yet)"
    services: list[str]
    binaries: list[str]
    images: dict[str, str]
    s3_keys: dict[str, str]
    gitops_repo: str
    gitops_projects: list[str]
    updates_routes: bool
    api_gateway_repo: str | None
    gate: PromotionGate
    job: str = field(default="")

    def to_json(self) -> dict:
        data = asdict(self)
        data["gate"] = asdict(self.gate)
        return data


def job_name(env: str) -> str:
    return f"release_to_{env}"


def services_for(services: list[Service], kinds: Iterable[str]) -> list[Service]:
    wanted = set(kinds)
    return [s for s in services if s.kind in wanted]


def build_plan(release: Release, commit: str, commit_source: str, services: list[Service],
               config: PipelineConfig, settings: Settings, staging: Iterable[StagingRecord]) -> ReleasePlan:
    rule: EnvRule = config.envs[release.env]
    built = services_for(services, rule.build)
    return ReleasePlan(
        tag=release.tag, version=release.tag, env=release.env, commit=commit, commit_source=commit_source,
        services=[s.name for s in built],
        binaries=[s.binary_path(p) for s in built for p in config.platforms],
        images={s.name: f"{settings.registry}/{s.name}:{release.tag}" for s in services_for(built, rule.images)},
        s3_keys={s.name: f"{settings.s3_path.strip('/')}/{release.tag}/{s.name}"
                 for s in services_for(built, rule.upload)},
        gitops_repo=rule.gitops_repo,
        gitops_projects=[s.name for s in services_for(built, rule.deploy)],
        updates_routes=rule.updates_routes,
        api_gateway_repo=rule.api_gateway_repo,
        gate=promotion_gate(release, commit, config, settings, staging),
        job=job_name(release.env),
    )
