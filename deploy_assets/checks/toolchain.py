"""Checklist: every binary was built by the configured Go toolchain (config.go_version), and by
one that meets go.mod's `go` line where that line is stricter.

The version is read from the binary itself (the build info the Go linker embeds), so a binary
reused from the build cache or from another release is judged by what actually built it, not
by what this run's `go version` says. Blocking: a binary from the wrong toolchain is never
pushed or uploaded.
"""

import re
from pathlib import Path

import dagster as dg

from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.checks.base import (
    check_spec,
    evaluate_concurrently,
    not_recorded,
    recorded,
    release_of,
    result,
)
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.names import TOOLCHAIN_CHECK, binary_key
from deploy_assets.plan import Service
from deploy_assets.resources.s3 import file_sha256

_BUILDINFO_MAGIC = b"\xff Go buildinf:"
_VERSION = re.compile(r"^(?:go)?(\d+)\.(\d+)(?:\.(\d+))?")


def embedded_go_version(binary: bytes) -> str | None:
    """The toolchain recorded in a Go >= 1.18 binary's build info ('go1.24.11'), or None.

    Layout (src/debug/buildinfo): a 32-byte header (magic, pointer size, flags) followed, when
    flag 0x2 is set, by the version as a varint-length-prefixed string.
    """
    start = binary.find(_BUILDINFO_MAGIC)
    if start < 0 or len(binary) < start + 33 or not binary[start + 15] & 0x2:
        return None
    pos, length, shift = start + 32, 0, 0
    while pos < len(binary):
        byte = binary[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    version = binary[pos : pos + length].decode("ascii", errors="replace")
    return version if version.startswith("go") else None


def _parts(version: str) -> tuple[int, ...]:
    match = _VERSION.match(version)
    if not match:
        raise ValueError(f"not a Go version: {version!r}")
    return tuple(int(p) for p in match.groups() if p is not None)


def toolchain_problem(built_with: str, configured: str, go_mod_go: str | None) -> str | None:
    """Why built_with is not acceptable, or None.

    The toolchain must be in the configured line (go_version "1.24" accepts any go1.24.x, "1.24.3"
    only that release). go.mod's `go` line is a minimum: where it is stricter than the configured
    line (a patch release, or a newer line) the toolchain must meet it too.
    """
    have, want = _parts(built_with), _parts(configured)
    if have[: len(want)] != want:
        return f"built with {built_with}, but the pipeline config pins Go {configured}"
    if go_mod_go:
        minimum = _parts(go_mod_go)
        if (minimum + (0,))[:3] > (have + (0,))[:3]:
            return f"built with {built_with}, but go.mod requires go {go_mod_go}"
    return None


def build_toolchain_checks(
    services: list[Service], config: PipelineConfig, settings: Settings
) -> dg.AssetChecksDefinition:
    by_check = {dg.AssetCheckKey(binary_key(s), TOOLCHAIN_CHECK): s for s in services}

    @dg.multi_asset_check(
        name="toolchain_checks",
        can_subset=True,
        specs=[
            check_spec(
                k.asset_key,
                TOOLCHAIN_CHECK,
                f"{s.name} built by Go {config.go_version} (and go.mod's go line)",
                blocking=True,
            )
            for k, s in by_check.items()
        ],
    )
    def toolchain_checks(context: dg.AssetCheckExecutionContext):
        _, _, partition = release_of(context)
        workspace, _ = ReleaseWorkspace.for_context(context, settings.work_dir)
        go_mod_go = workspace.source().get("go_mod_version")
        builds = workspace.builds()

        def evaluate(check_key: dg.AssetCheckKey, service: Service) -> dg.AssetCheckResult:
            binary = recorded(context, check_key.asset_key, partition)
            if binary is None:
                return not_recorded(check_key, partition)
            problems, metadata = [], {"configured": config.go_version, "go_mod_go": go_mod_go or ""}
            for platform in config.platforms:
                path = Path(workspace.out) / builds[(service.name, platform)].path
                if not path.is_file() or file_sha256(path) != binary[f"sha256_{platform}"]:
                    problems.append(f"{path} is not the recorded binary (missing or changed)")
                    continue
                built_with = embedded_go_version(path.read_bytes())
                metadata[f"built_with_{platform}"] = built_with or "unknown"
                problem = (
                    toolchain_problem(built_with, config.go_version, go_mod_go)
                    if built_with
                    else f"{path} carries no Go build info"
                )
                if problem:
                    problems.append(f"{service.name} ({platform}): {problem}")
            return result(
                check_key,
                problems,
                metadata,
                f"{service.name} built with {metadata.get(f'built_with_{config.platforms[0]}')}",
            )

        yield from evaluate_concurrently(context, by_check, evaluate)

    return toolchain_checks
