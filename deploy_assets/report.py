"""What a release did, read back from the Dagster instance, as rows for the CLI and the demo:
per service its bytes, where they went, and how many checks of the checklist passed on them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import dagster as dg

from deploy_assets.history import GITOPS_KEY, asset_key_for, latest_for_partition
from deploy_assets.lineage import check_results


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


def release_rows(instance: dg.DagsterInstance, partition: str, services: list[str],
                 primary_platform: str = "arm64") -> list[ServiceRow]:
    bump = latest_for_partition(instance, GITOPS_KEY, partition)
    gitops_commit = str(bump.metadata.get("gitops_commit", "")) if bump else ""
    rows = []
    for name in services:
        binary = latest_for_partition(instance, asset_key_for("binary", name), partition)
        if binary is None:
            continue
        image = latest_for_partition(instance, asset_key_for("image", name), partition)
        s3 = latest_for_partition(instance, asset_key_for("s3", name), partition)
        checks = check_results(instance, [asset_key_for(p, name) for p in ("binary", "image", "s3")], partition)
        rows.append(ServiceRow(
            service=name, kind=str(binary.metadata.get("kind", "")),
            sha256=str(binary.metadata.get(f"sha256_{primary_platform}", "")),
            image=str(image.metadata.get("image", "")) if image else "-",
            s3_key=str(s3.metadata.get(f"s3_key_{primary_platform}", "")) if s3 else "-",
            gitops_commit=gitops_commit[:12] if gitops_commit else "-",
            reused_from=str(binary.metadata.get("reused_from") or (image.metadata.get("reused_from") if image else "") or ""),
            checks=f"{sum(c['status'] == 'PASSED' for c in checks.values())}/{len(checks)}",
        ))
    return rows


def service_names(defs: dg.Definitions) -> list[str]:
    """Services the loaded code location has binary assets for (no git I/O: the defs know them)."""
    return sorted({k.path[-1] for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "binary"})


def format_table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns),
             "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def format_release(rows: list[ServiceRow]) -> str:
    data = [asdict(r) | {"sha256": r.sha256[:16] + "…" if r.sha256 else ""} for r in rows]
    return format_table(data, ["service", "kind", "sha256", "image", "s3_key", "gitops_commit", "reused_from",
                                "checks"])
