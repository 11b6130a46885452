"""A promotion on a fresh worker: nothing on its disk, only the shared store (instance, bucket,
registry, git). It finds every binary by content key in the bucket's build cache, runs no
`go build`, uploads no binary bytes, and promotes the staging release's bytes and digests. A
corrupted cache entry is never used: that one binary is rebuilt, and the release says so.
"""

import hashlib
import logging
import time

import boto3

from deploy_assets.assets.build_store import bucket_key
from deploy_assets_tests.assets.run_events import user_logs

MS = ["ms_chat", "ms_core", "ms_payments"]
LAMBDAS = ["lambda_auth_handler", "lambda_webhook_handler"]
CLIS = ["cli_core"]
RC, PROD = "v0.1.0-rc.1", "v0.1.0"
STAGING, PRODUCTION = f"staging|{RC}", f"prod|{PROD}"


def move_to_a_fresh_worker(harness, tmp_path, monkeypatch, name: str) -> None:
    """Same instance, bucket, registry and git; new empty build cache, work folder and GOCACHE."""
    monkeypatch.delenv(
        "DEPLOY_ASSETS_GOCACHE", raising=False
    )  # GOCACHE falls back to <cache_dir>/go-build
    harness.settings = harness.settings.model_copy(
        update={"work_dir": tmp_path / name / "work", "cache_dir": tmp_path / name / "cache"}
    )
    harness.reload()


def timed_release(harness, tag: str):
    started = time.monotonic()
    outcome = harness.release(tag)
    assert outcome.success, outcome.error
    return outcome, time.monotonic() - started


def test_a_promotion_on_a_fresh_worker_builds_nothing_and_uploads_no_binary(
    harness, tmp_path, monkeypatch
):
    _, rc_seconds = timed_release(harness, RC)
    move_to_a_fresh_worker(harness, tmp_path, monkeypatch, "worker-2")
    prod, prod_seconds = timed_release(harness, PROD)
    print(
        f"\nrc on worker 1: {rc_seconds:.1f} s; prod promotion on a fresh worker: {prod_seconds:.1f} s"
    )

    assert not (tmp_path / "cache").samefile(harness.settings.cache_dir)
    for name in MS + LAMBDAS + CLIS:  # every binary came from the bucket: zero go build
        binary = harness.metadata(f"binary/{name}", PRODUCTION)
        assert binary["build_arm64"] == "bucket cache", (name, binary["build_arm64"])
        entry = bucket_key(harness.s3, binary["content_key_arm64"], name)
        assert harness.s3.download_sha256(entry)[0] == binary["sha256_arm64"], name
    assert "arm64: 6 binaries: 0 built, 0 local cache, 6 bucket cache" in user_logs(
        harness.instance, prod.run_id, logging.INFO
    )

    for name in MS:  # the staging release's bytes and digests, copied and retagged
        assert (
            harness.metadata(f"binary/{name}", PRODUCTION)["sha256_arm64"]
            == harness.metadata(f"binary/{name}", STAGING)["sha256_arm64"]
        )
        assert harness.s3.download_sha256(f"binaries/{PROD}/{name}") == harness.s3.download_sha256(
            f"binaries/{RC}/{name}"
        )
        assert (
            harness.metadata(f"s3/{name}", PRODUCTION)["action_arm64"]
            == f"copied from binaries/{RC}/{name}"
        )
        rc_digest = harness.registry.manifest_digest(name, RC)
        assert rc_digest and harness.registry.manifest_digest(name, PROD) == rc_digest, name
        assert harness.metadata(f"image/{name}", PRODUCTION)["action"] == f"retagged from {STAGING}"
    for (
        name
    ) in LAMBDAS:  # staging only prebuilt them: prod copies the build cache entry server-side
        binary = harness.metadata(f"binary/{name}", PRODUCTION)
        entry = bucket_key(harness.s3, binary["content_key_arm64"], name)
        assert (
            harness.metadata(f"s3/{name}", PRODUCTION)["action_arm64"]
            == f"copied from the build cache {entry}"
        )
        assert harness.s3.download_sha256(f"binaries/{PROD}/{name}")[0] == binary["sha256_arm64"]
    cli = harness.metadata("image/cli_core", PRODUCTION)
    assert (
        cli["action"] == f"retagged from the image prebuilt in {STAGING}"
    )  # no docker build either


