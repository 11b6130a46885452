"""What earlier releases did, read from Dagster's own event log.

The instance is the release record: the promotion gate asks it which staging releases
succeeded, and a build asks it whether its content key was already built, pushed or uploaded
(and by which release), so reuse works across processes and machines sharing the instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

from deploy_assets.names import GITOPS_KEY, asset_key_for  # noqa: F401 (re-exported)
from deploy_assets.plan import StagingRecord

HISTORY_LIMIT = 500


@dataclass(frozen=True)
class PastMaterialization:
    partition: str
    run_id: str
    timestamp: float
    metadata: dict[str, Any]


def materializations(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    partitions: list[str] | None = None,
    limit: int = HISTORY_LIMIT,
) -> list[PastMaterialization]:
    """Newest first."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=limit
    )
    out = []
    for record in result.records:
        mat = record.asset_materialization
        if mat is None:
            continue
        out.append(
            PastMaterialization(
                partition=mat.partition or "",
                run_id=record.run_id,
                timestamp=record.timestamp,
                metadata={k: v.value for k, v in mat.metadata.items()},
            )
        )
    return out


def observations(
    instance: dg.DagsterInstance, key: dg.AssetKey, limit: int = HISTORY_LIMIT
) -> list[PastMaterialization]:
    """Observations of key (a rollback records one on the GitOps bump), newest first."""
    result = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=key), limit=limit)
    return [
        PastMaterialization(
            partition=obs.partition or "",
            run_id=record.run_id,
            timestamp=record.timestamp,
            metadata={k: v.value for k, v in obs.metadata.items()},
        )
        for record in result.records
        if (obs := record.asset_observation) is not None
    ]


def staging_records(instance: dg.DagsterInstance) -> list[StagingRecord]:
    """Staging releases whose last stage (the GitOps bump) materialized, each with how staging
    was later rolled back away from it, if it was and was not deployed again."""
    staging = [
        m for m in materializations(instance, GITOPS_KEY) if m.partition.startswith("staging|")
    ]
    rollbacks = [
        o
        for o in observations(instance, GITOPS_KEY)
        if o.partition.startswith("staging|") and "rollback_to" in o.metadata
    ]
    return standing(staging, rollbacks)


def standing(
    bumps: list[PastMaterialization], rollbacks: list[PastMaterialization]
) -> list[StagingRecord]:
    """Which staging releases the env still runs, from its bumps and rollbacks alone (pure).

    A version stands from its first bump (a re-run records `already_deployed_by_run` and moves
    nothing) or a rollback to it, until a rollback away from it (`rollback_from`); the newest of
    these events decides. A version the env was rolled away from and later rolled back to stands
    again.
    """
    arrived: dict[str, float] = {}
    for bump in bumps:
        tag = bump.partition.split("|", 1)[1]
        if not bump.metadata.get("already_deployed_by_run"):
            arrived[tag] = max(arrived.get(tag, 0.0), bump.timestamp)
    left: dict[str, PastMaterialization] = {}
    for rollback in rollbacks:
        to, away = (
            str(rollback.metadata.get("rollback_to", "")),
            str(rollback.metadata.get("rollback_from", "")),
        )
        arrived[to] = max(arrived.get(to, 0.0), rollback.timestamp)
        if away not in left or left[away].timestamp < rollback.timestamp:
            left[away] = rollback
    records, seen = [], set()
    for bump in bumps:  # newest first, one record per release
        tag = bump.partition.split("|", 1)[1]
        if tag in seen:
            continue
        seen.add(tag)
        gone = left.get(tag)
        why = (
            ""
            if gone is None or gone.timestamp < arrived.get(tag, 0.0)
            else (
                f"rolled back from {tag} to {gone.metadata.get('rollback_to')} by "
                f"{gone.metadata.get('rolled_back_by', '?')} at {gone.metadata.get('rolled_back_at', '?')} "
                f"(run {gone.run_id})"
            )
        )
        records.append(
            StagingRecord(tag=tag, commit=str(bump.metadata.get("commit", "")), rolled_back=why)
        )
    return records


def find_by_content_key(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    metadata_field: str,
    content_key: str,
    prefer_partition: str | None = None,
    exclude_partition: str | None = None,
) -> PastMaterialization | None:
    """The newest materialization of key whose content key matches (a staging one first if asked)."""
    matches = [
        m
        for m in materializations(instance, key)
        if m.metadata.get(metadata_field) == content_key and m.partition != exclude_partition
    ]
    preferred = [m for m in matches if m.partition == prefer_partition]
    return (preferred or matches or [None])[0]


def latest_for_partition(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str
) -> PastMaterialization | None:
    found = materializations(instance, key, partitions=[partition], limit=1)
    return found[0] if found else None
