"""The release record (routes.json, manifest.json, checksums.txt) is as immutable as the binaries,
and no service may take one of its names.

Each fault is made real first: a newer release that changes what history says about an older
one, bytes put at the record's key behind the tool's back, a service directory named like the
record. The outcome is read from the bucket itself (bytes, ETag, LastModified).
"""

import hashlib
import re

import boto3
import requests

from deploy_assets.cli.runner import run_release
from deploy_assets_tests.assets.run_events import step_failures

MS = ["ms_chat", "ms_core", "ms_payments"]


def client(harness):
    return boto3.client(
        "s3", endpoint_url=harness.settings.s3_endpoint, region_name=harness.settings.aws_region
    )


def stored(harness, key: str) -> tuple[bytes, str, object]:
    """The object's bytes, ETag and LastModified as the S3 API reports them."""
    got = client(harness).get_object(Bucket=harness.settings.bucket, Key=key)
    return got["Body"].read(), got["ETag"], got["LastModified"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def refusal(harness, outcome, step_word: str) -> str:
    assert not outcome.success
    failures = step_failures(harness.instance, outcome.run_id)
    steps = [step for step in failures if step_word in step]
    assert steps, failures
    return failures[steps[0]]


def test_rerunning_a_release_with_the_same_record_leaves_the_objects_alone(harness):
    first = harness.release("v0.7.0-alpha.1")
    assert first.success, first.error
    keys = [
        f"binaries/v0.7.0-alpha.1/{n}" for n in ("manifest.json", "checksums.txt", "routes.json")
    ]
    before = {k: stored(harness, k) for k in keys}

    again = run_release(harness.defs, harness.instance, "v0.7.0-alpha.1")

    assert again.success, again.error
    assert {
        k: stored(harness, k) for k in keys
    } == before  # same bytes, ETag and LastModified: not rewritten


def test_an_older_release_rerun_after_a_newer_one_changed_its_record_is_refused(harness):
    older, newer = "v0.7.1-alpha.1", "v0.7.1-alpha.2"
    assert harness.release(older).success
    manifest_key, checksums_key = (
        f"binaries/{older}/manifest.json",
        f"binaries/{older}/checksums.txt",
    )
    manifest, checksums = stored(harness, manifest_key), stored(harness, checksums_key)
    assert harness.release(newer).success  # same commit: reuses the older release's builds

    # The older release's binaries now look reused from the newer one: its record would change.
    rerun = run_release(harness.defs, harness.instance, older)

    error = refusal(harness, rerun, "manifest")
    assert (
        f"s3://{harness.settings.bucket}/{manifest_key} already holds sha256 {sha(manifest[0])}"
        in error
    )
    would = re.search(r"this run would write sha256 ([0-9a-f]{64})", error)
    assert would and would.group(1) != sha(manifest[0]), error
    assert "the release record is immutable, not overwriting" in error
    assert stored(harness, manifest_key) == manifest and stored(harness, checksums_key) == checksums


def test_bytes_put_at_the_routes_key_are_refused_before_any_upload(harness):
    tag = "v0.7.2-alpha.1"
    assert harness.release(tag).success
    routes_key = f"binaries/{tag}/routes.json"
    foreign = b'[{"service": "ms_core", "method": "DELETE", "path": "/everything"}]\n'
    client(harness).put_object(Bucket=harness.settings.bucket, Key=routes_key, Body=foreign)
    client(harness).delete_object(Bucket=harness.settings.bucket, Key=f"binaries/{tag}/ms_chat")
    record_before = {
        n: stored(harness, f"binaries/{tag}/{n}") for n in ("manifest.json", "checksums.txt")
    }

    rerun = run_release(harness.defs, harness.instance, tag)

    error = refusal(harness, rerun, "artifacts")
    assert f"{routes_key} already holds sha256 {sha(foreign)} ({len(foreign)} bytes)" in error
    assert re.search(r"this run would write sha256 (?!" + sha(foreign) + r")[0-9a-f]{64}", error), (
        error
    )
    assert stored(harness, routes_key)[0] == foreign
    # Refused before the binaries: the one removed above was not uploaded again.
    listing = client(harness).list_objects_v2(
        Bucket=harness.settings.bucket, Prefix=f"binaries/{tag}/ms_chat"
    )
    assert listing.get("KeyCount", 0) == 0
    assert {n: stored(harness, f"binaries/{tag}/{n}") for n in record_before} == record_before


def test_a_service_named_like_the_record_is_refused_at_source_and_nothing_is_published(harness):
    harness.monorepo.write("cmd/ms/routes.json/main.go", "package main\n\nfunc main() {}\n")
    harness.monorepo.commit("a service directory named like the release record")

    outcome = harness.release("v0.7.3-alpha.1")

    failures = step_failures(harness.instance, outcome.run_id)
    assert not outcome.success and list(failures) == ["source"]
    assert (
        "service directory 'cmd/ms/routes.json' has the reserved name 'routes.json'"
        in failures["source"]
    )
    catalog = requests.get(f"http://{harness.settings.registry}/v2/_catalog", timeout=10).json()
    assert not catalog["repositories"]
    assert client(harness).list_objects_v2(Bucket=harness.settings.bucket).get("KeyCount", 0) == 0
    assert len(harness.gitops_log("gitops-development")) == 1
