"""What a release did, read back from the Dagster instance, as one row per service: its bytes,
where they went, and how many checks of the checklist passed on them (the CLI prints them)."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from deploy_assets.records.history import GITOPS_KEY, asset_key_for, latest_for_partition
from deploy_assets.records.lineage import check_results


@dataclass(frozen=True)
class ServiceRow:
    service: str
    kind: str
    sha256: str
    image: str
    s3_key: str
    gitops_commit: str
    reused_from: str
    checks: str  # "passed/total" of the checklist on the service's binary, image and S3 objects


def release_rows(
    instance: dg.DagsterInstance,
    partition: str,
    services: list[str],
    primary_platform: str = "arm64",
) -> list[ServiceRow]:
    bump = latest_for_partition(instance, GITOPS_KEY, partition)
    gitops_commit = str(bump.metadata.get("gitops_commit", "")) if bump else ""
    rows = []
    for name in services:
        binary = latest_for_partition(instance, asset_key_for("binary", name), partition)
        if binary is None:
            continue
        image = latest_for_partition(instance, asset_key_for("image", name), partition)
        s3 = latest_for_partition(instance, asset_key_for("s3", name), partition)
        checks = check_results(
            instance, [asset_key_for(p, name) for p in ("binary", "image", "s3")], partition
        )
        rows.append(
            ServiceRow(
                service=name,
                kind=str(binary.metadata.get("kind", "")),
                sha256=str(binary.metadata.get(f"sha256_{primary_platform}", "")),
                image=str(image.metadata.get("image", "")) if image else "-",
                s3_key=str(s3.metadata.get(f"s3_key_{primary_platform}", "")) if s3 else "-",
                gitops_commit=gitops_commit[:12] if gitops_commit else "-",
                reused_from=str(
                    binary.metadata.get("reused_from")
                    or (image.metadata.get("reused_from") if image else "")
                    or ""
                ),
                checks=f"{sum(c['status'] == 'PASSED' for c in checks.values())}/{len(checks)}",
            )
        )
    return rows


def service_names(defs: dg.Definitions) -> list[str]:
    """Services the loaded code location has binary assets for (no git I/O: the defs know them)."""
    return sorted(
        {
            k.path[-1]
            for k in defs.resolve_asset_graph().get_all_asset_keys()
            if k.path[0] == "binary"
        }
    )
