"""Checklist: the routes were parsed — every microservice of the release has at least one
`@Router` route.

A microservice without routes is legal (a worker, a consumer) but is often a forgotten
annotation, which would silently drop it from the API gateway; so it is a WARN naming the
service, not a failure that stops the release.
"""

import json

import dagster as dg

from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.checks.base import check_spec, release_of
from deploy_assets.config import Settings
from deploy_assets.matrix import routed_services
from deploy_assets.names import ROUTES_CHECK, ROUTES_KEY


def services_without_routes(ms_names: list[str], table: list[dict]) -> list[str]:
    routed = {row["service"] for row in table}
    return sorted(name for name in ms_names if name not in routed)


def build_routes_check(settings: Settings) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name="routes_checks",
        specs=[
            check_spec(
                ROUTES_KEY,
                ROUTES_CHECK,
                "every microservice has at least one @Router route",
                blocking=False,
            )
        ],
    )
    def routes_checks(context: dg.AssetCheckExecutionContext):
        _, _, partition = release_of(context)
        workspace, _ = ReleaseWorkspace.for_context(context, settings.work_dir)
        ms_names = [s.name for s in routed_services(workspace.services())]
        table = json.loads(workspace.routes_file().read_text())
        missing = services_without_routes(ms_names, table)
        counts = {name: sum(1 for row in table if row["service"] == name) for name in ms_names}
        yield dg.AssetCheckResult(
            asset_key=ROUTES_KEY,
            check_name=ROUTES_CHECK,
            passed=not missing,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"routes_per_service": counts, "without_routes": missing},
            description=(
                f"no @Router route in {', '.join(missing)} ({partition})"
                if missing
                else f"{len(table)} routes across {len(ms_names)} microservices"
            ),
        )

    return routes_checks
