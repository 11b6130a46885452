"""What every check of the deployment checklist shares: partitioned specs, the release being
checked, and the facts its assets recorded.

Checks are partitioned like the assets (env × version), so a check result belongs to one
release and the UI shows it on that release's partition page. A check compares what the
external system reports *now* with what the release recorded, never the record with itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from deploy_assets.assets.partitions import release_partitions
from deploy_assets.names import partition_key, split_partition_key
from deploy_assets.records.history import latest_for_partition


def check_spec(
    asset_key: dg.AssetKey, name: str, description: str, blocking: bool
) -> dg.AssetCheckSpec:
    # Partitioned checks are a preview feature in Dagster 1.13; we rely on it on purpose (a result
    # per release), so its warning is silenced here instead of on every code-location load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name,
            asset=asset_key,
            description=description,
            blocking=blocking,
            partitions_def=release_partitions,
        )


def release_of(context: dg.AssetCheckExecutionContext) -> tuple[str, str, str]:
    """(env, tag, partition) of the release the run checks."""
    env, tag = split_partition_key(context.partition_key)
    return env, tag, partition_key(env, tag)


def recorded(
    context: dg.AssetCheckExecutionContext, key: dg.AssetKey, partition: str
) -> dict | None:
    """Metadata of the asset's latest materialization for this release, or None."""
    found = latest_for_partition(context.instance, key, partition)
    return found.metadata if found else None


def selected(
    context: dg.AssetCheckExecutionContext, by_key: dict
) -> Iterable[tuple[dg.AssetCheckKey, object]]:
    """(check key, the thing it checks) for the checks this run selected, in a stable order."""
    for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.to_user_string()):
        if check_key in by_key:
            yield check_key, by_key[check_key]


CHECK_CONCURRENCY = 8  # checks of one step asked of the registry / S3 / disk at once


def evaluate_concurrently(
    context: dg.AssetCheckExecutionContext,
    by_key: dict,
    evaluate: Callable[[dg.AssetCheckKey, object], dg.AssetCheckResult],
) -> Iterator[dg.AssetCheckResult]:
    """evaluate(check key, thing) for each selected check, several at once, yielded in order.

    A check mostly waits on a registry, an S3 download or a record read; a release has one per
    service, so asking one at a time made the checklist the slowest part of a promotion."""
    work = list(selected(context, by_key))
    with ThreadPoolExecutor(max_workers=CHECK_CONCURRENCY) as pool:
        yield from pool.map(lambda item: evaluate(*item), work)


def not_recorded(check_key: dg.AssetCheckKey, partition: str) -> dg.AssetCheckResult:
    """The asset was not materialized for this release: nothing to verify, which is a failure."""
    what = check_key.asset_key.to_user_string()
    return dg.AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=False,
        description=f"{what} has no materialization for {partition}: nothing recorded to verify",
    )


def result(
    check_key: dg.AssetCheckKey,
    problems: list[str],
    metadata: dict,
    passed_text: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """A result whose description is the problems found (or what was verified)."""
    return dg.AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=not problems,
        severity=severity,
        metadata=metadata,
        description="; ".join(problems) if problems else passed_text,
    )
