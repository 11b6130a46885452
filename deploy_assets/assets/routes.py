"""Routes of every microservice, from swag-style `// @Router /path [method]` annotations.

The old workflow ran swag's route parser as its first step; the routes feed the GitOps bump
(updatesRoutes) and the API-gateway update, so they are parsed once per release into one file.
"""

import json
import re
from pathlib import Path

import dagster as dg

from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.config import Settings
from deploy_assets.matrix import routed_services
from deploy_assets.names import ROUTES_KEY, SOURCE_KEY

_ROUTER = re.compile(r"^\s*//\s*@Router\s+(\S+)\s+\[(\w+)\]\s*$", re.MULTILINE)


def parse_routes(service_dir: Path) -> list[dict[str, str]]:
    """(method, path) pairs of one service's annotations, sorted and de-duplicated."""
    found = set()
    for file in sorted(service_dir.rglob("*.go")):
        if file.name.endswith("_test.go"):
            continue
        for path, method in _ROUTER.findall(file.read_text(errors="replace")):
            found.add((method.upper(), path))
    return [{"method": m, "path": p} for m, p in sorted(found, key=lambda r: (r[1], r[0]))]


def build_routes_asset(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        key=ROUTES_KEY,
        deps=[SOURCE_KEY],
        partitions_def=release_partitions,
        group_name="release",
        kinds={"json"},
        description="routes.json: every @Router annotation of every microservice.",
    )
    def routes(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        workspace, _ = ReleaseWorkspace.for_context(context, settings.work_dir)
        module_dir = Path(workspace.source()["module_dir"])
        table = []
        for service in routed_services(workspace.services()):
            for route in parse_routes(module_dir / service.path):
                table.append({"service": service.name, **route})
            if not any(r["service"] == service.name for r in table):
                context.log.warning(f"{service.name}: no @Router annotation found")
        out = workspace.routes_file()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(table, indent=2) + "\n")
        per_service = {}
        for row in table:
            per_service[row["service"]] = per_service.get(row["service"], 0) + 1
        return dg.MaterializeResult(
            metadata={
                "routes": len(table),
                "routes_per_service": per_service,
                "path": dg.MetadataValue.path(str(out)),
                "preview": dg.MetadataValue.md(
                    "\n".join(
                        ["| service | method | path |", "|---|---|---|"]
                        + [f"| {r['service']} | {r['method']} | `{r['path']}` |" for r in table]
                    )
                ),
            }
        )

    return routes
