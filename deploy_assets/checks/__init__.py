"""The old system's manual release checklist as Dagster asset checks, one concern per module.

"verify images pushed" (images), "check S3 artifacts uploaded" (artifacts), "verify GitOps
deployment completed" (gitops), the toolchain pin (toolchain), the routes step (routes) and
"never production without staging validation" on the bytes (promotion).
"""

from __future__ import annotations

import dagster as dg

from deploy_assets.checks.artifacts import build_artifact_checks
from deploy_assets.checks.gitops import build_gitops_check
from deploy_assets.checks.images import build_image_checks
from deploy_assets.checks.promotion import build_promotion_checks, promotion_check_keys
from deploy_assets.checks.routes import build_routes_check
from deploy_assets.checks.toolchain import build_toolchain_checks
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import (
    GITOPS_CHECK,
    IMAGE_CHECK,
    OBJECT_CHECK,
    PROMOTION_CHECK,
    RECORD_CHECK,
    ROUTES_CHECK,
    TOOLCHAIN_CHECK,
)

# asset key prefix -> the checks on assets under it (lineage reads results without definitions)
CHECK_NAMES: dict[str, tuple[str, ...]] = {
    "binary": (TOOLCHAIN_CHECK,),
    "image": (IMAGE_CHECK, PROMOTION_CHECK),
    "s3": (OBJECT_CHECK, RECORD_CHECK, PROMOTION_CHECK),
    "routes": (ROUTES_CHECK,),
    "gitops_bump": (GITOPS_CHECK,),
}


def build_release_checks(
    matrix: ReleaseMatrix, config: PipelineConfig, settings: Settings
) -> list[dg.AssetChecksDefinition]:
    """Every check of the code location; each env's job selects the ones the matrix applies."""
    checks = [
        build_artifact_checks(matrix),
        build_routes_check(settings),
        build_gitops_check(config),
    ]
    if matrix.services:
        checks += [build_toolchain_checks(list(matrix.services), config, settings)]
    if matrix.imaged:
        checks.append(build_image_checks(matrix))
    if matrix.promotion is not None and promotion_check_keys(matrix.promotion):
        checks.append(build_promotion_checks(matrix.promotion))
    return checks
