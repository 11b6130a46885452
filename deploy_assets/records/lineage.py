"""Lineage of a release, per service: tag → commit → binary sha256 per platform → image digest →
S3 key and checksum → GitOps commit → check results, and for prod the staging release that
validated the same bytes. And the reverse: which release a running image digest came from.

Recorded facts come from the Dagster instance; the registry digest and the S3 checksum are
asked of the registry and the bucket at the time of the question, next to what was recorded,
so the answer also says whether the artifacts are still what the release shipped.
"""

from __future__ import annotations

import dagster as dg

from deploy_assets.checks import CHECK_NAMES
from deploy_assets.checks.artifacts import object_problem
from deploy_assets.checks.images import image_name, image_problem
from deploy_assets.names import (
    GITOPS_KEY,
    MANIFEST_KEY,
    ROUTES_KEY,
    ROUTES_OBJECT_KEY,
    SOURCE_KEY,
    asset_key_for,
    partition_key,
)
from deploy_assets.records.history import latest_for_partition, materializations
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets.state.dagster_private import latest_check_executions
from deploy_assets.tags import parse_tag

HISTORY_LIMIT = 500


def check_results(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey], partition: str
) -> dict[str, dict]:
    """'asset:check' -> latest result for this release's partition."""
    check_keys = [
        dg.AssetCheckKey(k, name) for k in keys for name in CHECK_NAMES.get(k.path[0], ())
    ]
    records = latest_check_executions(instance, check_keys, partition)
    out = {}
    for check_key, record in sorted(records.items(), key=lambda kv: kv[0].to_user_string()):
        evaluation = (
            record.event.dagster_event.event_specific_data
            if record.event and record.event.dagster_event
            else None
        )
        passed = getattr(evaluation, "passed", None)
        out[check_key.to_user_string()] = {
            "status": "PASSED"
            if passed
            else ("FAILED" if passed is False else record.status.value),
            "severity": evaluation.severity.value
            if evaluation is not None and hasattr(evaluation, "severity")
            else "",
            "description": getattr(evaluation, "description", None) or "",
            "run_id": record.run_id,
        }
    return out


def rollbacks_touching(instance: dg.DagsterInstance, env: str, tag: str) -> list[dict]:
    """Rollbacks of env to or away from tag (observations the rollback job records)."""
    found = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=GITOPS_KEY), limit=HISTORY_LIMIT
    )
    out = []
    for record in found.records:
        obs = record.asset_observation
        meta = {k: v.value for k, v in obs.metadata.items()} if obs else {}
        if not obs or not (obs.partition or "").startswith(f"{env}|") or "rollback_to" not in meta:
            continue
        if tag in (meta["rollback_to"], meta.get("rollback_from")):
            out.append(
                {
                    "to": meta["rollback_to"],
                    "from": meta.get("rollback_from"),
                    "by": meta.get("rolled_back_by"),
                    "at": meta.get("rolled_back_at"),
                    "gitops_commit": meta.get("gitops_commit"),
                    "run_id": record.run_id,
                }
            )
    return out


def _service_lineage(
    instance,
    registry,
    s3,
    name: str,
    partition: str,
    bump: dict | None,
    staging_partition: str | None,
) -> dict | None:
    binary = latest_for_partition(instance, asset_key_for("binary", name), partition)
    if binary is None:
        return None
    meta = binary.metadata
    platforms = sorted(k.removeprefix("sha256_") for k in meta if k.startswith("sha256_"))
    entry: dict = {
        "kind": meta.get("kind"),
        "commit": meta.get("commit"),
        "toolchain": meta.get("toolchain"),
        "binaries": {
            p: {
                "sha256": meta[f"sha256_{p}"],
                "size": meta.get(f"size_{p}"),
                "reused_from": meta.get("reused_from") or None,
            }
            for p in platforms
        },
        "image": None,
        "s3": None,
        "gitops_commit": bump.get("gitops_commit")
        if bump and name in (bump.get("projects") or [])
        else None,
    }
    image = latest_for_partition(instance, asset_key_for("image", name), partition)
    entry["image"] = _image_view(registry, image.metadata) if image is not None else None
    stored = latest_for_partition(instance, asset_key_for("s3", name), partition)
    if stored is not None:
        entry["s3"] = _s3_view(s3, stored.metadata, meta, platforms)
    keys = [asset_key_for(prefix, name) for prefix in ("binary", "image", "s3")]
    entry["checks"] = check_results(instance, keys, partition)
    staging = _staging_view(instance, name, staging_partition, entry) if staging_partition else None
    if staging is not None:
        entry["staging"] = staging
    return entry


def _image_view(registry, recorded: dict) -> dict:
    """The image as recorded next to what the registry serves for its ref now."""
    problem, served = image_problem(registry, recorded["ref"], recorded["digest"])
    return {
        "ref": recorded["ref"],
        "recorded_digest": recorded["digest"],
        "registry_digest": served,
        "problem": problem,
        "reused_from": recorded.get("reused_from") or None,
    }


