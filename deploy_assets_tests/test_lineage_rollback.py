"""status, lineage and rollback on real releases: two prod versions (each validated by its rc),
a rollback of prod that sticks, and rollbacks refused when the target's artifacts broke."""

import json
import os

import dagster as dg
import pytest
import yaml

from deploy_assets.cli import commands as cli
from deploy_assets.cli.runner import sensor_tick
from deploy_assets.resources.git import run_git

MS = ["ms_chat", "ms_core", "ms_payments"]


@pytest.fixture
def run_cli(harness, monkeypatch, capsys):
    """`deploy-assets ...` in-process against the harness's stack and instance (DAGSTER_HOME)."""
    s = harness.settings
    for name, value in {
        "DEPLOY_ASSETS_ENV_FILE": "/nonexistent/no.env",
        "DEPLOY_ASSETS_SOURCE_REPO": s.source_repo,
        "DEPLOY_ASSETS_REGISTRY": s.registry,
        "DEPLOY_ASSETS_S3_ENDPOINT": s.s3_endpoint,
        "APP_ARCHIVER_BUCKET": s.bucket,
        "APP_ARCHIVER_PATH": s.s3_path,
        "APP_ARCHIVER_AWS_REGION": s.aws_region,
        "DEPLOY_ASSETS_GITOPS_ROOT": s.git_root,
        "DEPLOY_ASSETS_WORK_DIR": str(s.work_dir),
        "DEPLOY_ASSETS_CACHE_DIR": str(s.cache_dir),
    }.items():
        monkeypatch.setenv(name, value)
    assert str(harness.instance.root_directory) in os.environ["DAGSTER_HOME"]

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        return code, capsys.readouterr().out

    return run


def prod_versions(harness, tmp_path) -> dict[str, str]:
    clone = tmp_path / f"read-{len(list(tmp_path.iterdir()))}"
    run_git(["clone", "--quiet", f"{harness.settings.git_root}/gitops-production.git", str(clone)])
    return {
        n: yaml.safe_load((clone / f"apps/{n}/kustomization.yaml").read_text())["images"][0][
            "newTag"
        ]
        for n in MS
    }


