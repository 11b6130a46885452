"""Upload, server-side copy and verification on the local S3 API (moto), for every size class.

Single-part (1 MB), just over the multipart threshold (17 MB) and a real service's size (40 MB);
copied in one CopyObject (as up to 5 GiB) and in UploadPartCopy parts (as above 5 GiB: the
threshold is lowered here so the parts path runs on 17 and 40 MB). Requests go through a
counting proxy, so "nothing downloaded" and "a re-run writes nothing" are what reached the server.
"""

import hashlib
import math
import os
import uuid
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from deploy_assets.resources.s3 import S3Error, S3Resource
from deploy_assets.resources.s3_checksums import MULTIPART_CHUNKSIZE, MULTIPART_THRESHOLD
from deploy_assets_tests.reliability.faults import FaultProxy

MB = 1024 * 1024
SRC, DST = "binaries/v1.0.0-rc.1/ms_core", "binaries/v1.0.0/ms_core"


@pytest.fixture
def bucket(s3_server) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    S3Resource(bucket=name, endpoint_url=s3_server).ensure_bucket()
    return name


@pytest.fixture
def proxy(s3_server):
    counting = FaultProxy(s3_server)
    yield counting
    counting.close()


def random_binary(path: Path, mb: int) -> tuple[Path, str]:
    data = os.urandom(mb * MB)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def resource(bucket: str, endpoint: str, in_parts: bool) -> S3Resource:
    extra = {"copy_part_threshold": MULTIPART_THRESHOLD} if in_parts else {}
    return S3Resource(bucket=bucket, endpoint_url=endpoint, **extra)


@pytest.mark.parametrize("in_parts", [False, True], ids=["copy-object", "upload-part-copy"])
@pytest.mark.parametrize("mb", [1, 17, 40])
def test_upload_then_copy_is_verified_without_downloading_and_a_rerun_writes_nothing(
    tmp_path, s3_server, bucket, proxy, mb, in_parts
):
    path, sha256 = random_binary(tmp_path / "ms_core", mb)
    s3, direct = (
        resource(bucket, proxy.url, in_parts),
        S3Resource(bucket=bucket, endpoint_url=s3_server),
    )
    stored = s3.upload(path, SRC)
    assert (stored.sha256, stored.size) == (sha256, mb * MB)
    assert stored.checksum.composite is (mb * MB >= MULTIPART_THRESHOLD)

    proxy.seen.clear()
    copied = s3.copy(SRC, DST, source=s3.head(SRC), absent=True)

    assert (copied.sha256, copied.size) == (sha256, mb * MB)
    assert ("GET", f"/{bucket}/{DST}") not in proxy.seen  # verified from the server's report alone
    parts = math.ceil(mb * MB / MULTIPART_CHUNKSIZE)
    if in_parts and mb * MB >= MULTIPART_THRESHOLD:
        assert proxy.writes() == {
            ("POST", f"/{bucket}/{DST}"): 2,
            ("PUT", f"/{bucket}/{DST}"): parts,
        }
        assert copied.checksum == stored.checksum  # same cut, same composite
    else:
        assert proxy.writes() == {("PUT", f"/{bucket}/{DST}"): 1}
    assert direct.download_sha256(DST) == (sha256, mb * MB)
    assert direct.head(DST).sha256 == sha256

    before = direct._client().head_object(Bucket=bucket, Key=DST)
    proxy.seen.clear()
    assert s3.copy(SRC, DST).sha256 == sha256
    assert proxy.writes() == {}
    after = direct._client().head_object(Bucket=bucket, Key=DST)
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])


@pytest.mark.parametrize("in_parts", [False, True], ids=["copy-object", "upload-part-copy"])
@pytest.mark.parametrize("mb", [1, 17])
def test_a_copy_whose_bytes_were_tampered_is_detected_and_nothing_is_left(
    tmp_path, s3_server, bucket, proxy, mb, in_parts
):
    path, sha256 = random_binary(tmp_path / "ms_core", mb)
    other, _ = random_binary(tmp_path / "other", mb)
    s3, direct = (
        resource(bucket, proxy.url, in_parts),
        S3Resource(bucket=bucket, endpoint_url=s3_server),
    )
    s3.upload(path, SRC)
    held = s3.head(SRC)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="eu-west-1")

    def tamper(method: str, where: str, nth: int) -> bool:
        # While the copy is asked for, someone puts other bytes of the same size at the source,
        # claiming the built sha256 in the metadata as our upload does.
        if method == "PUT" and where == f"/{bucket}/{DST}" and nth == 1:
            client.upload_file(
                str(other),
                bucket,
                SRC,
                ExtraArgs={"Metadata": {"sha256": sha256}, "ChecksumAlgorithm": "SHA256"},
                Config=TransferConfig(
                    multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNKSIZE
                ),
            )
        return False

    proxy.policy = tamper
    with pytest.raises(S3Error, match=rf"s3://{bucket}/{DST}"):
        s3.copy(SRC, DST, source=held, absent=True)

    assert direct.head(DST) is None  # nothing that claims to be the built bytes


def test_an_object_replaced_by_other_bytes_under_the_same_claim_is_not_held(
    tmp_path, s3_server, bucket
):
    path, sha256 = random_binary(tmp_path / "ms_core", 17)
    other, other_sha256 = random_binary(tmp_path / "other", 17)
    s3 = S3Resource(bucket=bucket, endpoint_url=s3_server)
    s3.upload(path, SRC)
    assert s3.holds(SRC, sha256, 17 * MB) is not None
    s3._client().upload_file(
        str(other),
        bucket,
        SRC,
        ExtraArgs={"Metadata": {"sha256": sha256}, "ChecksumAlgorithm": "SHA256"},
    )

    assert s3.head(SRC).sha256 == sha256  # the claim: a composite checksum cannot contradict it
    assert s3.holds(SRC, sha256, 17 * MB) is None  # the bytes do
    assert s3.download_sha256(SRC) == (other_sha256, 17 * MB)


def test_plain_requests_stream_list_and_upload_unverified_as_the_go_cache_uses_them(
    tmp_path, s3_server, bucket, proxy
):
    """The Go cache's public requests: an unverified upload reads nothing back, a listing names
    every object under the prefix, and a stream pinned to a replaced object's ETag is refused."""
    first, first_sha256 = random_binary(tmp_path / "first", 1)
    second, second_sha256 = random_binary(tmp_path / "second", 1)
    s3 = S3Resource(bucket=bucket, endpoint_url=proxy.url)
    key = "go-cache/family/a.tgz"

    s3.upload_unverified(first, key, first_sha256)
    assert [m for m, _ in proxy.seen if m in ("GET", "HEAD")] == []  # nothing read back
    stored = s3.head(key)
    assert (stored.claimed, stored.size) == (first_sha256, MB)
    assert hashlib.sha256(s3.stream(key, stored.etag).read()).hexdigest() == first_sha256

    s3.upload_unverified(second, "go-cache/family/b.tgz", second_sha256)
    s3.upload_unverified(second, "go-cache/other/c.tgz", second_sha256)
    listed = s3.list_prefix("go-cache/family/")
    assert sorted((o.key, o.size) for o in listed) == [
        ("go-cache/family/a.tgz", MB),
        ("go-cache/family/b.tgz", MB),
    ]
    assert all(o.last_modified.tzinfo is not None for o in listed)  # comparable across pages

    s3.upload_unverified(second, key, second_sha256)  # another worker's save: last writer wins
    with pytest.raises(S3Error, match=f"download s3://{bucket}/{key} via .* failed"):
        s3.stream(key, stored.etag).read()
    assert s3.list_prefix("go-cache/none/") == []
