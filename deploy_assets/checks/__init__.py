"""The old system's manual release checklist as Dagster asset checks, one concern per module.

"verify images pushed" (images), "check S3 artifacts uploaded" (artifacts), "verify GitOps
deployment completed" (gitops), the toolchain pin (toolchain), the routes step (routes) and
"never production without staging validation" on the bytes (promotion).
"""

from __future__ import annotations

import dagster as dg

from deploy_assets.checks.artifacts import OBJECT_CHECK, RECORD_CHECK, build_artifact_checks
from deploy_assets.checks.gitops import GITOPS_CHECK, build_gitops_check
from deploy_assets.checks.images import IMAGE_CHECK, build_image_checks
from deploy_assets.checks.promotion import PROMOTION_CHECK, build_promotion_checks, promotion_check_keys
from deploy_assets.checks.routes import ROUTES_CHECK, build_routes_check
from deploy_assets.checks.toolchain import TOOLCHAIN_CHECK, build_toolchain_checks
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.plan import Service

# asset key prefix -> the checks on assets under it (lineage reads results without definitions)
CHECK_NAMES: dict[str, tuple[str, ...]] = {
    "binary": (TOOLCHAIN_CHECK,),
    "image": (IMAGE_CHECK, PROMOTION_CHECK),
    "s3": (OBJECT_CHECK, RECORD_CHECK, PROMOTION_CHECK),
    "routes": (ROUTES_CHECK,),
    "gitops_bump": (GITOPS_CHECK,),
}


def build_release_checks(services: list[Service], config: PipelineConfig,
                         settings: Settings) -> list[dg.AssetChecksDefinition]:
    checks = [build_artifact_checks(services, config), build_routes_check(settings),
              build_gitops_check(config)]
    if services:
        checks += [build_toolchain_checks(services, config, settings)]
    if any(config.source.kinds[s.kind].dockerfile for s in services):
        checks.append(build_image_checks(services, config))
    if promotion_check_keys(services, config):
        checks.append(build_promotion_checks(services, config))
    return checks
