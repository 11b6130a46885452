"""The sensor launches what the release matrix has a job for: a tag of an env the pipeline config
has no rule for is refused once, naming the env, instead of a run request for a missing job."""

from __future__ import annotations

import logging

import dagster as dg

from deploy_assets.config import Settings, load_pipeline_config
from deploy_assets.definitions import build_definitions
from deploy_assets.sensors.release_tags import SENSOR_NAME
from deploy_assets_tests.sensors.test_release_tags import Remote, Ticks


class TicksWithoutDev(Ticks):
    """The code location of a config whose envs are staging and prod only."""

    def __init__(self, remote: str, tmp_path):
        super().__init__(remote, tmp_path)
        config = load_pipeline_config()
        config = config.model_copy(
            update={"envs": {e: r for e, r in config.envs.items() if e != "dev"}}
        )
        settings = Settings.from_env(
            {
                "DEPLOY_ASSETS_SOURCE_REPO": remote,
                "DEPLOY_ASSETS_CACHE_DIR": str(tmp_path / "cache"),
                "DEPLOY_ASSETS_LOCAL_DIR": str(tmp_path / "local"),
            }
        )
        self.defs = build_definitions(settings, config, services=[])
        self.sensor = self.defs.resolve_sensor_def(SENSOR_NAME)


def test_a_tag_of_an_env_without_a_rule_is_refused_once_and_the_others_launch(tmp_path):
    remote = Remote(tmp_path)
    ticks = TicksWithoutDev(str(remote.bare), tmp_path)
    ticks.tick()  # baseline
    commit = remote.commit("feature")
    remote.tag("v0.2.0-alpha.1")
    remote.tag("v0.2.0-rc.1")
    result = ticks.tick()
    assert [(r.job_name, r.partition_key) for r in result.run_requests] == [
        ("release_to_staging", "staging|v0.2.0-rc.1")
    ]
    assert result.run_requests[0].tags == {
        "deploy_assets/env": "staging",
        "deploy_assets/tag": "v0.2.0-rc.1",
        "deploy_assets/commit": commit,
    }
    assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [["v0.2.0-rc.1"]]
    refusal = (
        "tag v0.2.0-alpha.1: env 'dev' has no rule in the pipeline config (envs: staging, prod); "
        "add envs.dev to pipeline.yaml or release to a configured env"
    )
    assert [m for m in ticks.messages(logging.ERROR) if "v0.2.0-alpha.1" in m] == [refusal]

    remote.tag("v0.3.0-alpha.1")
    alone = ticks.tick()
    assert (
        alone.run_requests == []
        and refusal.replace("0.2.0", "0.3.0") in alone.skip_reason.skip_message
    )
    assert isinstance(ticks.tick(), dg.SkipReason)  # reported once: the cursor holds it
    assert len([m for m in ticks.messages(logging.ERROR) if "v0.3.0-alpha.1" in m]) == 1
