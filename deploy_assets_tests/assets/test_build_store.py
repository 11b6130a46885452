"""The build cache's decisions, without servers: where a binary comes from, when a bucket entry
is refused, and how the artifacts step stores an object."""

import pytest

from deploy_assets.assets.build_store import (
    ALREADY,
    BUCKET,
    BUILT,
    CONFLICT,
    COPY_CACHE,
    COPY_EARLIER,
    LOCAL,
    UPLOAD,
    Recorded,
    binary_origin,
    bucket_key,
    entry_refusal,
    store_action,
)
from deploy_assets.resources.s3 import S3Object, S3Resource

GOOD, BAD = "a" * 64, "b" * 64


def entry(sha256: str = GOOD, size: int = 100, claimed: str = GOOD, key: str = "k") -> S3Object:
    return S3Object(key=key, sha256=sha256, size=size, claimed=claimed)


def test_the_local_cache_wins_and_a_missing_entry_means_a_build():
    assert binary_origin(True, None, None) == (LOCAL, ("", ""))
    assert binary_origin(True, entry(sha256=BAD), Recorded(GOOD, 100)) == (LOCAL, ("", ""))
    assert binary_origin(False, None, Recorded(GOOD, 100)) == (BUILT, ("", ""))


def test_a_bucket_entry_is_used_when_it_agrees_with_itself_and_the_record():
    assert binary_origin(False, entry(), None) == (BUCKET, ("", ""))
    assert binary_origin(False, entry(), Recorded(GOOD, 100, "staging|v1.0.0-rc.1")) == (
        BUCKET,
        ("", ""),
    )
    assert binary_origin(False, entry(claimed=""), None) == (
        BUCKET,
        ("", ""),
    )  # no claim: the bytes decide


@pytest.mark.parametrize(
    "bad, recorded, expected",
    [
        (entry(sha256=BAD), None, (GOOD, BAD)),  # the server's checksum contradicts our metadata
        (
            entry(sha256=BAD, claimed=BAD),
            Recorded(GOOD, 100),
            (GOOD, BAD),
        ),  # the instance recorded other bytes
        (entry(size=99), Recorded(GOOD, 100), (GOOD, GOOD)),  # same claim, other size
    ],
)
def test_an_entry_that_contradicts_itself_or_the_record_is_rebuilt(bad, recorded, expected):
    assert binary_origin(False, bad, recorded) == (BUILT, expected)


def test_downloaded_bytes_must_be_the_entrys_and_the_records():
    assert entry_refusal(entry(), (GOOD, 100), None) == ("", "")
    assert entry_refusal(entry(), (GOOD, 100), Recorded(GOOD, 100)) == ("", "")
    assert entry_refusal(entry(), (BAD, 100), None) == (GOOD, BAD)  # corrupted under a kept claim
    assert entry_refusal(entry(), (GOOD, 7), None) == (GOOD, GOOD)  # truncated
    assert entry_refusal(entry(claimed=""), (BAD, 100), Recorded(GOOD, 100)) == (GOOD, BAD)


def test_an_object_is_copied_from_an_earlier_release_then_the_build_cache_else_uploaded():
    assert store_action(None, GOOD, 100, entry(), entry()) == COPY_EARLIER
    assert (
        store_action(None, GOOD, 100, None, entry()) == COPY_CACHE
    )  # prod's lambdas, prebuilt by staging
    assert store_action(None, GOOD, 100, entry(sha256=BAD), entry()) == COPY_CACHE
    assert store_action(None, GOOD, 100, None, None) == UPLOAD
    assert store_action(None, GOOD, 100, None, entry(sha256=BAD)) == UPLOAD
    assert (
        store_action(None, GOOD, 100, None, entry(claimed=BAD)) == UPLOAD
    )  # an entry that contradicts itself
    assert store_action(None, GOOD, 100, None, entry(size=1)) == UPLOAD


def test_an_object_already_there_is_left_alone_or_refused():
    assert store_action(entry(), GOOD, 100, None, entry()) == ALREADY
    assert store_action(entry(sha256=BAD), GOOD, 100, entry(), entry()) == CONFLICT
    assert store_action(entry(size=5), GOOD, 100, None, None) == CONFLICT


def test_the_cache_lives_beside_the_releases_under_the_content_key():
    s3 = S3Resource(bucket="app-artifacts", path="/binaries/")
    assert bucket_key(s3, "ck123", "ms_core") == "binaries/build-cache/ck123/ms_core"
