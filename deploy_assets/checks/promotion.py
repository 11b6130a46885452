"""Checklist: "never production without staging validation", verified on the bytes — a promoted
prod release serves exactly the image digests and S3 bytes of the staging release that
validated it (the rc named by the promotion gate).

Only what staging ships too is compared (prod alone builds lambdas and CLIs): the release
matrix's promoted images and uploads. These checks run in the prod job only; dev and staging
have nothing to be promoted from.
Blocking: prod's GitOps repo is not bumped to bytes staging never ran.
"""

import dagster as dg

from deploy_assets.checks.base import (
    check_spec,
    evaluate_concurrently,
    not_recorded,
    recorded,
    release_of,
    result,
)
from deploy_assets.checks.images import image_name
from deploy_assets.matrix import EnvMatrix
from deploy_assets.names import (
    PROMOTED_FROM,
    PROMOTION_CHECK,
    SOURCE_KEY,
    artifact_key,
    image_key,
    partition_key,
)
from deploy_assets.plan import Service
from deploy_assets.resources.registry import RegistryResource


def promotion_check_keys(promoted: EnvMatrix) -> dict[dg.AssetCheckKey, tuple[str, Service]]:
    """Check key -> (what is compared, service): the images and objects the promoted env ships
    that the env it promotes from ships too (the release matrix says which)."""
    by_check = {
        dg.AssetCheckKey(image_key(s), PROMOTION_CHECK): ("image", s)
        for s in promoted.promoted_images
    }
    return by_check | {
        dg.AssetCheckKey(artifact_key(s), PROMOTION_CHECK): ("s3", s)
        for s in promoted.promoted_uploads
    }


def _compare(
    kind: str, prod: dict, staging: dict, platforms: list[str], registry: RegistryResource
) -> tuple[list[str], dict]:
    if kind == "image":
        name, tag = image_name(prod["ref"])
        served = registry.manifest_digest(name, tag)
        problems = (
            []
            if served == staging["digest"]
            else [
                f"{prod['ref']} is served with {served}, staging {staging['ref']} validated {staging['digest']}"
            ]
        )
        return problems, {
            "prod_digest": served or "",
            "staging_digest": staging["digest"],
            "staging_ref": staging["ref"],
        }
    problems, metadata = [], {}
    for p in platforms:
        metadata[f"prod_sha256_{p}"], metadata[f"staging_sha256_{p}"] = (
            prod[f"sha256_{p}"],
            staging[f"sha256_{p}"],
        )
        if prod[f"sha256_{p}"] != staging[f"sha256_{p}"]:
            problems.append(
                f"{prod[f'uri_{p}']} has sha256 {prod[f'sha256_{p}']}, staging "
                f"{staging[f'uri_{p}']} validated {staging[f'sha256_{p}']}"
            )
    return problems, metadata


def _evaluate(
    context: dg.AssetCheckExecutionContext,
    check_key: dg.AssetCheckKey,
    thing: tuple[str, Service],
    source: dict,
    platforms: list[str],
    registry: RegistryResource,
) -> dg.AssetCheckResult:
    """One promoted image or object against the record of the release it was promoted from."""
    kind, service = thing
    _, tag, partition = release_of(context)
    staging_tag = source.get("staging_release") or ""
    prod = recorded(context, check_key.asset_key, partition)
    if prod is None:
        return not_recorded(check_key, partition)
    if not staging_tag:
        gate = source.get("promotion_gate", "no gate record")
        problem = f"{tag} was released without a staging release ({gate})"
        return result(check_key, [problem], {}, "", severity=dg.AssetCheckSeverity.WARN)
    staging = recorded(context, check_key.asset_key, partition_key(PROMOTED_FROM, staging_tag))
    if staging is None:
        what = check_key.asset_key.to_user_string()
        return result(check_key, [f"staging release {staging_tag} has no record of {what}"], {}, "")
    problems, metadata = _compare(kind, prod, staging, platforms, registry)
    return result(
        check_key,
        problems,
        {"staging_release": staging_tag, **metadata},
        f"{service.name}: same {kind} bytes as staging {staging_tag}",
    )


def build_promotion_checks(promoted: EnvMatrix) -> dg.AssetChecksDefinition:
    by_check = promotion_check_keys(promoted)
    platforms = list(promoted.platforms)
    specs = [
        check_spec(
            k.asset_key,
            PROMOTION_CHECK,
            f"{promoted.env} {kind} of {s.name} is the {PROMOTED_FROM} release's bytes",
            blocking=True,
        )
        for k, (kind, s) in by_check.items()
    ]

    @dg.multi_asset_check(name="promotion_checks", can_subset=True, specs=specs)
    def promotion_checks(context: dg.AssetCheckExecutionContext, registry: RegistryResource):
        _, _, partition = release_of(context)
        source = recorded(context, SOURCE_KEY, partition) or {}

        def evaluate(check_key, thing) -> dg.AssetCheckResult:
            return _evaluate(context, check_key, thing, source, platforms, registry)

        yield from evaluate_concurrently(context, by_check, evaluate)

    return promotion_checks
