"""The artifact bucket's plain requests: settings, the one client, HEADs, listings, streams.

S3Resource (s3.py) builds verified writes and copies on these. The plain ones are public for
users that verify in their own way: the shared Go compile cache (go_cache.py) streams an archive
while it unpacks it, lists an archive family, and uploads an archive that concurrent workers
overwrite (last writer wins) without the read-back a verified upload does.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import boto3
import dagster as dg
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field, PrivateAttr
from s3transfer.exceptions import S3CopyFailedError

from deploy_assets.resources.s3_checksums import (
    Checksum,
    needs_part_count,
    reported_checksum,
    with_part_count,
)

COPY_PART_THRESHOLD = 5 * 1024**3  # CopyObject refuses a source above 5 GiB: UploadPartCopy there
TRANSFER_ERRORS = (ClientError, BotoCoreError, S3UploadFailedError, S3CopyFailedError)
_ABSENT = ("404", "NoSuchKey", "NotFound")


class S3Error(RuntimeError):
    pass


@dataclass(frozen=True)
class S3Object:
    """What the server holds at key. `sha256` is the hex digest of the bytes where the server's
    own checksum is one of them (a whole-object checksum), else the digest recorded in the
    object's metadata at upload."""

    key: str
    sha256: str
    size: int
    checksum: Checksum = field(
        default_factory=Checksum
    )  # the server's ChecksumSHA256, and what it covers
    etag: str = ""
    claimed: str = ""  # the sha256 our metadata claims, which a corrupted object may contradict

    def uri(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.key}"


@dataclass(frozen=True)
class S3Listed:
    """One object of a listing: enough to pick the newest without a HEAD per object."""

    key: str
    size: int
    last_modified: datetime


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class S3Bucket(dg.ConfigurableResource):
    """The bucket's settings and plain requests; S3Resource adds the verified writes."""

    bucket: str = Field(description="Bucket of the artifacts (APP_ARCHIVER_BUCKET).")
    path: str = Field(
        default="binaries",
        description="Key prefix of the artifacts, {path}/{version}/{name} (APP_ARCHIVER_PATH).",
    )
    region: str = Field(
        default="eu-west-1", description="AWS region of the bucket (APP_ARCHIVER_AWS_REGION)."
    )
    endpoint_url: str = Field(
        default="",
        description="URL of an S3 API server (moto locally); empty for AWS S3 of `region`.",
    )
    max_attempts: int = Field(
        default=4,
        description="Tries per request, the first included: 5xx and refused connections retry.",
    )
    verify_reads_back: bool = Field(
        default=True,
        description="Read each written object back and hash it. AWS S3 validates the checksum "
        "we send, so production may skip it (one GET per object).",
    )
    copy_part_threshold: int = Field(
        default=COPY_PART_THRESHOLD,
        description="Size in bytes from which a copy is made of UploadPartCopy parts "
        "(CopyObject takes sources up to 5 GiB).",
    )
    _cached_client: object = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _client(self):
        """One client per resource: botocore clients are thread-safe, and making one costs more
        than most of the requests a release sends (it loads the service model)."""
        with self._client_lock:
            if self._cached_client is None:
                self._cached_client = self._new_client()
            return self._cached_client

    def _new_client(self):
        return boto3.client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint_url or None,
            # total_max_attempts counts the first try; botocore's "max_attempts" would not.
            config=Config(
                retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                # _read_sha256 compares the bytes with the server's checksum itself.
                response_checksum_validation="when_required",
            ),
        )

    def key(self, version: str, name: str) -> str:
        return f"{self.path.strip('/')}/{version}/{name}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _fail(self, action: str, key: str, exc: Exception) -> S3Error:
        where = self.endpoint_url or f"S3 {self.region}"
        return S3Error(f"{action} s3://{self.bucket}/{key} via {where} failed: {exc}")

    def check_bucket(self) -> None:
        """Raise a clear error unless the bucket answers (preflight: nothing is written)."""
        try:
            self._client().head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("reach bucket", "", exc) from None

    def ensure_bucket(self) -> None:
        client = self._client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError:
            client.create_bucket(
                Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": self.region}
            )
        except BotoCoreError as exc:
            raise self._fail("reach bucket", "", exc) from None

    def head(self, key: str) -> S3Object | None:
        """What the server has at key (size, sha256 of its bytes as far as known), or None.

        A whole-object checksum *is* the bytes' sha256 and wins over the metadata: a corrupted
        object then shows the digest it really has. A composite one is kept for comparison only.
        A checksum whose form leaves that open (moto's) costs a second HEAD for the part count.
        """
        head = self._head(key, ChecksumMode="ENABLED")
        if head is None:
            return None
        checksum = reported_checksum(head)
        if needs_part_count(checksum):
            part = self._head(key, PartNumber=1)
            checksum = with_part_count(checksum, part or {})
        claimed = head.get("Metadata", {}).get("sha256", "")
        return S3Object(
            key=key,
            sha256=checksum.sha256 or claimed,
            size=head["ContentLength"],
            checksum=checksum,
            etag=head.get("ETag", "").strip('"'),
            claimed=claimed,
        )

    def _head(self, key: str, **extra) -> dict | None:
        try:
            return self._client().head_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _ABSENT:
                return None
            raise self._fail("head", key, exc) from None
        except BotoCoreError as exc:
            raise self._fail("head", key, exc) from None

    def stream(self, key: str, etag: str = ""):
        """The object's body as a stream (botocore's StreamingBody), for a reader that hashes
        the bytes as it uses them. With `etag` (of a HEAD) the server refuses an object written
        since, so the bytes are those whose checksum or metadata the caller compares with."""
        pin = {"IfMatch": f'"{etag}"'} if etag else {}
        try:
            return self._client().get_object(Bucket=self.bucket, Key=key, **pin)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("download", key, exc) from None

    def list_prefix(self, prefix: str) -> list[S3Listed]:
        """Every object whose key starts with prefix (all pages), in the server's key order."""
        try:
            pages = (
                self._client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.bucket, Prefix=prefix)
            )
            return [
                S3Listed(o["Key"], o["Size"], o["LastModified"])
                for page in pages
                for o in page.get("Contents", ())
            ]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", f"{prefix}*", exc) from None

    def upload_unverified(self, path: Path, key: str, sha256: str) -> None:
        """Upload path as key with `sha256` in its metadata, and read nothing back.

        For an object several writers replace (last writer wins) and whose readers check the
        bytes against that metadata: a read-back could see another writer's upload and take it
        for a bad write of ours. S3Resource.upload verifies instead, for objects written once."""
        try:
            self._client().upload_file(
                str(path), self.bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}}
            )
        except TRANSFER_ERRORS as exc:
            raise self._fail("upload to", key, exc) from None
