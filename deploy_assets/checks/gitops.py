"""Checklist: "verify GitOps deployment completed" — every GitOps target of the env, read back
from its repo's remote after the push, sets every project of the release to the release's version.

Read back, not trusted: a push that landed on another branch, a layout that wrote the wrong
file or a concurrent commit that reverted ours all show up here. In dispatch mode the repo is
written by the old workflow, so a disagreement is a warning next to its reported conclusion.
"""

import dagster as dg

from deploy_assets.assets.links import gitops_commit_url, url_or_text
from deploy_assets.checks.base import check_spec, not_recorded, recorded, release_of, result
from deploy_assets.config import PipelineConfig
from deploy_assets.names import GITOPS_CHECK, GITOPS_KEY
from deploy_assets.resources.git import GitError
from deploy_assets.resources.gitops import GitOpsError, GitOpsResource
from deploy_assets.resources.gitops_targets import combined, target_versions


def deployed_versions(
    gitops: GitOpsResource, config: PipelineConfig, env: str, projects: list[str]
) -> dict[str, str | None]:
    """project -> version the env's repos set now, across its targets (None: no file or no
    version; targets that disagree read as `eu=v1 / us=v2`, see gitops_targets.combined)."""
    return combined(versions_by_target(gitops, config, env, projects))


def versions_by_target(
    gitops: GitOpsResource, config: PipelineConfig, env: str, projects: list[str]
) -> dict[str, dict[str, str | None]]:
    """target name -> project -> version its file sets now, read from each repo's branch head."""
    return target_versions(config.envs[env].targets, env, projects, gitops.read_files)


def build_gitops_check(config: PipelineConfig) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name="gitops_checks",
        specs=[
            check_spec(
                GITOPS_KEY,
                GITOPS_CHECK,
                "the env's GitOps repo sets every project of the "
                "release to its version (read back from the remote)",
                blocking=True,
            )
        ],
    )
    def gitops_checks(context: dg.AssetCheckExecutionContext, gitops: GitOpsResource):
        env, tag, partition = release_of(context)
        check_key = dg.AssetCheckKey(GITOPS_KEY, GITOPS_CHECK)
        bump = recorded(context, GITOPS_KEY, partition)
        if bump is None:
            yield not_recorded(check_key, partition)
            return
        targets = config.envs[env].targets
        repo = " ".join(config.envs[env].gitops_repos)
        try:
            per_target = versions_by_target(gitops, config, env, list(bump["projects"]))
        except (GitError, GitOpsError) as exc:
            per_target, problems = {}, [f"cannot read back {repo}: {exc}"]
        else:
            problems = [
                f"{t.repo}{'' if t.name == t.repo else ' (' + t.name + ')'}: {project} is at "
                f"{found or 'no version'}, not {tag}"
                for t in targets
                for project, found in per_target[t.name].items()
                if found != tag
            ]
        versions = combined(per_target)
        severity = (
            dg.AssetCheckSeverity.WARN
            if bump.get("mode") == "dispatch"
            else dg.AssetCheckSeverity.ERROR
        )
        commit = str(bump.get("gitops_commit", ""))
        first = targets[0].repo
        yield result(
            check_key,
            problems,
            {
                "repo": " ".join(gitops.url(r) for r in config.envs[env].gitops_repos),
                "deployed": versions,
                **({"targets": per_target} if len(targets) > 1 else {}),
                "gitops_commit": url_or_text(
                    gitops_commit_url(gitops.root, first, commit), commit or "-"
                ),
            },
            f"{repo}: {len(versions)} project(s) at {tag}",
            severity=severity,
        )

    return gitops_checks
