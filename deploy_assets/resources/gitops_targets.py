"""An env's bump over all its GitOps targets: planned as one, written one commit per repo.

The bump must not leave an env half-deployed (prod-eu at the new version, prod-us not), so
every target's files are planned from the repos as they are, and any refusal (a missing file,
no entry for a project, a mapping to a project the release does not have) stops the release
before the first push. Source runs the same planning before anything is built or published
(preflight.check_env_repos), the bump again right before it pushes. The read-back (checks,
status, rollback) reads the same files per target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from deploy_assets.gitops_config import GitOpsTarget
from deploy_assets.resources.gitops_files import layout_path, planned_files, read_version
from deploy_assets.resources.gitops_layouts import GitOpsError

Reader = Callable[[str, list[str]], dict[str, str | None]]  # (repo, paths) -> path -> text


def by_repo(targets: Iterable[GitOpsTarget]) -> dict[str, list[GitOpsTarget]]:
    """repo -> its targets, in config order: the targets of one repo go in one commit."""
    grouped: dict[str, list[GitOpsTarget]] = {}
    for target in targets:
        grouped.setdefault(target.repo, []).append(target)
    return grouped


def label(target: GitOpsTarget, url: str) -> str:
    """How messages name a target: its repo, and its name when it has one of its own."""
    return f"GitOps repo {url}" + ("" if target.name == target.repo else f" (target {target.name})")


def unknown_mappings(targets: Iterable[GitOpsTarget], projects: Iterable[str]) -> list[str]:
    """One line per `projects:` key that is not a project of the release: a typo there would
    otherwise leave the project under its own name, in a file nobody reads."""
    ours = sorted(set(projects))
    return [
        f"gitops target {t.name}: projects maps {name!r}, which is not a project this release "
        f"deploys ({', '.join(ours) or 'none'}); remove it or fix its name"
        for t in targets
        for name in t.projects
        if name not in ours
    ]


def target_paths(
    target: GitOpsTarget, env: str, projects: Iterable[str], version: str = ""
) -> dict[str, str]:
    """project -> the file of the target that holds it."""
    return {p: layout_path(target, p, env, version=version) for p in sorted(projects)}


def describe_targets(
    targets: Iterable[GitOpsTarget], env: str, projects: list[str], version: str
) -> list[dict]:
    """name, repo and files of each target, for `deploy-assets plan` (no repo is read)."""
    return [
        {
            "name": t.name,
            "repo": t.repo,
            "files": sorted(set(target_paths(t, env, projects, version).values())),
        }
        for t in targets
    ]


def plan_targets(
    targets: Iterable[GitOpsTarget],
    env: str,
    images: dict[str, str],
    version: str,
    read: Reader,
    url: Callable[[str], str] = str,
) -> dict[str, dict[str, str]]:
    """target name -> {relpath -> new text} for every target, or one GitOpsError naming every
    repo, file and project that cannot take the bump (nothing is written here)."""
    targets = list(targets)
    problems = unknown_mappings(targets, images)
    planned: dict[str, dict[str, str]] = {}
    for repo, group in by_repo(targets).items() if not problems else ():
        paths = sorted({p for t in group for p in target_paths(t, env, images, version).values()})
        files = read(repo, paths)
        for target in group:
            try:
                planned[target.name] = planned_files(target, env, images, version, files.get)
            except GitOpsError as exc:
                problems.append(f"{label(target, url(repo))}: {exc}")
    if problems:
        raise GitOpsError("; ".join(problems))
    return planned


def target_versions(
    targets: Iterable[GitOpsTarget], env: str, projects: list[str], read: Reader
) -> dict[str, dict[str, str | None]]:
    """target name -> project -> the version its file sets now (None: no file, no version)."""
    found: dict[str, dict[str, str | None]] = {}
    for repo, group in by_repo(targets).items():
        paths = {t.name: target_paths(t, env, projects) for t in group}
        files = read(repo, sorted({p for per in paths.values() for p in per.values()}))
        for target in group:
            found[target.name] = {
                p: read_version(target, env, p, files[path])
                if files.get(path) is not None
                else None
                for p, path in paths[target.name].items()
            }
    return found


def combined(per_target: dict[str, dict[str, str | None]]) -> dict[str, str | None]:
    """project -> its version across targets: the one version when they agree, else each
    target's as `target=version` joined by ` / ` (never equal to a tag, so a check fails)."""
    projects = sorted({p for versions in per_target.values() for p in versions})
    out: dict[str, str | None] = {}
    for project in projects:
        seen = {name: versions.get(project) for name, versions in per_target.items()}
        values = set(seen.values())
        out[project] = (
            values.pop()
            if len(values) == 1
            else " / ".join(f"{name}={version or 'none'}" for name, version in seen.items())
        )
    return out
