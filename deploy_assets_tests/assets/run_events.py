"""What a test run's event log says: step failures with their causes, log lines by level."""

import dagster as dg


def step_failures(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the failure's message and every cause's (the user's exception is a cause)."""
    failures = {}
    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_FAILURE
    ).records:
        event = record.event_log_entry.dagster_event
        error, messages = event.step_failure_data.error, []
        while error is not None:
            messages.append(error.message.strip())
            error = error.cause
        failures[event.step_key] = "\n".join(messages)
    return failures


def user_logs(instance: dg.DagsterInstance, run_id: str, level: int) -> list[str]:
    """Messages the assets logged through context.log at exactly this level."""
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is None and entry.level == level
    ]


def run_subset(harness, keys: set[str], tag: str, env: str = "dev") -> dg.ExecuteInProcessResult:
    """The assets `keys` of one release alone, as a click in the UI materializes them."""
    from deploy_assets.assets.partitions import release_partition_key

    job = harness.defs.resolve_job_def(f"release_to_{env}").get_subset(
        asset_selection={dg.AssetKey.from_user_string(k) for k in keys}, asset_check_selection=set()
    )
    return job.execute_in_process(
        instance=harness.instance,
        partition_key=release_partition_key(env, tag),
        raise_on_error=False,
    )
