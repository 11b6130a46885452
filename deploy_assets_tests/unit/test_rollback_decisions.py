"""The rollback's decisions without a repo, a registry or a bucket: the objects it verifies, the
observation it records, the run config (with the CLI's log level), and a refusal recorded in the
command's log file through the CLI's logger, not stderr."""

from __future__ import annotations

import dagster as dg

from deploy_assets.cli.logs import DagsterLog
from deploy_assets.config import Settings, load_pipeline_config
from deploy_assets.names import GITOPS_KEY
from deploy_assets.records.rollback import (
    RollbackPlan,
    build_rollback_job,
    refusal,
    rollback_observation,
    rollback_run_config,
    run_rollback,
)
from deploy_assets.records.rollback_plan import recorded_objects
from deploy_assets.resources.gitops import GitOpsResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource

PLAN = RollbackPlan(
    env="dev",
    repo="gitops-development",
    from_version="v1.1.0-dev",
    to_version="v1.0.0-dev",
    projects=["ms_chat", "ms_core"],
    source_commit="c0ffee",
)


def test_every_recorded_object_is_verified_binaries_single_objects_and_the_record():
    meta = {
        "s3_key_linux_amd64": "rel/v1/ms_core_linux_amd64",
        "sha256_linux_amd64": "aa",
        "s3_key_linux_arm64": "rel/v1/ms_core_linux_arm64",
        "sha256_linux_arm64": "bb",
        "kind": "ms",
    }
    assert recorded_objects(meta) == [
        ("rel/v1/ms_core_linux_amd64", "aa"),
        ("rel/v1/ms_core_linux_arm64", "bb"),
    ]
    assert recorded_objects({"s3_key": "rel/v1/routes.json", "sha256": "cc"}) == [
        ("rel/v1/routes.json", "cc")
    ]
    record = {
        "manifest_key": "m",
        "manifest_sha256": "dd",
        "checksums_key": "c",
        "checksums_sha256": "ee",
    }
    assert recorded_objects(record) == [("m", "dd"), ("c", "ee")]
    assert recorded_objects({"commit": "x"}) == []


def test_the_observation_lands_on_the_target_partition_with_who_when_from_to():
    obs = rollback_observation(PLAN, "eve@host", "2026-01-01T00:00:00+00:00", "f00d")
    assert (obs.asset_key, obs.partition) == (GITOPS_KEY, "dev|v1.0.0-dev")
    assert obs.description == "rollback of dev from v1.1.0-dev to v1.0.0-dev by eve@host"
    assert {k: v.value for k, v in obs.metadata.items()} == {
        "rollback_from": "v1.1.0-dev",
        "rollback_to": "v1.0.0-dev",
        "rolled_back_by": "eve@host",
        "rolled_back_at": "2026-01-01T00:00:00+00:00",
        "gitops_commit": "f00d",
        "repo": "gitops-development",
        "projects": ["ms_chat", "ms_core"],
    }


def test_a_refusal_is_not_retried_and_is_marked_refused():
    failure = refusal("dev", RuntimeError("no earlier version"))
    assert failure.description == "rollback of dev refused: no earlier version"
    assert failure.allow_retries is False
    assert "refused" in failure.metadata


def test_the_run_config_takes_the_log_level_only_when_given():
    ops = {"rollback_env": {"config": {"env": "dev", "to": "", "requested_by": "eve"}}}
    assert rollback_run_config("dev", None, "eve") == {"ops": ops}
    assert rollback_run_config("dev", None, "eve", "DEBUG") == {
        "ops": ops,
        "loggers": {"console": {"config": {"log_level": "DEBUG"}}},
    }


def rollback_defs(tmp_path) -> dg.Definitions:
    """The rollback job with resources that are never reached: an unknown env is refused first."""
    settings = Settings.from_env()
    return dg.Definitions(
        jobs=[build_rollback_job(load_pipeline_config(), settings)],
        resources={
            "gitops": GitOpsResource(root=str(tmp_path / "repos")),
            "registry": RegistryResource(host="registry.invalid"),
            "s3": S3Resource(bucket="b", path="p", region="us-east-1", endpoint_url=""),
        },
    )


def test_a_refused_rollback_is_recorded_in_the_commands_log_file_at_its_level(tmp_path, capfd):
    for level, debug_lines in (("DEBUG", True), ("ERROR", False)):
        log = DagsterLog(tmp_path / f"rollback-{level}.log", level)
        with dg.DagsterInstance.ephemeral() as instance:
            outcome = run_rollback(
                log.wire(rollback_defs(tmp_path)),
                instance,
                "nowhere",
                None,
                "eve",
                log_level=log.level,
            )
        assert (outcome.success, outcome.refused) == (False, True)
        assert outcome.error.startswith("rollback of nowhere refused: unknown env 'nowhere'")
        written = log.written()
        assert written is not None, level
        text = written.read_text()
        assert "rollback of nowhere refused: unknown env 'nowhere'" in text
        assert (" - DEBUG - " in text) is debug_lines, (level, text)
        log.close()
    assert "refused" not in capfd.readouterr().err  # nothing of Dagster's on the terminal