def _s3_view(s3, stored: dict, binary: dict, platforms: list[str]) -> dict:
    """Per platform, the object as recorded next to the bucket's copy, checked against the
    binary's sha256 (what the release built), not only the upload's record."""
    out = {}
    for p in platforms:
        key, recorded = stored[f"s3_key_{p}"], stored[f"sha256_{p}"]
        problem, sha256, size = object_problem(s3, key, binary[f"sha256_{p}"])
        out[p] = {
            "key": key,
            "uri": s3.uri(key),
            "recorded_sha256": recorded,
            "object_sha256": sha256 or None,
            "size": size,
            "problem": problem,
        }
    return out


def _staging_view(instance, name: str, staging_partition: str, prod: dict) -> dict | None:
    """What the staging release recorded for the service (None: staging does not ship it, e.g.
    lambdas and CLIs), and whether prod ships the same bytes."""
    image = latest_for_partition(instance, asset_key_for("image", name), staging_partition)
    binary = latest_for_partition(instance, asset_key_for("binary", name), staging_partition)
    if binary is None:
        return None
    view = {
        "release": staging_partition.split("|", 1)[1],
        "image_digest": image.metadata["digest"] if image else None,
        "sha256": {p: binary.metadata.get(f"sha256_{p}") for p in prod["binaries"]},
    }
    same_image = (
        view["image_digest"] == (prod["image"] or {}).get("recorded_digest")
        if prod["image"]
        else None
    )
    same_bytes = view["sha256"] == {p: b["sha256"] for p, b in prod["binaries"].items()}
    view["same_bytes"] = bool(same_bytes and same_image is not False)
    return view


def release_lineage(
    instance: dg.DagsterInstance, registry: RegistryResource, s3: S3Resource, tag: str
) -> dict:
    release = parse_tag(tag)
    partition = partition_key(release.env, tag)
    source = latest_for_partition(instance, SOURCE_KEY, partition)
    if source is None:
        raise LookupError(
            f"no release {partition} in the Dagster instance ({instance.root_directory})"
        )
    bump = latest_for_partition(instance, GITOPS_KEY, partition)
    manifest = latest_for_partition(instance, MANIFEST_KEY, partition)
    staging_tag = source.metadata.get("staging_release") or None
    staging_partition = f"staging|{staging_tag}" if release.is_prod and staging_tag else None
    services = {}
    for name in source.metadata.get("services") or []:
        entry = _service_lineage(
            instance,
            registry,
            s3,
            name,
            partition,
            bump.metadata if bump else None,
            staging_partition,
        )
        if entry is not None:
            services[name] = entry
    return {
        "tag": tag,
        "env": release.env,
        "commit": source.metadata.get("commit"),
        "toolchain": source.metadata.get("toolchain"),
        "release_run": source.run_id,
        "staging_release": staging_tag if release.is_prod else None,
        "promotion_gate": source.metadata.get("promotion_gate"),
        "gitops": {
            "repo": bump.metadata.get("repo"),
            "commit": bump.metadata.get("gitops_commit"),
            "run_id": bump.run_id,
            "targets": bump.metadata.get("targets") or [],
        }
        if bump
        else None,
        "manifest": {
            "key": manifest.metadata["manifest_key"],
            "sha256": manifest.metadata["manifest_sha256"],
            "checksums_key": manifest.metadata["checksums_key"],
        }
        if manifest
        else None,
        "services": services,
        "release_checks": check_results(
            instance, [ROUTES_KEY, GITOPS_KEY, ROUTES_OBJECT_KEY, MANIFEST_KEY], partition
        ),
        "rollbacks": rollbacks_touching(instance, release.env, tag),
    }


def digest_lineage(instance: dg.DagsterInstance, registry: RegistryResource, digest: str) -> dict:
    """Every release whose image has this digest (a promotion shares it), newest first."""
    found = []
    for key in instance.get_asset_keys(prefix=["image"]):
        seen = set()
        for image in materializations(instance, key):
            if image.metadata.get("digest") != digest or image.partition in seen:
                continue
            seen.add(image.partition)
            env, tag = image.partition.split("|", 1)
            name, _ = image_name(image.metadata["ref"])
            binary = latest_for_partition(instance, asset_key_for("binary", name), image.partition)
            bump = latest_for_partition(instance, GITOPS_KEY, image.partition)
            found.append(
                {
                    "service": name,
                    "env": env,
                    "tag": tag,
                    "ref": image.metadata["ref"],
                    "commit": image.metadata.get("commit"),
                    "run_id": image.run_id,
                    "timestamp": image.timestamp,
                    "binary_sha256": image.metadata.get("binary_sha256")
                    or (
                        binary.metadata.get(
                            f"sha256_{image.metadata.get('platform', '/').split('/')[-1]}"
                        )
                        if binary
                        else None
                    ),
                    "reused_from": image.metadata.get("reused_from") or None,
                    "gitops_commit": bump.metadata.get("gitops_commit") if bump else None,
                    "registry_serves_tag": registry.manifest_digest(name, tag) == digest,
                }
            )
    found.sort(key=lambda f: f["timestamp"], reverse=True)
    return {"digest": digest, "releases": found}
