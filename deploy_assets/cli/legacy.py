"""`deploy-assets legacy <target>`: the old Makefile's targets, on the pipeline's own code.

Teams keep typing `make build-pipeline-ms` or `make push-ms-dockers ECR_REGISTRY=...` against a
working tree. Each target here is a thin composition of what a release runs: service discovery
and validation from the plan and source asset, the route parser of the routes asset, one batched
`go build` per platform through GoResource, and the image build/push of DockerResource. So a
binary built by `make build-pipeline-ms` is byte for byte what the pipeline builds from the same
tree, and a fix in one place fixes both. Dagster-heavy modules are imported inside the targets:
`register` runs on every `deploy-assets` call and must stay quick.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.config import ConfigError, PipelineConfig, Settings, load_pipeline_config
from deploy_assets.plan import PlanError, Service, discover_services

BUILD_TARGETS = {
    "build-pipeline-ms": ("ms",),
    "build-pipeline-lambdas": ("lambdas",),
    "build-pipeline": ("ms", "lambdas", "cli"),
}
PUSH_TARGETS = {"push-ms-dockers": "ms", "push-cli-dockers": "cli"}
NAME_TARGETS = {"get-ms-names": "ms", "get-cli-names": "cli"}
# Docker's own tag grammar; `git describe` output such as v1.2.0-3-gabc1234 fits it.
_DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Tree:
    """A working tree of the monorepo and the pipeline config that describes it."""

    root: Path
    config: PipelineConfig

    @property
    def module_dir(self) -> Path:
        return self.root / self.config.source.module_root

    def services(self, kinds: tuple[str, ...] | None = None) -> list[Service]:
        """The services a release of this tree would have (same globs, names and checks)."""
        if not (self.module_dir / "go.mod").is_file():
            raise PlanError(
                f"{self.module_dir} has no go.mod (source.module_root is "
                f"{self.config.source.module_root!r}); point --source at the monorepo"
            )
        files = sorted(
            {
                path.relative_to(self.root).as_posix()
                for layout in self.config.source.kinds.values()
                for pattern in layout.include
                for path in self.module_dir.glob(f"{pattern}/*.go")
            }
        )
        found = discover_services(files, self.config.source, self.config.platforms)
        return [s for s in found if kinds is None or s.kind in kinds]


def _tree(args) -> Tree:
    root = Path(args.source).resolve()
    if not root.is_dir():
        raise ConfigError(f"--source {args.source}: no such directory")
    return Tree(root, load_pipeline_config(args.config))


def _go(tree: Tree):
    from deploy_assets.resources.go import GoResource

    # The pipeline's cache folder: a legacy build warms the cache a release then uses, and back.
    return GoResource(
        cache_dir=str(Settings.from_env().cache_dir), vendored=tree.config.source.vendored
    )


def build(
    tree: Tree, kinds: tuple[str, ...], go, platforms: list[str] | None = None
) -> list[tuple[Service, str, Path]]:
    """bin_{platform}/{kind}/{name} for every service of kinds: one `go build` per platform."""
    from deploy_assets.assets.binaries import _explain_build_failure
    from deploy_assets.assets.source_checks import validate_mains
    from deploy_assets.resources.go import GoBuildError

    services = tree.services(kinds)
    if not services:
        raise PlanError(
            f"no {'/'.join(kinds)} services under {tree.module_dir} (include "
            f"{[list(tree.config.source.kinds[k].include) for k in kinds if k in tree.config.source.kinds]})"
        )
    built = []
    for platform in platforms or tree.config.platforms:
        validate_mains(go, tree.module_dir, services, platform, tree.config.build_flags)
        with tempfile.TemporaryDirectory(prefix="legacy-build-") as out:
            try:
                go.build(
                    tree.module_dir,
                    [f"./{s.path}" for s in services],
                    Path(out),
                    platform,
                    tree.config.build_flags,
                )
            except GoBuildError as exc:
                packages = go.list_packages(
                    tree.module_dir,
                    [f"./{s.path}" for s in services],
                    platform,
                    tree.config.build_flags,
                )
                by_dir = {Path(p.dir).resolve(): p for p in packages.values()}
                mains = {
                    by_dir[(tree.module_dir / s.path).resolve()].import_path: s for s in services
                }
                deps = {ip: set(packages[ip].deps) for ip in mains}
                raise RuntimeError(_explain_build_failure(exc, mains, deps)) from None
            for service in services:
                dest = tree.root / service.binary_path(platform)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(Path(out) / service.build_output), dest)
                built.append((service, platform, dest))
    return built


def cmd_parse_ms_routes(args) -> int:
    from deploy_assets.assets.routes import parse_routes

    tree = _tree(args)
    table = [
        {"service": s.name, **route}
        for s in tree.services(("ms",))
        for route in parse_routes(tree.module_dir / s.path)
    ]
    output = Path(args.output) if args.output else tree.root / "routes.json"
    output.write_text(json.dumps(table, indent=2) + "\n")
    print(f"{output}: {len(table)} routes of {len({r['service'] for r in table})} microservices")
    return 0


def cmd_names(args) -> int:
    print(" ".join(s.name for s in _tree(args).services((NAME_TARGETS[args.target],))))
    return 0


def cmd_build(args) -> int:
    tree = _tree(args)
    for service, platform, path in build(tree, BUILD_TARGETS[args.target], _go(tree)):
        print(f"built {path.relative_to(tree.root)} ({service.path}, linux/{platform})")
    return 0


def _version(args, tree: Tree) -> str:
    from deploy_assets.resources.git import GitError, run_git

    if args.version:
        version = args.version
    else:
        try:
            version = run_git(["describe", "--tags"], cwd=tree.root).decode().strip()
        except GitError as exc:
            raise ConfigError(
                f"no --version given and `git describe --tags` in {tree.root} failed: {exc}"
            ) from None
    if not _DOCKER_TAG.fullmatch(version):
        raise ConfigError(f"version {version!r} is not a valid image tag")
    return version


def cmd_push(args) -> int:
    from deploy_assets.resources.docker import DockerResource
    from deploy_assets.resources.registry import RegistryResource

    if not args.registry:
        raise ConfigError("--registry is required (make push-ms-dockers ECR_REGISTRY=<host>)")
    tree = _tree(args)
    kind = PUSH_TARGETS[args.target]
    dockerfile = tree.config.source.kinds[kind].dockerfile_path
    if dockerfile is None:
        raise ConfigError(f"source.kinds.{kind} has no dockerfile in the pipeline config")
    version = _version(args, tree)
    registry = RegistryResource(host=args.registry)
    docker = DockerResource(builder=tree.config.image_builder)
    docker.ping()
    services = tree.services((kind,))
    for service in services:  # every refusal before the first push: nothing half-pushed
        registry.ensure_repository(service.name)
        if registry.manifest_digest(service.name, version):
            raise ConfigError(
                f"{registry.ref(service.name, version)} already exists: tags are immutable, "
                "pass another --version"
            )
    platform = tree.config.platforms[0]  # the image platform, as in the images asset
    revision = _revision(tree.root)
    # Always built from this tree: an image never carries a binary left over from another checkout.
    for service, _, binary in build(tree, (kind,), _go(tree), [platform]):
        ref = registry.ref(service.name, version)
        docker.build_image(
            binary,
            dockerfile,
            platform,
            ref,
            labels={
                "org.opencontainers.image.revision": revision,
                "org.opencontainers.image.title": service.name,
            },
        )
        # ECR: a token from get_authorization_token; elsewhere docker's own login.
        digest = docker.push(
            f"{args.registry}/{service.name}", version, auth_config=registry.docker_auth()
        )
        print(f"pushed {ref}@{digest}")
    return 0


def _revision(root: Path) -> str:
    from deploy_assets.resources.git import GitError, run_git

    try:
        return run_git(["rev-parse", "HEAD"], cwd=root).decode().strip()
    except GitError:
        return ""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `legacy` and its targets to the `deploy-assets` parser."""
    legacy = subparsers.add_parser(
        "legacy",
        help="the old Makefile targets (parse-ms-routes, build-pipeline, ...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    targets = legacy.add_subparsers(dest="target", required=True)

    def target(name: str, help_text: str, func) -> argparse.ArgumentParser:
        parser = targets.add_parser(name, help=help_text)
        parser.add_argument(
            "--source", default=".", help="the monorepo working tree (default: current directory)"
        )
        parser.add_argument(
            "--config",
            help="pipeline config; default DEPLOY_ASSETS_CONFIG or misc/configs/pipeline.yaml",
        )
        parser.set_defaults(func=func)
        return parser

    target(
        "parse-ms-routes",
        "write routes.json (every @Router annotation of every microservice)",
        cmd_parse_ms_routes,
    ).add_argument("--output", help="default: SOURCE/routes.json")
    for name, kind in NAME_TARGETS.items():
        target(name, f"print the {kind} service names, space-separated", cmd_names)
    for name, kinds in BUILD_TARGETS.items():
        target(name, f"build {', '.join(kinds)} into bin_<platform>/<kind>/", cmd_build)
    for name, kind in PUSH_TARGETS.items():
        parser = target(name, f"build and push {kind} images REGISTRY/<name>:<version>", cmd_push)
        parser.add_argument("--registry", required=True, help="registry host, e.g. $ECR_REGISTRY")
        parser.add_argument("--version", help="image tag; default `git describe --tags` of SOURCE")
