"""Checklist: "verify images pushed" — every image tag of the release is served by the registry
with exactly the digest the release recorded.

The registry is asked, not our records: a tag that was deleted, or re-pushed with other bytes,
fails here. Blocking: the GitOps bump never points an env at an image that is not there.
"""

import dagster as dg

from deploy_assets.assets.links import registry_url, url_or_text
from deploy_assets.checks.base import (
    check_spec,
    evaluate_concurrently,
    not_recorded,
    recorded,
    release_of,
    result,
)
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import IMAGE_CHECK, image_key
from deploy_assets.resources.registry import RegistryError, RegistryResource


def image_name(ref: str) -> tuple[str, str]:
    """(repository name, tag) of 'host[:port]/name:tag'."""
    repository, _, tag = ref.rpartition(":")
    return repository.split("/", 1)[1], tag


def image_problem(
    registry: RegistryResource, ref: str, recorded_digest: str
) -> tuple[str | None, str | None]:
    """(problem or None, the digest the registry serves now) for one recorded image."""
    name, tag = image_name(ref)
    try:
        served = registry.manifest_digest(name, tag)
    except RegistryError as exc:
        return f"{ref}: registry unreachable: {exc}", None
    if served is None:
        return f"{ref} is not in the registry (recorded digest {recorded_digest})", None
    if served != recorded_digest:
        return f"{ref} is served with digest {served}, not the recorded {recorded_digest}", served
    return None, served


def build_image_checks(matrix: ReleaseMatrix) -> dg.AssetChecksDefinition:
    """A check on every image asset (a service whose kind has a Dockerfile template)."""
    by_check = {dg.AssetCheckKey(image_key(s), IMAGE_CHECK): s for s in matrix.imaged}

    @dg.multi_asset_check(
        name="image_checks",
        can_subset=True,
        specs=[
            check_spec(
                k.asset_key,
                IMAGE_CHECK,
                f"{s.name}:<version> is served by the registry with the recorded digest",
                blocking=True,
            )
            for k, s in by_check.items()
        ],
    )
    def image_checks(context: dg.AssetCheckExecutionContext, registry: RegistryResource):
        _, _, partition = release_of(context)

        def evaluate(check_key: dg.AssetCheckKey, _service) -> dg.AssetCheckResult:
            image = recorded(context, check_key.asset_key, partition)
            if image is None:
                return not_recorded(check_key, partition)
            problem, served = image_problem(registry, image["ref"], image["digest"])
            name, tag = image_name(image["ref"])
            return result(
                check_key,
                [problem] if problem else [],
                {
                    "ref": image["ref"],
                    "recorded_digest": image["digest"],
                    "registry_digest": served or "",
                    "registry": url_or_text(
                        registry_url(registry.host, name, image["digest"]), registry.host
                    ),
                },
                f"{image['ref']} served with {served}",
            )

        yield from evaluate_concurrently(context, by_check, evaluate)

    return image_checks
