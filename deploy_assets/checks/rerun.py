"""Re-run a release's checklist later, without re-materializing anything.

Artifacts can break after a release (a tag deleted by a registry clean-up, an object
overwritten): re-running the checks of the release's partition says so, on the same partition
page where the release's own results are. The UI can do the same from the asset page.
"""

from collections.abc import Iterable

import dagster as dg

from deploy_assets.assets.partitions import release_partition_key
from deploy_assets.names import OPERATION_TAG, job_name, release_run_tags
from deploy_assets.tags import parse_tag


def release_check_keys(defs: dg.Definitions, env: str) -> set[dg.AssetCheckKey]:
    """The checks the env's release job runs."""
    return set(defs.resolve_job_def(job_name(env)).asset_layer.asset_graph.asset_check_keys)


def rerun_checks(
    defs: dg.Definitions, instance: dg.DagsterInstance, tag: str, names: Iterable[str] | None = None
) -> dg.ExecuteInProcessResult:
    """Run the release's checks (or those named) for its partition; nothing is materialized."""
    release = parse_tag(tag)
    wanted = set(names or ())
    keys = {k for k in release_check_keys(defs, release.env) if not wanted or k.name in wanted}
    job = defs.resolve_job_def(job_name(release.env)).get_subset(
        asset_selection=set(), asset_check_selection=keys
    )
    return job.execute_in_process(
        instance=instance,
        partition_key=release_partition_key(release.env, tag),
        raise_on_error=False,
        tags=release_run_tags(release.env, tag, **{OPERATION_TAG: "recheck"}),
    )
