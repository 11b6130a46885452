"""The binaries step's decisions, as plain functions the asset wires to go, the caches and S3.

For each service and platform: build it (its content key has no bytes anywhere), take it from
the worker's cache or the bucket's build cache (build_store decides and refuses corrupt entries),
name the earlier release that built those bytes, or prebuild it for the promotion only (the
services prod builds and staging does not ship). A selected service the tag does not contain is
refused before anything is built. What the step logs and records (`build_<platform>`, ...) comes
from here too, so a unit test reads the same words a release prints.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy_assets.assets.build_store import BUILT, ORIGINS, Recorded
from deploy_assets.assets.workspace import BuiltBinary
from deploy_assets.config import PipelineConfig
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.plan import Service
from deploy_assets.resources.go import GoBuildError


@dataclass(frozen=True)
class BinaryDecision:
    """Where one service's bytes for one platform come from, in this run."""

    origin: str  # BUILT, LOCAL or BUCKET: the metadata's build_<platform>
    reused_from: str | None  # the earlier release recorded with this content key, if not built now
    prebuild: bool = False  # for the promotion only: not materialized; its failure is a warning

    @property
    def build(self) -> bool:
        return self.origin == BUILT


def decide(origin: str, previous_partition: str | None, prebuild: bool = False) -> BinaryDecision:
    """A binary built now reuses nothing; one found by its key names the release recorded with
    it (none for a prebuild, which is not materialized, nor when no release recorded the key)."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown binary origin {origin!r}; expected one of {ORIGINS}")
    reused = None if origin == BUILT or prebuild else previous_partition
    return BinaryDecision(origin, reused, prebuild)


def refuse_missing(selected: list[str], present: set[str], tag: str, commit: str) -> None:
    """Refuse, before anything is built, services the tag's commit does not contain."""
    missing = [name for name in selected if name not in present]
    if missing:
        raise RuntimeError(f"services {missing} are not in {tag} ({commit[:12]})")


def promotion_prebuilds(env: str, services: list[Service], config: PipelineConfig) -> list[Service]:
    """At the env prod promotes from: the services prod builds and this env does not (the
    release matrix's prebuilds; none at any other env)."""
    return list(ReleaseMatrix.of(config, services).env(env).prebuilds)


def recorded(metadata: dict | None, partition: str, platform: str) -> Recorded | None:
    """What the instance recorded for a content key's bytes (an earlier release built them)."""
    if metadata is None or not metadata.get(f"sha256_{platform}"):
        return None
    return Recorded(
        str(metadata[f"sha256_{platform}"]),
        int(metadata[f"size_{platform}"]),
        str(metadata.get(f"built_in_{platform}") or partition),
    )


def explain_build_failure(
    exc: GoBuildError, mains: dict[str, Service], deps: dict[str, set[str]]
) -> str:
    """Name the services whose build failed, and the cause, from go's per-package output."""
    lines = []
    for package, output in exc.by_package.items():
        if package in mains:
            service = mains[package]
            lines.append(f"{service.name} ({service.path}): {output}")
        else:
            users = sorted(mains[m].name for m, d in deps.items() if package in d)
            lines.append(f"{package} (used by {', '.join(users) or 'unknown'}): {output}")
    return "go build failed for " + "\n".join(lines)


def summary_line(platform: str, decisions: dict[str, BinaryDecision]) -> str:
    """'amd64: 3 binaries: 1 built, 2 local cache, 0 bucket cache; building [...]'."""
    stale = [name for name, d in decisions.items() if d.build]
    counts = ", ".join(
        f"{sum(1 for d in decisions.values() if d.origin == how)} {how}" for how in ORIGINS
    )
    return f"{platform}: {len(decisions)} binaries: {counts}" + (
        f"; building {stale}" if stale else ""
    )


def binary_line(
    n: int, of: int, built: BuiltBinary, decision: BinaryDecision, built_in: str
) -> str:
    """The step's line for one binary: 'binaries 2/3 amd64 ms_core: <size> bytes sha256 ... how'."""
    how = (
        "built"
        if decision.build
        else f"reused from {decision.reused_from}"
        if decision.reused_from
        else f"cached (built in {built_in or 'an earlier run'})"
    )
    return (
        f"binaries {n}/{of} {built.platform} {built.service}: {built.size} bytes sha256 "
        f"{built.sha256[:16]} {how} ({decision.origin})"
    )


def binary_metadata(
    service: Service,
    source: dict,
    builds: list[BuiltBinary],
    origins: dict[str, str],
    built_in: dict[str, str],
) -> dict:
    """A binary asset's metadata: per platform its bytes, content key, the release that built
    them and where this run found them (origins and built_in by platform)."""
    metadata: dict = {
        "commit": source["commit"],
        "toolchain": source["toolchain"],
        "kind": service.kind,
    }
    for b in builds:
        metadata.update(
            {
                f"sha256_{b.platform}": b.sha256,
                f"size_{b.platform}": b.size,
                f"path_{b.platform}": b.path,
                f"content_key_{b.platform}": b.content_key,
                f"built_in_{b.platform}": built_in.get(b.platform, ""),
                f"build_{b.platform}": origins[b.platform],
            }
        )
    reused = [b.reused_from for b in builds if b.reused_from]
    metadata["reused_from"] = reused[0] if reused else ""
    return metadata
