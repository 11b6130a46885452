"""Secrets never reach Dagster's storage or the CLI's output, in a release that succeeds or fails.

AWS keys and WORKFLOW_PAT get distinctive values; the dev env dispatches the GitOps workflow
through the GitHub stand-in, so the PAT is really sent (and, for the failing release, refused
with 401). Then every byte under DAGSTER_HOME (sqlite run/event storage read row by row, logs,
everything) and everything the CLI printed is searched for the values and their base64.
"""

import pytest

from deploy_assets.assets.gitops import UPDATE_VERSION_WORKFLOW
from deploy_assets.config import REPO_ROOT
from deploy_assets_tests.github_standin import GitHubStandin
from deploy_assets_tests.reliability.conftest import SECRETS, leaks

pytestmark = pytest.mark.reliability

OWNER = "example-org"


def test_no_secret_in_dagster_storage_or_cli_output(cli_deployment, fresh_registry, s3_bucket, monorepo, tmp_path):
    config = tmp_path / "pipeline.yaml"
    config.write_text((REPO_ROOT / "misc" / "configs" / "pipeline.yaml").read_text().replace(
        "    gitops_repo: gitops-development\n", "    gitops_repo: gitops-development\n    gitops_mode: dispatch\n", 1))
    pat = SECRETS["WORKFLOW_PAT"]
    with GitHubStandin(token=pat) as github, GitHubStandin(token="a-different-token") as refusing:
        github.add_workflow(f"{OWNER}/gitops-development", UPDATE_VERSION_WORKFLOW, queued_polls=0,
                            in_progress_polls=0)
        refusing.add_workflow(f"{OWNER}/gitops-development", UPDATE_VERSION_WORKFLOW)
        monorepo.tag("v8.0.0-alpha.1")
        monorepo.tag("v8.0.0-alpha.2")
        ok = cli_deployment(fresh_registry, *s3_bucket, DEPLOY_ASSETS_CONFIG=str(config),
                            DEPLOY_ASSETS_GITHUB_API=github.url, DEPLOY_ASSETS_GITHUB_OWNER=OWNER)
        code, out = ok.release("v8.0.0-alpha.1")
        assert code == 0 and "succeeded" in out.splitlines()[-1], out
        failing = cli_deployment(fresh_registry, *s3_bucket, DEPLOY_ASSETS_CONFIG=str(config),
                                 DEPLOY_ASSETS_GITHUB_API=refusing.url, DEPLOY_ASSETS_GITHUB_OWNER=OWNER)
        code, out = failing.release("v8.0.0-alpha.2")
        assert code == 1 and "FAILED" in out and "401" in out, out

    # The secrets were really used: the PAT went to GitHub, the AWS key signed S3 requests.
    assert github.dispatches(f"{OWNER}/gitops-development") and \
        all(pat in r.headers.get("Authorization", "") for r in github.requests + refusing.requests)
    assert ok.home == failing.home and (ok.home / "history").is_dir()
    assert leaks([ok.home], ok.outputs + failing.outputs) == []
    # The scan itself finds a value where there is one.
    (tmp_path / "probe.txt").write_text(f"x {SECRETS['AWS_SECRET_ACCESS_KEY']} y")
    assert leaks([tmp_path / "probe.txt"], []) == [f"AWS_SECRET_ACCESS_KEY in {tmp_path / 'probe.txt'}"]