def test_two_prod_releases_rollback_and_lineage(harness, tmp_path, run_cli):
    cursor = tmp_path / "sensor_cursor"
    assert sensor_tick(harness.defs, harness.instance, cursor) == []  # baseline: no tags yet
    runs = {}
    for tag in ("v0.1.0-rc.1", "v0.1.0", "change", "v0.2.0-rc.1", "v0.2.0"):
        if tag == "change":
            harness.monorepo.write(
                "cmd/ms/ms_chat/motd.go", 'package main\n\nconst motd = "v2"\n\nvar _ = motd\n'
            )
            harness.monorepo.commit("ms_chat: v2")
            continue
        outcome = harness.release(tag)
        assert outcome.success, f"{tag}: {outcome.error}"
        runs[tag] = outcome.run_id
        # the sensor sees each tag exactly once (as if it had launched this very run)
        assert [
            r.tags["deploy_assets/tag"] for r in sensor_tick(harness.defs, harness.instance, cursor)
        ] == [tag]
    assert prod_versions(harness, tmp_path) == {n: "v0.2.0" for n in MS}

    code, out = run_cli("status", "--json")
    assert code == 0
    prod = json.loads(out)["prod"]
    assert prod["version"] == "v0.2.0"
    assert {n: (r["version"], r["run_id"], r["via"]) for n, r in prod["projects"].items()} == {
        n: ("v0.2.0", runs["v0.2.0"], "release") for n in MS
    }

    code, out = run_cli("lineage", "v0.2.0", "--json")
    assert code == 0
    lineage = json.loads(out)
    assert (lineage["env"], lineage["staging_release"], lineage["commit"]) == (
        "prod",
        "v0.2.0-rc.1",
        harness.monorepo.head(),
    )
    head = harness.gitops_log("gitops-production")[0].split()[0]
    assert lineage["gitops"]["commit"] == head
    for name in MS:
        svc = lineage["services"][name]
        digest = harness.registry.manifest_digest(name, "v0.2.0")
        assert svc["image"]["registry_digest"] == svc["image"]["recorded_digest"] == digest
        assert svc["s3"]["arm64"]["object_sha256"] == svc["binaries"]["arm64"]["sha256"]
        assert (
            svc["s3"]["arm64"]["object_sha256"]
            == harness.s3.download_sha256(f"binaries/v0.2.0/{name}")[0]
        )
        assert svc["gitops_commit"] == head
        assert svc["staging"] == {
            "release": "v0.2.0-rc.1",
            "image_digest": digest,
            "sha256": {"arm64": svc["binaries"]["arm64"]["sha256"]},
            "same_bytes": True,
        }
        assert {k: c["status"] for k, c in svc["checks"].items()} == {
            f"binary/{name}:built_with_configured_go": "PASSED",
            f"image/{name}:served_with_recorded_digest": "PASSED",
            f"image/{name}:same_bytes_as_staging": "PASSED",
            f"s3/{name}:objects_match_build": "PASSED",
            f"s3/{name}:same_bytes_as_staging": "PASSED",
        }
    assert lineage["services"]["cli_core"]["image"]["recorded_digest"].startswith("sha256:")
    assert "staging" not in lineage["services"]["cli_core"]  # staging ships no CLIs
    assert lineage["services"]["lambda_auth_handler"]["s3"]["arm64"]["problem"] is None
    assert all(c["status"] == "PASSED" for c in lineage["release_checks"].values())
    assert lineage["manifest"]["key"] == "binaries/v0.2.0/manifest.json"

    chat_digest = lineage["services"]["ms_chat"]["image"]["recorded_digest"]
    code, out = run_cli("lineage", "--digest", chat_digest, "--json")
    assert code == 0
    found = {(r["env"], r["tag"]): r for r in json.loads(out)["releases"]}
    assert set(found) == {
        ("staging", "v0.2.0-rc.1"),
        ("prod", "v0.2.0"),
    }  # v0.1.0's ms_chat had other bytes
    assert (
        found[("prod", "v0.2.0")]["running_now"]
        and found[("prod", "v0.2.0")]["reused_from"] == "staging|v0.2.0-rc.1"
    )
    assert found[("prod", "v0.2.0")]["commit"] == harness.monorepo.head()

    # Roll prod back: the default target is the version prod ran before.
    code, out = run_cli("rollback", "prod", "--by", "alice")
    assert code == 0, out
    assert prod_versions(harness, tmp_path) == {n: "v0.1.0" for n in MS}
    message = run_git(
        ["log", "-1", "--format=%B", "main"],
        cwd=f"{harness.settings.git_root}/gitops-production.git",
    ).decode()
    assert message.startswith(f"rollback(prod): {' '.join(MS)} -> v0.1.0 (from v0.2.0)\n")
    assert "Rollback-From: v0.2.0\n" in message and "Rollback-By: alice\n" in message
    assert "Release-Tag: v0.1.0\n" in message and "Rollback-At: " in message

    code, out = run_cli("status", "--json")
    prod = json.loads(out)["prod"]["projects"]
    assert {n: (r["version"], r["via"]) for n, r in prod.items()} == {
        n: ("v0.1.0", "rollback from v0.2.0 by alice") for n in MS
    }
    code, out = run_cli("lineage", "v0.1.0", "--json")
    rollbacks = json.loads(out)["rollbacks"]
    assert [(r["from"], r["to"], r["by"]) for r in rollbacks] == [("v0.2.0", "v0.1.0", "alice")]
    assert rollbacks[0]["gitops_commit"] == harness.gitops_log("gitops-production")[0].split()[0]
    code, out = run_cli("lineage", "v0.2.0")
    assert code == 0 and "rollback v0.2.0 -> v0.1.0 by alice" in out

    # Nothing re-applies v0.2.0: the sensor launches nothing, and no automation exists.
    assert sensor_tick(harness.defs, harness.instance, cursor) == []
    assert list(harness.defs.schedules or []) == []
    assert all(spec.automation_condition is None for spec in harness.defs.resolve_all_asset_specs())
    assert prod_versions(harness, tmp_path) == {n: "v0.1.0" for n in MS}

    code, out = run_cli("lineage", "v9.9.9")
    assert code == 1 and "no release prod|v9.9.9 in the Dagster instance" in out
    code, out = run_cli("rollback", "prod", "--to", "v0.2.0-rc.1")
    assert code == 2 and "tag 'v0.2.0-rc.1' deploys to staging, not prod" in out

    # v0.1.0 is the bottom of prod's history: no default target left.
    code, out = run_cli("rollback", "prod")
    assert (
        code == 2
        and "gitops-production has no earlier version to roll back to (versions run: v0.1.0)" in out
    )

    # Break v0.2.0's artifacts: rolling forward to it is refused with the reasons, the repo untouched.
    core_digest = harness.registry.manifest_digest("ms_core", "v0.2.0")
    harness.registry.delete_tag_manifest("ms_core", core_digest)
    harness.s3.put_bytes("binaries/v0.2.0/ms_payments", b"overwritten", "application/octet-stream")
    before = harness.gitops_log("gitops-production")
    code, out = run_cli("rollback", "prod", "--to", "v0.2.0")
    assert code == 2
    assert "rollback of prod refused: artifacts of prod|v0.2.0 no longer verify: " in out
    assert (
        f"{harness.settings.registry}/ms_core:v0.2.0 is not in the registry (recorded digest {core_digest})"
        in out
    )
    assert f"s3://{harness.settings.bucket}/binaries/v0.2.0/ms_payments has sha256 " in out
    assert harness.gitops_log("gitops-production") == before
    failed = harness.instance.get_runs(
        dg.RunsFilter(job_name="rollback", statuses=[dg.DagsterRunStatus.FAILURE])
    )
    assert len(failed) == 3  # refusals are recorded as failed rollback runs


