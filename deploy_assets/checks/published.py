"""The deploy gate: a step that changes an environment first proves, against the registry and
the bucket themselves, that everything it is about to point to was published for this release.

Blocking asset checks only gate steps inside the run that executed them. A run launched from
the UI (one asset alone), a backfill or a re-execution may hold nothing but the GitOps bump, so
the bump would otherwise move an env to images that were never pushed. The gate therefore reads
this partition's recorded facts (image digests, S3 keys and sha256s) from the instance and asks
the registry and S3 whether they serve exactly those, whichever run it is in and however it was
launched. Anything missing or different refuses the step before it changes anything.

It asks with HEAD requests only (no download): the blocking checks hashed the bytes when they
were published; the gate proves they are still there, unchanged, under this release's names.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg

from deploy_assets.checks.images import image_problem
from deploy_assets.records.history import latest_for_partition
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Error, S3Resource

GATE_CONCURRENCY = 8


class NotPublished(RuntimeError):
    """Something the env would point to is not published as recorded; the message lists it."""


@dataclass(frozen=True)
class RecordedObject:
    """One S3 object as its release recorded it."""

    asset: str
    key: str
    sha256: str
    size: int | None


def recorded_objects(asset: str, metadata: dict) -> list[RecordedObject]:
    """The S3 objects an s3/* materialization recorded: per-platform binaries, or one object."""
    objects = [
        RecordedObject(
            asset,
            str(metadata[k]),
            str(metadata.get("sha256_" + k.removeprefix("s3_key_"), "")),
            _int(metadata.get("size_" + k.removeprefix("s3_key_"))),
        )
        for k in sorted(metadata)
        if k.startswith("s3_key_")
    ]
    if "s3_key" in metadata:
        objects.append(
            RecordedObject(
                asset,
                str(metadata["s3_key"]),
                str(metadata.get("sha256", "")),
                _int(metadata.get("size")),
            )
        )
    return objects


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) or str(value or "").isdigit() else None


def object_mismatch(recorded: RecordedObject, served) -> str | None:
    """Why the served object (an S3Object, or None when absent) is not the recorded one."""
    uri = f"{recorded.asset} ({recorded.key})"
    if served is None:
        return f"{uri} is not in the bucket"
    if recorded.size is not None and served.size != recorded.size:
        return f"{uri} has {served.size} bytes, not the recorded {recorded.size}"
    if served.sha256 and recorded.sha256 and served.sha256 != recorded.sha256:
        return f"{uri} has sha256 {served.sha256}, not the recorded {recorded.sha256}"
    return None


def _image_check(
    instance, registry: RegistryResource, partition: str, key: dg.AssetKey
) -> Callable[[], str | None]:
    def check() -> str | None:
        image = latest_for_partition(instance, key, partition)
        if image is None:
            return f"{key.to_user_string()} was never published for {partition}"
        problem, _ = image_problem(
            registry, str(image.metadata["ref"]), str(image.metadata["digest"])
        )
        return problem

    return check


def _object_checks(
    instance, s3: S3Resource, partition: str, key: dg.AssetKey
) -> list[Callable[[], str | None]]:
    stored = latest_for_partition(instance, key, partition)
    if stored is None:
        return [lambda: f"{key.to_user_string()} was never uploaded for {partition}"]

    def check(obj: RecordedObject) -> str | None:
        try:
            return object_mismatch(obj, s3.head(obj.key))
        except S3Error as exc:
            return f"{obj.asset}: cannot ask S3: {exc}"

    return [
        lambda obj=obj: check(obj)
        for obj in recorded_objects(key.to_user_string(), stored.metadata)
    ]


def unpublished(
    instance: dg.DagsterInstance,
    registry: RegistryResource,
    s3: S3Resource,
    partition: str,
    images: list[dg.AssetKey],
    objects: list[dg.AssetKey],
) -> list[str]:
    """Every recorded image / S3 object of the partition that the registry / bucket does not
    serve as recorded, and every one that was never recorded at all. Empty: safe to deploy."""
    checks = [_image_check(instance, registry, partition, key) for key in images]
    for key in objects:
        checks += _object_checks(instance, s3, partition, key)
    with ThreadPoolExecutor(max_workers=GATE_CONCURRENCY) as pool:
        return [problem for problem in pool.map(lambda check: check(), checks) if problem]


def require_published(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    s3: S3Resource,
    partition: str,
    images: list[dg.AssetKey],
    objects: list[dg.AssetKey],
    what: str,
) -> None:
    """Refuse `what` (the env change about to happen) unless everything it points to is published."""
    problems = unpublished(context.instance, registry, s3, partition, images, objects)
    if problems:
        raise NotPublished(
            f"{what} refused, nothing changed: {len(problems)} artifact(s) of {partition} are not "
            "published as recorded: "
            + "; ".join(problems)
            + ". Materialize the release's images and artifacts (the whole release job) first."
        )
    context.log.info(
        f"deploy gate: {len(images)} image(s) and the S3 objects of {len(objects)} asset(s) of "
        f"{partition} are published as recorded"
    )
