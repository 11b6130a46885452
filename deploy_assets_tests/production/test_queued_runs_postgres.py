"""Releases through the production path: tag sensor → queued run coordinator → daemon → run,
with all state in a real PostgreSQL server (misc/configs/dagster.production.yaml, except that
runs are local processes here instead of containers).

Two dev tags pushed at once must not run side by side: the env's concurrency limit keeps the
second QUEUED until the first one has finished, then it runs too.
"""

import dagster as dg

from deploy_assets.records.history import latest_for_partition
from deploy_assets_tests.production import deployment

TAGS = ["v0.1.0-alpha.1", "v0.1.0-alpha.2"]
MS = ["ms_chat", "ms_core", "ms_payments"]
ACTIVE = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}


def test_two_dev_tags_run_one_after_the_other_from_postgres(harness, production):
    workspace = deployment.write_workspace(production.state_dir / "workspace.yaml")
    daemon = deployment.start_process(
        [str(deployment.BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        production.env,
        production.state_dir,
        "daemon",
    )
    try:
        with production.instance() as instance:
            # The sensor's first tick takes the existing tags as its baseline; tags pushed after
            # it are releases.
            deployment.wait_for(
                lambda: deployment.sensor_cursor(instance),
                180,
                "the tag sensor's first tick (baseline)",
                daemon,
            )
            for tag in TAGS:
                harness.monorepo.tag(tag)

            samples: list[dict[str, dg.DagsterRunStatus]] = []

            def both_finished():
                runs = deployment.runs_for_tags(instance, TAGS)
                samples.append({tag: run.status for tag, run in runs.items()})
                return len(runs) == 2 and all(run.is_finished for run in runs.values())

            deployment.wait_for(both_finished, 420, f"runs of {TAGS} to finish", daemon)
            runs = deployment.runs_for_tags(instance, TAGS)
            records = {tag: instance.get_run_record_by_id(run.run_id) for tag, run in runs.items()}
            statuses = {tag: run.status for tag, run in runs.items()}
            assert statuses == {tag: dg.DagsterRunStatus.SUCCESS for tag in TAGS}, (
                deployment.log_tail(daemon)
            )

            # The queue at work: one run was in progress while the other waited, never both at once,
            # and the second one started only after the first one ended.
            assert any(
                sorted(s.values(), key=str)
                == sorted([dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED], key=str)
                for s in samples
                if len(s) == 2
            ), samples
            assert not any(len(s) == 2 and set(s.values()) <= ACTIVE for s in samples), samples
            first, second = sorted(TAGS, key=lambda t: records[t].start_time)
            assert records[second].start_time >= records[first].end_time
            assert all(run.tags["deploy_assets/env"] == "dev" for run in runs.values())
            assert {run.job_name for run in runs.values()} == {"release_to_dev"}
            # One process per run (issue 13): every step of a daemon-launched run has the run's pid.
            for run in runs.values():
                starts = instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.STEP_START
                ).records
                assert (
                    len(starts) > 5
                    and len({r.event_log_entry.dagster_event.pid for r in starts}) == 1
                )

            # Materializations live in Postgres and carry the facts of the release.
            for tag in TAGS:
                for name in MS:
                    found = latest_for_partition(
                        instance, dg.AssetKey(["image", name]), f"dev|{tag}"
                    )
                    assert found is not None, f"no image/{name} materialization for dev|{tag}"
                    image = found.metadata
                    assert image["ref"] == f"{harness.settings.registry}/{name}:{tag}"
                    assert harness.registry.manifest_digest(name, tag) == image["digest"]
            rows = production.postgres.query(
                production.database,
                "SELECT run_id, count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                "AND asset_key LIKE %s GROUP BY run_id",
                ('%"image"%',),
            )
            assert {run_id: n for run_id, n in rows} == {
                run.run_id: len(MS) for run in runs.values()
            }
            assert [
                line.split(" ", 1)[1] for line in harness.gitops_log("gitops-development")[:2]
            ] == [f"deploy(dev): {' '.join(MS)} -> {tag}" for tag in reversed([first, second])]
    finally:
        deployment.stop(daemon)