FORGED = "eve\nRelease-Tag: v9.9.9"


def dev_versions(harness, tmp_path) -> dict[str, str]:
    clone = tmp_path / f"read-dev-{len(list(tmp_path.iterdir()))}"
    run_git(["clone", "--quiet", f"{harness.settings.git_root}/gitops-development.git", str(clone)])
    return {
        n: yaml.safe_load((clone / f"apps/{n}/kustomization.yaml").read_text())["images"][0][
            "newTag"
        ]
        for n in MS
    }


def test_a_newline_in_requested_by_or_the_user_tag_cannot_forge_a_release_trailer(
    harness, tmp_path, run_cli
):
    """`requested_by` and the run's `user` tag end up in the rollback commit's trailers, which
    status and the next default rollback target trust: a value with a line break is refused
    (naming it) before anything is pushed, and status and the default target stay as they were."""
    from deploy_assets.records.rollback import ROLLBACK_JOB, plan_rollback
    from deploy_assets.records.status import env_history

    for tag in ("v0.1.0-alpha.1", "v0.1.0-alpha.2"):
        outcome = harness.release(tag)
        assert outcome.success, f"{tag}: {outcome.error}"
    repo = f"{harness.settings.git_root}/gitops-development.git"
    before = harness.gitops_log("gitops-development")
    code, status_before = run_cli("status", "--json")
    assert code == 0 and json.loads(status_before)["dev"]["version"] == "v0.1.0-alpha.2"

    code, out = run_cli("rollback", "dev", "--by", FORGED)
    assert code == 2
    assert (
        "rollback of dev refused: requested_by 'eve\\nRelease-Tag: v9.9.9' contains the control character '\\n'"
        in out
    )
    job = harness.defs.resolve_job_def(ROLLBACK_JOB)
    by_tag = job.execute_in_process(
        instance=harness.instance,
        raise_on_error=False,
        tags={"user": FORGED},
        run_config={"ops": {"rollback_env": {"config": {"env": "dev"}}}},
    )
    assert not by_tag.success
    failure = next(
        e for e in by_tag.all_events if e.is_step_failure
    ).step_failure_data.user_failure_data
    assert (
        "the run's user tag 'eve\\nRelease-Tag: v9.9.9' contains the control character"
        in failure.description
    )

    assert harness.gitops_log("gitops-development") == before  # nothing pushed
    assert dev_versions(harness, tmp_path) == {n: "v0.1.0-alpha.2" for n in MS}
    assert run_cli("status", "--json")[1] == status_before
    gitops = harness.defs.resources["gitops"]
    assert [d.tag for d in env_history(gitops, "gitops-development")] == [
        "v0.1.0-alpha.1",
        "v0.1.0-alpha.2",
    ]
    assert (
        plan_rollback(harness.instance, gitops, harness.config, "dev", None).to_version
        == "v0.1.0-alpha.1"
    )

    # A person's commit whose body merely mentions a trailer (not in git's trailer block) is no deployment.
    work = tmp_path / "person"
    run_git(["clone", "--quiet", repo, str(work)])
    (work / "NOTES.md").write_text("notes\n")
    run_git(["add", "-A"], cwd=work)
    run_git(
        ["commit", "--quiet", "-m", "notes\n\nRelease-Tag: v9.9.9\n\nnot a trailer block"], cwd=work
    )
    run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=work)
    assert [d.tag for d in env_history(gitops, "gitops-development")] == [
        "v0.1.0-alpha.1",
        "v0.1.0-alpha.2",
    ]

    code, out = run_cli("rollback", "dev", "--by", "alice")  # a clean value still works, one line
    assert code == 0, out
    message = run_git(["log", "-1", "--format=%B", "main"], cwd=repo).decode()
    assert "Rollback-By: alice\n" in message and "v9.9.9" not in message
    assert dev_versions(harness, tmp_path) == {n: "v0.1.0-alpha.1" for n in MS}
