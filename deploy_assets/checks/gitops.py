"""Checklist: "verify GitOps deployment completed" — the env's GitOps repo, read back from the
remote after the push, sets every project of the release to the release's version.

Read back, not trusted: a push that landed on another branch, a layout that wrote the wrong
file or a concurrent commit that reverted ours all show up here. In dispatch mode the repo is
written by the old workflow, so a disagreement is a warning next to its reported conclusion.
"""

import dagster as dg

from deploy_assets.checks.base import check_spec, not_recorded, recorded, release_of, result
from deploy_assets.config import PipelineConfig
from deploy_assets.history import GITOPS_KEY
from deploy_assets.links import gitops_commit_url, url_or_text
from deploy_assets.resources.git import GitError
from deploy_assets.resources.gitops import GitOpsError, GitOpsResource, layout_path, read_version

GITOPS_CHECK = "repo_at_version"


def deployed_versions(gitops: GitOpsResource, config: PipelineConfig, env: str,
                      projects: list[str]) -> dict[str, str | None]:
    """project -> version the env's repo sets now (None: no file or no version in it)."""
    rule = config.envs[env]
    paths = {p: layout_path(rule.gitops, p, env) for p in projects}
    files = gitops.read_files(rule.gitops_repo, list(paths.values()))
    return {p: read_version(rule.gitops, env, p, files[path]) if files[path] is not None else None
            for p, path in paths.items()}


def build_gitops_check(config: PipelineConfig) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name="gitops_checks",
        specs=[check_spec(GITOPS_KEY, GITOPS_CHECK, "the env's GitOps repo sets every project of the "
                          "release to its version (read back from the remote)", blocking=True)],
    )
    def gitops_checks(context: dg.AssetCheckExecutionContext, gitops: GitOpsResource):
        env, tag, partition = release_of(context)
        check_key = dg.AssetCheckKey(GITOPS_KEY, GITOPS_CHECK)
        bump = recorded(context, GITOPS_KEY, partition)
        if bump is None:
            yield not_recorded(check_key, partition)
            return
        repo = config.envs[env].gitops_repo
        try:
            versions = deployed_versions(gitops, config, env, list(bump["projects"]))
        except (GitError, GitOpsError) as exc:
            versions, problems = {}, [f"cannot read back {gitops.url(repo)}: {exc}"]
        else:
            problems = [f"{repo}: {project} is at {found or 'no version'}, not {tag}"
                        for project, found in versions.items() if found != tag]
        severity = dg.AssetCheckSeverity.WARN if bump.get("mode") == "dispatch" else dg.AssetCheckSeverity.ERROR
        commit = str(bump.get("gitops_commit", ""))
        yield result(check_key, problems, {
            "repo": gitops.url(repo), "deployed": versions,
            "gitops_commit": url_or_text(gitops_commit_url(gitops.root, repo, commit), commit or "-"),
        }, f"{repo}: {len(versions)} project(s) at {tag}", severity=severity)

    return gitops_checks
