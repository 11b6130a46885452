"""A release tag that moves (same name, another commit, by a real force-push) is not released again."""

import logging

import dagster as dg
import pytest

from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
from deploy_assets.assets.source import SOURCE_KEY
from deploy_assets.records.history import latest_for_partition
from deploy_assets.sensors.release_tags import SENSOR_NAME
from deploy_assets_tests.reliability.conftest import failure

pytestmark = pytest.mark.reliability

TAG = "v5.0.0-alpha.1"


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_a_force_pushed_tag_is_reported_loudly_and_launches_nothing(rig, s3_bucket):
    harness = rig("registry.test:5000", *s3_bucket)
    sensor = harness.defs.resolve_sensor_def(SENSOR_NAME)
    logs = _Collect()

    def tick(cursor):
        with dg.build_sensor_context(
            instance=harness.instance,
            cursor=cursor,
            definitions=harness.defs,
            resources=dict(harness.defs.resources),
        ) as context:
            context.log.addHandler(logs)
            return sensor(context)

    cursor = tick(None).cursor  # baseline
    first = harness.monorepo.tag(TAG)
    launched = tick(cursor)
    assert [r.run_key for r in launched.run_requests] == [f"{TAG}@{first}"]
    harness.monorepo.write(
        "cmd/ms/ms_core/moved.go", "package main\n\nconst moved = true\n\nvar _ = moved\n"
    )
    moved = harness.monorepo.commit("a different commit under the same tag")
    assert harness.monorepo.tag(TAG) == moved  # git tag -f + git push --force

    result = tick(launched.cursor)

    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    errors = [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR]
    assert any(f"{TAG!r} MOVED from {first[:12]} to {moved[:12]}" in m for m in errors), errors
    again = tick(result.cursor)  # reported once per move, not every tick
    assert getattr(again, "run_requests", None) in (None, [])
    assert len(
        [r for r in logs.records if "MOVED" in r.getMessage() and r.levelno >= logging.ERROR]
    ) == len([m for m in errors if "MOVED" in m])


def test_rerunning_a_released_partition_whose_tag_moved_is_refused_at_the_source(
    rig, fresh_registry, s3_bucket
):
    harness = rig(fresh_registry, *s3_bucket)
    first = harness.monorepo.tag(TAG)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [TAG])
    job = harness.defs.resolve_job_def("release_to_dev")

    def source_step():
        return job.execute_in_process(
            instance=harness.instance,
            partition_key=release_partition_key("dev", TAG),
            asset_selection=[SOURCE_KEY],
            raise_on_error=False,
        )

    released = source_step()
    assert released.success, failure(harness.instance, released.run_id)
    assert (
        latest_for_partition(harness.instance, SOURCE_KEY, f"dev|{TAG}").metadata["commit"] == first
    )
    harness.monorepo.write("cmd/ms/ms_core/moved.go", "package main\n")
    moved = harness.monorepo.commit("moved")
    harness.monorepo.tag(TAG)

    rerun = source_step()

    assert not rerun.success
    error = failure(harness.instance, rerun.run_id)
    assert first[:12] in error and moved[:12] in error and "MOVED" in error
