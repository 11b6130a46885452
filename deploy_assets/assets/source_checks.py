"""The checks `source` runs before a build: each service a main package, each image's Dockerfile
template present, each service known to the code location, each destination answering.

They read the release matrix (matrix.py) for what the env builds, pushes and uploads, so a check
asks about the same services the run then builds; and they raise before any side effect outside
the working folder: a release that cannot push its images must not upload its binaries first.
"""

from __future__ import annotations

from pathlib import Path

from deploy_assets.config import PipelineConfig
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.plan import PlanError, Service
from deploy_assets.resources.docker import DockerEngineError, DockerResource
from deploy_assets.resources.go import GoResource
from deploy_assets.resources.registry import RegistryError, RegistryResource
from deploy_assets.resources.s3 import S3Error, S3Resource

RELOAD_HINT = "reload the code location (UI: Deployment -> Reload)"


class DestinationUnreachable(RuntimeError):
    """A registry, S3 endpoint or Docker engine the release needs does not answer."""


def built_services(config: PipelineConfig, env: str, services: list[Service]) -> list[Service]:
    """What this env builds of the commit's services (a dev release builds no lambdas)."""
    return list(ReleaseMatrix.of(config, services).env(env).built)


def main_problems(services, by_dir: dict, module_dir: Path) -> list[str]:
    """Why each service directory is not a buildable `package main` (go list's packages by
    resolved directory), one line each; empty when all are."""
    problems = []
    for service in services:
        pkg = by_dir.get((module_dir / service.path).resolve())
        where = f"{service.name} ({service.path})"
        if pkg is None:
            problems.append(f"{where}: go list did not find the package")
        elif pkg.error:
            problems.append(f"{where}: {pkg.error}")
        elif pkg.name != "main":
            problems.append(f"{where}: not a main package (package {pkg.name})")
        elif pkg.deps_errors:
            problems.append(f"{where}: {'; '.join(pkg.deps_errors)}")
    return problems


def validate_mains(
    go: GoResource,
    module_dir: Path,
    services,
    platform: str,
    flags: list[str] | tuple[str, ...] = (),
) -> None:
    """Every service directory must be a buildable `package main` with the build's flags (a
    file behind `-tags` counts); say which one is not."""
    packages = go.list_packages(module_dir, [f"./{s.path}" for s in services], platform, flags)
    by_dir = {Path(p.dir).resolve(): p for p in packages.values()}
    problems = main_problems(services, by_dir, module_dir)
    if problems:
        raise PlanError("cannot build: " + "; ".join(problems))


def missing_dockerfiles(config: PipelineConfig, env: str, services: list[Service]) -> list[str]:
    """One line per kind this env images whose Dockerfile template is not on disk, naming the
    file and the services that need it (in the order of the env's `images`)."""
    matrix = ReleaseMatrix.of(config, services)
    images = matrix.env(env).images
    problems = []
    for kind in config.envs[env].images:
        users = [s for s in images if s.kind == kind]
        path = matrix.dockerfile(users[0]) if users else None
        if path is not None and not path.is_file():
            problems.append(
                f"{', '.join(s.name for s in users)}: Dockerfile template {path} "
                f"(source.kinds.{kind}.dockerfile) does not exist"
            )
    return problems


def check_dockerfiles(config: PipelineConfig, env: str, services: list[Service]) -> None:
    """Every image this env pushes needs its kind's template; say which file and which services."""
    problems = missing_dockerfiles(config, env, services)
    if problems:
        raise PlanError("cannot build images: " + "; ".join(problems))


def check_destinations(
    config: PipelineConfig,
    env: str,
    services: list[Service],
    tag: str,
    docker: DockerResource,
    registry: RegistryResource,
    s3: S3Resource,
) -> None:
    """Ask every destination of this env's release whether it answers, before anything is built."""
    release = ReleaseMatrix.of(config, services).env(env)
    pushed = [s.name for s in release.images]
    uploaded = [s.name for s in release.uploads]
    problems = []
    if pushed:
        for check in (docker.ping, registry.ping):
            try:
                check()
            except (DockerEngineError, RegistryError) as exc:
                problems.append(f"images of {', '.join(pushed)} cannot be pushed: {exc}")
    try:
        s3.head(s3.key(tag, "routes.json"))
    except S3Error as exc:
        problems.append(
            f"binaries of {', '.join(uploaded) or 'no service'} and routes.json cannot be "
            f"uploaded: {exc}"
        )
    if problems:
        raise DestinationUnreachable("; ".join(problems))


def unknown_services(
    services: list[Service], known: set[str], env: str, config: PipelineConfig
) -> list[str]:
    """Services this env builds at a commit that the loaded code location has no assets for."""
    return [s.name for s in built_services(config, env, services) if s.name not in known]


def check_known(
    services: list[Service], known: set[str], env: str, config: PipelineConfig, commit: str
) -> None:
    """A service added after the code location loaded has no assets yet: building the others and
    bumping GitOps for all would deploy a project that was never built."""
    unknown = unknown_services(services, known, env, config)
    if unknown:
        raise PlanError(
            f"services {', '.join(unknown)} at {commit[:12]} are not in the loaded code location "
            f"(it knows {', '.join(sorted(known)) or 'none'}): run `deploy-assets refresh` (the tag "
            f"sensor does it when it sees them), then {RELOAD_HINT} and re-run"
        )
