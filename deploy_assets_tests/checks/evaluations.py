"""Check results as a run's own event log has them (independent of the code that reads them
back for `lineage`)."""

import dagster as dg


def check_evaluations(
    instance: dg.DagsterInstance, run_id: str
) -> dict[str, dg.AssetCheckEvaluation]:
    """'asset:check' -> the evaluation the run logged."""
    out = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        out[dg.AssetCheckKey(evaluation.asset_key, evaluation.check_name).to_user_string()] = (
            evaluation
        )
    return out


def materialized_keys(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {
        entry.dagster_event.asset_key.to_user_string()
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    }
