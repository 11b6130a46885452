"""Release + pipeline config + the monorepo's files → what a release does. Pure code, no I/O.

The services come from the monorepo's files here (discover_services); what each env does with
them is the release matrix's (matrix.py), which the CLI's plan, the jobs, the sensor and the
assets all read, so what `deploy-assets plan` promises is what the run does. The promotion gate
lives in records/promotion_gate.py and is re-exported here.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from deploy_assets.assets.release_record import RECORD_NAMES
from deploy_assets.config import (
    KINDS,
    MAX_NAME,
    SAFE_NAME,
    KindLayout,
    PipelineConfig,
    Settings,
    SourceLayout,
)
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import job_name  # noqa: F401 (re-exported)
from deploy_assets.records.promotion_gate import (  # noqa: F401 (re-exported)
    PromotionGate,
    StagingRecord,
    promotion_gate,
)
from deploy_assets.resources.gitops_targets import describe_targets
from deploy_assets.tags import Release

# Go names a main's binary after its directory, skipping a major-version element (cmd/x/v2 -> x).
_VERSION_ELEMENT = re.compile(r"v(?:[2-9]|[1-9][0-9]+)")


class PlanError(ValueError):
    """The monorepo or config cannot be released as is; the message names the offender."""


@dataclass(frozen=True)
class Service:
    # The kind's name_template applied to the directory: binary, image, S3 and GitOps name.
    name: str
    kind: str
    path: str  # relative to the Go module root, e.g. cmd/ms/ms_core

    def binary_path(self, platform: str) -> str:
        return f"bin_{platform}/{self.kind}/{self.name}"

    def s3_object_name(self, platform: str, primary: str) -> str:
        """The old layout (`{version}/{name}`) for the primary platform; others get a suffix."""
        return self.name if platform == primary else f"{self.name}_{platform}"

    @property
    def build_output(self) -> str:
        """The file `go build -o DIR/` writes for this main. It follows the directory, not the
        service name: with a name template (`ms_{dir}`) `cmd/auth` is built as `auth`."""
        parts = PurePosixPath(self.path).parts
        return parts[-2] if len(parts) > 1 and _VERSION_ELEMENT.fullmatch(parts[-1]) else parts[-1]


def _matches(path: str, glob: str) -> bool:
    parts, pattern = PurePosixPath(path).parts, PurePosixPath(glob).parts
    return len(parts) == len(pattern) and all(
        fnmatch.fnmatchcase(p, g) for p, g in zip(parts, pattern)
    )


def _go_dirs(files: Iterable[str], module_root: str) -> set[str]:
    """Directories (relative to the module) holding non-test .go files."""
    root = PurePosixPath(module_root)
    dirs: set[str] = set()
    for file in files:
        path = PurePosixPath(file)
        if path.suffix != ".go" or path.name.endswith("_test.go"):
            continue
        try:
            dirs.add(str(path.parent.relative_to(root)) if str(root) != "." else str(path.parent))
        except ValueError:
            continue
    return dirs


def _kind_dirs(kind: str, layout: KindLayout, dirs: set[str]) -> list[str]:
    """The kind's include minus its exclude. Excluding everything that was found is a mistake
    (a too broad exclude), not an empty kind: a kind whose include finds nothing stays allowed."""
    included = sorted(d for d in dirs if any(_matches(d, g) for g in layout.include))
    kept = [d for d in included if not any(_matches(d, g) for g in layout.exclude)]
    if included and not kept:
        raise PlanError(
            f"kind {kind}: exclude {list(layout.exclude)} removes every directory its include "
            f"{list(layout.include)} matches ({', '.join(included)}), leaving no {kind} services; "
            "narrow the exclude or remove the kind"
        )
    return kept


def _service(kind: str, layout: KindLayout, directory: str) -> Service:
    name = layout.service_name(directory)
    if not SAFE_NAME.fullmatch(name) or len(name) > MAX_NAME:
        made = (
            "" if layout.name_template == "{dir}" else f" (name_template {layout.name_template!r})"
        )
        raise PlanError(
            f"service directory {directory!r}: name {name!r}{made} is not a safe image/binary name "
            f"(lowercase letters, digits and single . _ - between them, at most {MAX_NAME})"
        )
    return Service(name=name, kind=kind, path=directory)


def discover_services(
    files: Iterable[str], source: SourceLayout, platforms: Sequence[str] | None = None
) -> list[Service]:
    """Service directories (holding .go files) of each kind's include/exclude, named by its
    template and validated: one directory, one kind; one name, one directory.

    With `platforms` (the config's, primary first) the S3 object names of all platforms are
    checked against each other too; without them only the release record's names are.
    """
    dirs = _go_dirs(files, source.module_root)
    services: list[Service] = []
    owner: dict[str, str] = {}
    for kind, layout in source.kinds.items():
        for directory in _kind_dirs(kind, layout, dirs):
            if directory in owner:
                raise PlanError(
                    f"service directory {directory!r} matches the globs of two kinds, {owner[directory]} "
                    f"and {kind}; exclude it from one of them"
                )
            owner[directory] = kind
            services.append(_service(kind, layout, directory))
    _refuse_clashes(services)
    refuse_object_clashes(services, platforms or ())
    return sorted(services, key=lambda s: (KINDS.index(s.kind), s.name))


def refuse_object_clashes(services: Iterable[Service], platforms: Sequence[str]) -> None:
    """One S3 key, one object: binaries sit next to the release record in `{version}/`.

    A service named like a record object (routes.json, manifest.json, checksums.txt) would be
    overwritten by the record or overwrite it (and `routes_json` would be the record's asset); with two platforms `x`'s amd64 object is
    `x_amd64`, the very key of a service named `x_amd64`. Either is refused before anything is
    built, naming both sides, because the release would otherwise fail half-way (or worse, one
    object would silently stand for two).
    """
    reserved = {_asset_name(n): n for n in RECORD_NAMES}
    for service in services:
        record = reserved.get(_asset_name(service.name))
        if record is not None:
            clash = (
                "the S3 key"
                if service.name == record
                else "the asset key s3/" + _asset_name(record)
            )
            raise PlanError(
                f"service directory {service.path!r} has the reserved name {service.name!r}: it would "
                f"take {clash} of the release record's {record} ({', '.join(RECORD_NAMES)} and "
                "their spellings with _ or - are reserved); rename the directory or change "
                "its kind's name_template"
            )
    if not platforms:
        return
    owners: dict[str, str] = {}
    for service in sorted(services, key=lambda s: s.path):
        for platform in platforms:
            name = service.s3_object_name(platform, platforms[0])
            mine = f"{service.path} ({platform})"
            if name in owners:
                raise PlanError(
                    f"services {owners[name]} and {mine} would both be stored as S3 object {name!r} "
                    f"(platforms {', '.join(platforms)}: the ones after the first get a _<platform> "
                    "suffix); rename one directory or change a name_template"
                )
            owners[name] = mine


def _asset_name(name: str) -> str:
    """How an asset key spells a service name (history.asset_key_for)."""
    return name.replace("-", "_").replace(".", "_")


def _refuse_clashes(services: list[Service]) -> None:
    """One name, one service: binaries share one output folder and assets are keyed by name.

    Asset keys spell '-' and '.' as '_', so `ms-core` and `ms_core` would be one asset too.
    """
    by_key: dict[str, Service] = {}
    for service in services:
        key = _asset_name(service.name)
        other = by_key.get(key)
        if other is None:
            by_key[key] = service
        elif other.path == service.path:
            raise PlanError(
                f"service directory {service.path!r} matches the globs of two kinds, "
                f"{other.kind} and {service.kind}"
            )
        elif other.name == service.name:
            raise PlanError(
                f"two services are named {service.name!r}: {other.path} and {service.path}"
            )
        else:
            raise PlanError(
                f"services {other.name!r} ({other.path}) and {service.name!r} ({service.path}) "
                f"would share the asset name {key!r}; rename one"
            )
    built_as: dict[str, Service] = {}
    for service in services:  # one `go build -o DIR/` writes each main as DIR/<its directory>
        other = built_as.setdefault(service.build_output, service)
        if other is not service:
            raise PlanError(
                f"services {other.name!r} ({other.path}) and {service.name!r} ({service.path}) would "
                f"both be written by go build as {service.build_output!r} (it names a binary after its "
                "directory); rename one directory"
            )


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
    s3_keys: dict[str, str]  # S3 object name (service, `_<platform>` for extra platforms) -> key
    gitops_repo: str
    gitops_projects: list[str]
    updates_routes: bool
    api_gateway_repo: str | None
    gate: PromotionGate
    job: str = field(default="")
    gitops_targets: list[dict] = field(default_factory=list)  # name, repo, files of each target

    def to_json(self) -> dict:
        data = asdict(self)
        data["gate"] = asdict(self.gate)
        return data


def build_plan(
    release: Release,
    commit: str,
    commit_source: str,
    services: list[Service],
    config: PipelineConfig,
    settings: Settings,
    staging: Iterable[StagingRecord],
) -> ReleasePlan:
    """What a release does, as its run does it: the matrix's answer for its env, the env's
    GitOps targets and the promotion gate."""
    env = ReleaseMatrix.of(config, services).env(release.env)
    rule = config.envs[release.env]
    deployed = [s.name for s in env.deployed]
    return ReleasePlan(
        tag=release.tag,
        version=release.tag,
        env=release.env,
        commit=commit,
        commit_source=commit_source,
        services=[s.name for s in env.built],
        binaries=[s.binary_path(p) for s, p in env.builds],
        images=env.image_refs(settings.registry, release.tag),  # a kind without a template: none
        s3_keys=env.s3_keys(settings.s3_path, release.tag),
        gitops_repo=" ".join(rule.gitops_repos),
        gitops_projects=deployed,
        updates_routes=env.updates_routes,
        api_gateway_repo=rule.api_gateway_repo,
        gate=promotion_gate(release, commit, config, settings, staging),
        job=env.job,
        gitops_targets=describe_targets(rule.targets, release.env, deployed, release.tag),
    )
