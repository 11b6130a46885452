"""What each env runs now, read from its GitOps repo (not from our records), and since when.

The repo is the truth of what is deployed; its history says how it got there: every bump and
every rollback commit carries trailers (Release-Tag, Dagster-Run, Rollback-From, ...) that tie
a version to the run that set it. The same history gives rollback its default target.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass

import dagster as dg

from deploy_assets.checks.gitops import versions_by_target
from deploy_assets.config import PipelineConfig
from deploy_assets.names import GITOPS_KEY
from deploy_assets.records.history import materializations
from deploy_assets.resources.git import GitError
from deploy_assets.resources.gitops import GitOpsError, GitOpsResource
from deploy_assets.resources.gitops_targets import combined

HISTORY_DEPTH = 500
_SUBJECT = re.compile(r"^(?:deploy|rollback)\([\w-]+\): (?P<projects>.+) -> \S+(?: \(from \S+\))?$")
_TRAILER = re.compile(r"^(?P<key>[A-Z][A-Za-z-]*): (?P<value>.+)$")


@dataclass(frozen=True)
class Deployment:
    """One commit of an env repo that set a version (a release's bump or a rollback)."""

    commit: str
    date: str
    tag: str
    run_id: str
    source_commit: str
    projects: tuple[str, ...]
    rollback_from: str = ""
    rolled_back_by: str = ""


def trailers(block: str) -> dict[str, str]:
    """Key -> value of a commit's trailer block as git parsed it (`GitOpsResource.log`: lines
    separated by \\x1d). The first occurrence of a key wins: we write Release-Tag first, so a
    value that slipped a second `Release-Tag:` line in later cannot override it."""
    found: dict[str, str] = {}
    for line in block.split("\x1d"):
        match = _TRAILER.match(line.strip())
        if match and match["key"] not in found:
            found[match["key"]] = match["value"].strip()
    return found


def env_history(gitops: GitOpsResource, repo: str) -> list[Deployment]:
    """Deployments recorded in the repo, oldest first (commits without a Release-Tag are skipped)."""
    out = []
    for entry in reversed(gitops.log(repo, limit=HISTORY_DEPTH)):
        found = trailers(entry.get("trailers", ""))
        if "Release-Tag" not in found:
            continue
        subject = _SUBJECT.match(entry["subject"])
        out.append(
            Deployment(
                commit=entry["sha"],
                date=entry["date"],
                tag=found["Release-Tag"],
                run_id=found.get("Dagster-Run", ""),
                source_commit=found.get("Source-Commit", ""),
                projects=tuple(subject["projects"].split()) if subject else (),
                rollback_from=found.get("Rollback-From", ""),
                rolled_back_by=found.get("Rollback-By", ""),
            )
        )
    return out


def version_stack(history: list[Deployment]) -> list[str]:
    """Versions the env ran, as a stack: a release pushes, a rollback pops back to its target.

    So 'the previous version' after v1, v2, v3 is v2; after rolling back to v2 it is v1, not v3.
    """
    stack: list[str] = []
    for deployment in history:
        if deployment.rollback_from:
            while stack and stack[-1] != deployment.tag:
                stack.pop()
            if not stack:
                stack.append(deployment.tag)
        elif not stack or stack[-1] != deployment.tag:
            stack.append(deployment.tag)
    return stack


def env_projects(instance: dg.DagsterInstance, env: str) -> list[str]:
    """Our projects in the env's repos: those our release records bumped. The repos are shared
    with apps this monorepo does not release, so a name in their history alone is not ours."""
    names: set[str] = set()
    for bump in materializations(instance, GITOPS_KEY):
        if bump.partition.startswith(f"{env}|"):
            names.update(bump.metadata.get("projects") or [])
    return sorted(names)


def ours(history: list[Deployment], projects: list[str]) -> list[Deployment]:
    """The deployments that moved one of our projects. Another source's bump of a shared repo
    (its own apps in its subject) is neither taken for ours by status nor a version that
    rollback's default target returns to."""
    wanted = set(projects)
    return [d for d in history if wanted & set(d.projects)]


def env_view(
    instance: dg.DagsterInstance, gitops: GitOpsResource, config: PipelineConfig, env: str
) -> tuple[list[str], list[Deployment], dict[str, dict[str, str | None]]]:
    """(our projects, our deployments oldest first, target -> project -> version now). History
    is read from the env's first target: every bump and rollback commits to each repo alike."""
    projects = env_projects(instance, env)
    history = ours(env_history(gitops, config.envs[env].targets[0].repo), projects)
    return projects, history, versions_by_target(gitops, config, env, projects) if projects else {}


def majority(versions: dict[str, str | None]) -> str | None:
    counted = Counter(v for v in versions.values() if v)
    return counted.most_common(1)[0][0] if counted else None


def status(instance: dg.DagsterInstance, gitops: GitOpsResource, config: PipelineConfig) -> dict:
    """env -> {repo, projects: {project -> version, since, commit, run_id, via}} (or an error)."""
    result = {}
    for env, rule in config.envs.items():
        repo = " ".join(rule.gitops_repos)
        try:
            _, history, per_target = env_view(instance, gitops, config, env)
        except (GitError, GitOpsError) as exc:
            result[env] = {
                "repo": repo,
                "error": f"cannot read {' '.join(map(gitops.url, rule.gitops_repos))}: {exc}",
                "projects": {},
            }
            continue
        versions = combined(per_target)
        rows = {}
        for project, version in versions.items():
            setter = next(
                (
                    d
                    for d in reversed(history)
                    if d.tag == version and (not d.projects or project in d.projects)
                ),
                None,
            )
            rows[project] = {
                "version": version,
                **(
                    {
                        "since": setter.date,
                        "commit": setter.commit,
                        "run_id": setter.run_id,
                        "via": f"rollback from {setter.rollback_from} by {setter.rolled_back_by}"
                        if setter.rollback_from
                        else "release",
                    }
                    if setter
                    else {"since": "", "commit": "", "run_id": "", "via": "not set by a release"}
                ),
            }
        result[env] = {
            "repo": repo,
            "version": majority(versions),
            "projects": rows,
            "history": [asdict(d) for d in history[-5:]],
            **({"targets": per_target} if len(rule.targets) > 1 else {}),
        }
    return result
