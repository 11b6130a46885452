"""Preflight: ask every system a release will touch whether it answers, before touching any.

A release that finds the Docker engine missing after it uploaded the binaries, or the registry
gone after it bumped nothing yet but pushed half the images, leaves a half-deployed state for
someone to clean up. Asking first costs a second and leaves nothing: so the first step of a
release calls `check` with the resources its env needs, and fails with one message that names
every system that did not answer and where it was expected.

Only reads: `go env GOVERSION`, the engine's /_ping, the registry's /v2/, S3 HeadBucket and
`git ls-remote` of the GitOps repos. The systems are asked in parallel, so the slowest one (with
its bounded retries) sets the time, not the sum.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.git import GitError
from deploy_assets.resources.gitops import GitOpsError, GitOpsResource
from deploy_assets.resources.gitops_targets import plan_targets
from deploy_assets.resources.go import GoError, GoResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource


class PreflightError(RuntimeError):
    """One or more systems did not answer; `problems` has one line per system."""

    def __init__(self, problems: list[str], unreachable: bool = True):
        self.problems = problems
        self.unreachable = (
            unreachable  # False: the system answered, its content refuses the release
        )
        super().__init__("preflight failed, nothing was changed: " + "; ".join(problems))


def _go(go: GoResource, expected_version: str | None) -> str:
    try:
        version = go.version()
    except GoError:
        raise  # already names the binary it looked for
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = (
            exc.stderr.strip()
            if isinstance(exc, subprocess.CalledProcessError) and exc.stderr
            else exc
        )
        raise RuntimeError(
            f"Go toolchain {go.go_binary or 'from the venv/PATH'!r} does not run: {detail}"
        ) from None
    if expected_version and not (
        version == f"go{expected_version}" or version.startswith(f"go{expected_version}.")
    ):
        raise RuntimeError(
            f"Go toolchain is {version}, the pipeline config asks for go{expected_version}"
        )
    return version


def _docker(docker: DockerResource) -> str:
    return f"engine {docker.ping()} at {docker.endpoint}"


def _registry(registry: RegistryResource) -> str:
    registry.ping()
    return f"registry {registry.host} answers /v2/"


def _s3(s3: S3Resource) -> str:
    s3.check_bucket()
    return f"bucket s3://{s3.bucket} answers at {s3.endpoint_url or 'AWS S3 ' + s3.region}"


def _gitops(gitops: GitOpsResource, repo: str) -> str:
    try:
        head = gitops.head(repo)
    except GitError as exc:
        raise RuntimeError(f"GitOps repo {gitops.url(repo)} does not answer: {exc}") from None
    if not head:
        raise RuntimeError(f"GitOps repo {gitops.url(repo)} has no branch {gitops.branch}")
    return f"GitOps repo {gitops.url(repo)} at {head[:12]}"


def check(
    go: GoResource | None = None,
    docker: DockerResource | None = None,
    registry: RegistryResource | None = None,
    s3: S3Resource | None = None,
    gitops: GitOpsResource | None = None,
    gitops_repos: Sequence[str] = (),
    go_version: str | None = None,
) -> dict[str, str]:
    """Probe each given system; return what each said, or raise PreflightError naming every failure.

    Pass only what the release needs (no docker/registry for an env without images; the env's
    GitOps repo, and prod's Terraform repo, only in git mode).
    """
    probes: dict[str, Callable[[], str]] = {}
    if go is not None:
        probes["go"] = lambda: _go(go, go_version)
    if docker is not None:
        probes["docker"] = lambda: _docker(docker)
    if registry is not None:
        probes["registry"] = lambda: _registry(registry)
    if s3 is not None:
        probes["s3"] = lambda: _s3(s3)
    for repo in gitops_repos if gitops is not None else ():
        probes[f"gitops {repo}"] = lambda repo=repo: _gitops(gitops, repo)
    if not probes:
        return {}
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = {name: pool.submit(probe) for name, probe in probes.items()}
    answers, problems = {}, []
    for name, future in futures.items():
        try:
            answers[name] = future.result()
        except Exception as exc:  # every failure is reported, each in its system's own words
            problems.append(f"{name}: {exc}")
    if problems:
        raise PreflightError(problems)
    return answers


def check_env_repos(
    gitops: GitOpsResource, config, env: str, tag: str, services, registry: str
) -> None:
    """In git mode, every GitOps target's repo of the env (and prod's Terraform repo) answers,
    and the targets' files take this release's bump (each project has an entry to update, each
    mapped project is one the release deploys): refused here, naming repo, file and project,
    before anything is built or published."""
    rule = config.envs[env]
    if rule.gitops_mode != "git":
        return
    check(
        gitops=gitops,
        gitops_repos=rule.gitops_repos + ([rule.api_gateway_repo] if rule.api_gateway_repo else []),
    )
    projects = [s.name for s in ReleaseMatrix.of(config, services).env(env).deployed]
    if not projects and not any(t.projects for t in rule.targets):
        return
    try:
        plan_targets(
            rule.targets,
            env,
            {p: f"{registry}/{p}" for p in projects},
            tag,
            gitops.read_files,
            url=gitops.url,
        )
    except (GitOpsError, GitError) as exc:
        raise PreflightError(
            [f"the GitOps bump of {tag} cannot be made: {exc}"], unreachable=False
        ) from None