def test_a_corrupted_cache_entry_is_rebuilt_overwritten_and_named(harness, tmp_path, monkeypatch):
    timed_release(harness, RC)
    good = harness.metadata("binary/ms_core", STAGING)
    entry = bucket_key(harness.s3, good["content_key_arm64"], "ms_core")
    client = boto3.client(
        "s3", endpoint_url=harness.settings.s3_endpoint, region_name=harness.settings.aws_region
    )
    original = client.get_object(Bucket=harness.settings.bucket, Key=entry)["Body"].read()
    corrupted = (
        bytes(b ^ 0xFF for b in original[:64]) + original[64:]
    )  # same size, same claimed sha256
    client.put_object(
        Bucket=harness.settings.bucket,
        Key=entry,
        Body=corrupted,
        Metadata={"sha256": good["sha256_arm64"]},
    )
    bad_sha256 = hashlib.sha256(corrupted).hexdigest()

    move_to_a_fresh_worker(harness, tmp_path, monkeypatch, "worker-2")
    prod, _ = timed_release(harness, PROD)

    assert harness.metadata("binary/ms_core", PRODUCTION)["build_arm64"] == "built"
    for name in ["ms_chat", "ms_payments"] + LAMBDAS + CLIS:
        assert harness.metadata(f"binary/{name}", PRODUCTION)["build_arm64"] == "bucket cache", name
    warnings = user_logs(harness.instance, prod.run_id, logging.WARNING)
    assert any(
        f"s3://{harness.settings.bucket}/{entry} is corrupt" in w
        and good["sha256_arm64"] in w
        and bad_sha256 in w
        and "rebuilding ms_core" in w
        for w in warnings
    ), warnings
    # The rebuilt bytes are the validated ones, the entry holds them again, and prod shipped them.
    assert harness.metadata("binary/ms_core", PRODUCTION)["sha256_arm64"] == good["sha256_arm64"]
    assert harness.s3.download_sha256(entry)[0] == good["sha256_arm64"]
    assert harness.s3.download_sha256(f"binaries/{PROD}/ms_core")[0] == good["sha256_arm64"]
    assert harness.registry.manifest_digest("ms_core", PROD) == harness.registry.manifest_digest(
        "ms_core", RC
    )


def test_a_corrupted_entry_is_not_copied_into_a_release(harness):
    """Same worker (its local cache holds the lambdas): the artifacts step would copy prod's first
    lambda object from the bucket entry; the entry's bytes are other bytes, so it uploads ours."""
    timed_release(harness, RC)
    client = boto3.client(
        "s3", endpoint_url=harness.settings.s3_endpoint, region_name=harness.settings.aws_region
    )
    listing = client.list_objects_v2(Bucket=harness.settings.bucket, Prefix="binaries/build-cache/")
    entry = next(o["Key"] for o in listing["Contents"] if o["Key"].endswith("/lambda_auth_handler"))
    original = client.get_object(Bucket=harness.settings.bucket, Key=entry)["Body"].read()
    claimed = hashlib.sha256(original).hexdigest()
    corrupted = bytes(b ^ 0xFF for b in original[:64]) + original[64:]
    client.put_object(
        Bucket=harness.settings.bucket, Key=entry, Body=corrupted, Metadata={"sha256": claimed}
    )

    prod, _ = timed_release(harness, PROD)

    binary = harness.metadata("binary/lambda_auth_handler", PRODUCTION)
    assert binary["build_arm64"] == "local cache"
    assert (
        harness.metadata("s3/lambda_auth_handler", PRODUCTION)["action_arm64"]
        == f"uploaded {binary['size_arm64']} bytes"
    )
    assert harness.s3.download_sha256(f"binaries/{PROD}/lambda_auth_handler") == (
        claimed,
        len(original),
    )
    warnings = user_logs(harness.instance, prod.run_id, logging.WARNING)
    assert any(
        f"{entry} holds sha256 {hashlib.sha256(corrupted).hexdigest()}, not the built {claimed}"
        in w
        for w in warnings
    ), warnings


def test_a_one_change_release_on_a_fresh_worker_restores_the_compile_cache_and_builds_one(
    harness, tmp_path, monkeypatch
):
    """Production settings: the shared Go compile cache in the bucket is on. Worker 1 builds cold
    and saves it; worker 2, empty disk and GOCACHE, restores it and compiles one package."""
    harness.settings = harness.settings.model_copy(update={"go_compile_cache": "go-build-cache"})
    move_to_a_fresh_worker(harness, tmp_path, monkeypatch, "worker-1")
    first, cold_seconds = timed_release(harness, "v0.2.0-alpha.1")
    assert "go compile cache: saved " in "\n".join(
        user_logs(harness.instance, first.run_id, logging.INFO)
    )
    archives = boto3.client(
        "s3", endpoint_url=harness.settings.s3_endpoint, region_name="eu-west-1"
    ).list_objects_v2(Bucket=harness.settings.bucket, Prefix="go-build-cache/")["Contents"]
    assert len(archives) == 1 and archives[0]["Size"] > 1_000_000

    harness.monorepo.write(
        "cmd/ms/ms_chat/extra.go", 'package main\n\nconst motd = "hello"\n\nvar _ = motd\n'
    )
    harness.monorepo.commit("ms_chat: one change")
    move_to_a_fresh_worker(harness, tmp_path, monkeypatch, "worker-2")
    second, fresh_seconds = timed_release(harness, "v0.2.0-alpha.2")
    print(
        f"\ncold release on worker 1: {cold_seconds:.1f} s; one change on a fresh worker: {fresh_seconds:.1f} s"
    )

    logs = "\n".join(user_logs(harness.instance, second.run_id, logging.INFO))
    assert "go compile cache: restored " in logs, logs
    assert "arm64: 3 binaries: 1 built, 0 local cache, 2 bucket cache" in logs, logs
    dev = "dev|v0.2.0-alpha.2"
    assert harness.metadata("binary/ms_chat", dev)["build_arm64"] == "built"
    assert {
        harness.metadata(f"binary/{n}", dev)["build_arm64"] for n in ("ms_core", "ms_payments")
    } == {"bucket cache"}
    restored = tmp_path / "worker-2" / "cache" / "go-build"
    assert sum(1 for _ in restored.rglob("*-d")) > 100  # the standard library came from the bucket
