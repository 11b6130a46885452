"""`deploy-assets plan` as a user runs it: a subprocess against a real monorepo remote and instance.

Exit statuses: 0 the plan can run, 2 the tag (or the monorepo) is refused, 3 the promotion gate
would refuse the release; the plan is printed in every case but 2, so CI can read it and stop.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from deploy_assets.cli.runner import get_instance
from deploy_assets.config import DEFAULT_CONFIG
from deploy_assets.names import partition_key

CLI = Path(sys.executable).parent / "deploy-assets"
DEV_SERVICES = ["ms_chat", "ms_core", "ms_payments"]


@pytest.fixture
def run_plan(monorepo, tmp_path):
    env = {
        **os.environ,
        "DEPLOY_ASSETS_SOURCE_REPO": str(monorepo.bare),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "DEPLOY_ASSETS_CACHE_DIR": str(tmp_path / "cache"),
        "DEPLOY_ASSETS_LOCAL_DIR": str(tmp_path / "local"),
        "DEPLOY_ASSETS_ENV_FILE": str(tmp_path / "no.env"),
        "DEPLOY_ASSETS_REGISTRY": "registry.test:5000",
        "APP_ARCHIVER_BUCKET": "app-artifacts",
        "APP_ARCHIVER_PATH": "binaries",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(CLI), "plan", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )

    return run


def test_plan_json_uses_the_tags_commit(monorepo, run_plan):
    tagged = monorepo.tag("v0.1.0-alpha.1")
    monorepo.write("cmd/ms/ms_core/later.go", "package main\n")
    assert monorepo.commit("after the tag") != tagged
    done = run_plan("v0.1.0-alpha.1", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["tag"], plan["version"], plan["env"], plan["job"]) == (
        "v0.1.0-alpha.1",
        "v0.1.0-alpha.1",
        "dev",
        "release_to_dev",
    )
    assert (plan["commit"], plan["commit_source"]) == (tagged, "tag")
    assert plan["images"] == {n: f"registry.test:5000/{n}:v0.1.0-alpha.1" for n in DEV_SERVICES}
    assert plan["s3_keys"] == {n: f"binaries/v0.1.0-alpha.1/{n}" for n in DEV_SERVICES}
    assert plan["binaries"] == [f"bin_arm64/ms/{n}" for n in DEV_SERVICES]
    assert plan["gitops_repo"] == "gitops-development" and plan["gate"]["passes"] is True


def test_plan_text_names_each_gitops_target_and_its_files(monorepo, run_plan):
    tagged = monorepo.tag("v0.1.0-alpha.2")
    done = run_plan("v0.1.0-alpha.2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    gitops = next(i for i, line in enumerate(lines) if line.startswith("gitops   "))
    assert lines[gitops:] == [
        f"gitops   gitops-development: {' '.join(DEV_SERVICES)} -> v0.1.0-alpha.2"
        " (updatesRoutes=true)",
        "  target gitops-development: gitops-development "
        + " ".join(f"apps/{n}/kustomization.yaml" for n in DEV_SERVICES),
    ]
    assert f"commit   {tagged} from tag" in lines


def test_plan_of_a_tag_not_pushed_yet_uses_head_and_says_so(monorepo, run_plan):
    done = run_plan("v0.2.0-rc.1", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["env"] == "staging" and plan["commit"] == monorepo.head()
    assert plan["commit_source"] == "HEAD (the tag does not exist yet)"
    assert plan["gitops_repo"] == "gitops-staging"


def test_a_rejected_tag_exits_2_with_the_reason_on_stderr(run_plan):
    done = run_plan("v1.2.3-rc1", "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "deploy-assets: refused: tag 'v1.2.3-rc1' pre-release 'rc1' is not alpha.N, beta.N or rc.N; "
        "release tags are vX.Y.Z-alpha.N / vX.Y.Z-beta.N (dev), vX.Y.Z-rc.N (staging), vX.Y.Z (prod)"
    )


def test_an_env_the_config_has_no_rule_for_exits_2_naming_it(run_plan, tmp_path):
    pipeline = yaml.safe_load(Path(DEFAULT_CONFIG).read_text())
    del pipeline["envs"]["dev"]
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    done = run_plan("v0.1.0-alpha.1", "--config", str(tmp_path / "pipeline.yaml"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        "deploy-assets: refused: env 'dev' has no rule in the pipeline config (envs: staging, "
        "prod); add envs.dev to pipeline.yaml or release to a configured env"
    )


def test_an_unsafe_service_directory_exits_2_naming_it(monorepo, run_plan):
    monorepo.write("cmd/ms/Ms Billing/main.go", "package main\n\nfunc main() {}\n")
    monorepo.commit("a service with an unsafe name")
    done = run_plan("v0.3.0-alpha.1")
    assert done.returncode == 2 and done.stdout == ""
    assert "deploy-assets: refused: service directory 'cmd/ms/Ms Billing'" in done.stderr


def test_prod_without_staging_prints_the_failing_gate_and_exits_3(monorepo, run_plan):
    commit = monorepo.tag("v0.4.0")
    done = run_plan("v0.4.0", "--json")
    assert done.returncode == 3, done.stderr
    plan = json.loads(done.stdout)
    assert plan["env"] == "prod" and plan["gate"] == {
        "passes": False,
        "staging_tag": None,
        "reason": f"no successful staging release v0.4.0-rc.N on commit {commit[:12]} "
        "(staging releases of 0.4.0: none)",
    }
    assert plan["api_gateway_repo"] == "terraform-apps-production"
    text = run_plan("v0.4.0")
    assert text.returncode == 3
    assert (
        f"gate     FAIL: no successful staging release v0.4.0-rc.N on commit {commit[:12]}"
        in text.stdout
    )


def test_prod_after_a_successful_staging_release_passes_the_gate(
    monorepo, run_plan, tmp_path, monkeypatch
):
    commit = monorepo.tag("v0.5.0")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with get_instance() as instance:  # the staging release's last stage, as the instance records it
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key="gitops_bump",
                partition=partition_key("staging", "v0.5.0-rc.2"),
                metadata={"commit": commit},
            )
        )
    done = run_plan("v0.5.0", "--json")
    assert done.returncode == 0, done.stderr
    gate = json.loads(done.stdout)["gate"]
    assert gate == {
        "passes": True,
        "staging_tag": "v0.5.0-rc.2",
        "reason": f"staging release v0.5.0-rc.2 validated commit {commit[:12]}",
    }
