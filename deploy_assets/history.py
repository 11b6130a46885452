"""What earlier releases did, read from Dagster's own event log.

The instance is the release record: the promotion gate asks it which staging releases
succeeded, and a build asks it whether its content key was already built, pushed or uploaded
(and by which release), so reuse works across processes and machines sharing the instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

from deploy_assets.plan import StagingRecord

GITOPS_KEY = dg.AssetKey("gitops_bump")
HISTORY_LIMIT = 500


def asset_key_for(prefix: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([prefix, name.replace("-", "_").replace(".", "_")])


@dataclass(frozen=True)
class PastMaterialization:
    partition: str
    run_id: str
    timestamp: float
    metadata: dict[str, Any]


def materializations(instance: dg.DagsterInstance, key: dg.AssetKey,
                     partitions: list[str] | None = None, limit: int = HISTORY_LIMIT) -> list[PastMaterialization]:
    """Newest first."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=limit)
    out = []
    for record in result.records:
        mat = record.asset_materialization
        if mat is None:
            continue
        out.append(PastMaterialization(
            partition=mat.partition or "", run_id=record.run_id, timestamp=record.timestamp,
            metadata={k: v.value for k, v in mat.metadata.items()},
        ))
    return out


def staging_records(instance: dg.DagsterInstance) -> list[StagingRecord]:
    """Staging releases whose last stage (the GitOps bump) materialized."""
    return [
        StagingRecord(tag=m.partition.split("|", 1)[1], commit=str(m.metadata.get("commit", "")))
        for m in materializations(instance, GITOPS_KEY)
        if m.partition.startswith("staging|")
    ]


def find_by_content_key(instance: dg.DagsterInstance, key: dg.AssetKey, metadata_field: str,
                        content_key: str, prefer_partition: str | None = None,
                        exclude_partition: str | None = None) -> PastMaterialization | None:
    """The newest materialization of key whose content key matches (a staging one first if asked)."""
    matches = [m for m in materializations(instance, key)
               if m.metadata.get(metadata_field) == content_key and m.partition != exclude_partition]
    preferred = [m for m in matches if m.partition == prefer_partition]
    return (preferred or matches or [None])[0]


def latest_for_partition(instance: dg.DagsterInstance, key: dg.AssetKey,
                         partition: str) -> PastMaterialization | None:
    found = materializations(instance, key, partitions=[partition], limit=1)
    return found[0] if found else None
