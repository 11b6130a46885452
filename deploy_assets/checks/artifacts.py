"""Checklist: "check S3 artifacts uploaded" — every object of the release is in the bucket,
non-empty, and its bytes hash to the sha256 of the binary that was built.

The object is downloaded and hashed: the sha256 in the object's own metadata is what we wrote,
so it cannot tell that someone overwrote the bytes. Blocking: no GitOps bump after a bad upload.
"""

import dagster as dg

from deploy_assets.assets.links import s3_url, url_or_text
from deploy_assets.checks.base import (
    check_spec,
    evaluate_concurrently,
    not_recorded,
    recorded,
    release_of,
    result,
)
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import (
    MANIFEST_KEY,
    OBJECT_CHECK,
    RECORD_CHECK,
    ROUTES_OBJECT_KEY,
    artifact_key,
    binary_key,
)
from deploy_assets.plan import Service
from deploy_assets.resources.s3 import S3Error, S3Resource


def object_problem(s3: S3Resource, key: str, expected_sha256: str) -> tuple[str | None, str, int]:
    """(problem or None, sha256 of the bytes served, size) for one object."""
    uri = s3.uri(key)
    if s3.head(key) is None:
        return f"{uri} is missing", "", 0
    try:
        sha256, size = s3.download_sha256(key)
    except S3Error as exc:
        return f"{uri}: download failed: {exc}", "", 0
    if size == 0:
        return f"{uri} is empty", sha256, size
    if sha256 != expected_sha256:
        return f"{uri} has sha256 {sha256}, not the expected {expected_sha256}", sha256, size
    return None, sha256, size


def _verify(s3: S3Resource, pairs: list[tuple[str, str, str]]) -> tuple[list[str], dict]:
    """Check (label, key, expected sha256) triples; problems and per-object metadata."""
    problems, metadata = [], {}
    for label, key, expected in pairs:
        problem, sha256, size = object_problem(s3, key, expected)
        if problem:
            problems.append(problem)
        metadata[f"{label}_sha256"] = sha256
        metadata[f"{label}_size"] = size
        metadata[f"{label}_object"] = url_or_text(
            s3_url(s3.bucket, key, s3.region, s3.endpoint_url), s3.uri(key)
        )
    return problems, metadata


def _record_objects(asset_key: dg.AssetKey, stored: dict) -> list[tuple[str, str, str]]:
    """Objects whose expected bytes are their own record (routes.json, manifest.json, checksums.txt)."""
    if asset_key == MANIFEST_KEY:
        return [
            (name, stored[f"{name}_key"], stored[f"{name}_sha256"])
            for name in ("manifest", "checksums")
        ]
    return [("routes", stored["s3_key"], stored["sha256"])]


def _specs(by_check: dict[dg.AssetCheckKey, Service | None]) -> list[dg.AssetCheckSpec]:
    specs = [
        check_spec(
            k.asset_key, k.name, f"s3 objects of {s.name} hold the built binary's bytes", True
        )
        for k, s in by_check.items()
        if s is not None
    ]
    return specs + [
        check_spec(
            ROUTES_OBJECT_KEY, RECORD_CHECK, "routes.json in S3 holds the recorded bytes", True
        ),
        check_spec(
            MANIFEST_KEY,
            RECORD_CHECK,
            "manifest.json and checksums.txt hold the recorded bytes",
            False,
        ),
    ]


def _evaluate(
    context: dg.AssetCheckExecutionContext,
    s3: S3Resource,
    check_key: dg.AssetCheckKey,
    service: Service | None,
    platforms: tuple[str, ...],
) -> dg.AssetCheckResult:
    """A service's objects against its built binary; a record object against its own record."""
    _, _, partition = release_of(context)
    stored = recorded(context, check_key.asset_key, partition)
    if stored is None:
        return not_recorded(check_key, partition)
    if service is None:
        pairs = _record_objects(check_key.asset_key, stored)
        problems, metadata = _verify(s3, pairs)
        return result(
            check_key, problems, metadata, f"{len(pairs)} object(s) hold the recorded bytes"
        )
    binary = recorded(context, binary_key(service), partition)
    if binary is None:
        problem = (
            f"binary/{service.name} has no materialization for {partition}: "
            "no built sha256 to compare with"
        )
        return result(check_key, [problem], {}, "")
    pairs = [(p, stored[f"s3_key_{p}"], binary[f"sha256_{p}"]) for p in platforms]
    problems, metadata = _verify(s3, pairs)
    done = f"{len(pairs)} object(s) hold the built bytes of {service.name}"
    return result(check_key, problems, metadata, done)


def build_artifact_checks(matrix: ReleaseMatrix) -> dg.AssetChecksDefinition:
    by_check: dict[dg.AssetCheckKey, Service | None] = {
        dg.AssetCheckKey(artifact_key(s), OBJECT_CHECK): s for s in matrix.services
    }
    by_check[dg.AssetCheckKey(ROUTES_OBJECT_KEY, RECORD_CHECK)] = None
    by_check[dg.AssetCheckKey(MANIFEST_KEY, RECORD_CHECK)] = None

    @dg.multi_asset_check(name="artifact_checks", can_subset=True, specs=_specs(by_check))
    def artifact_checks(context: dg.AssetCheckExecutionContext, s3: S3Resource):
        def evaluate(check_key, service) -> dg.AssetCheckResult:
            return _evaluate(context, s3, check_key, service, matrix.platforms)

        yield from evaluate_concurrently(context, by_check, evaluate)

    return artifact_checks
