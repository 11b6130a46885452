"""S3 artifacts: `s3://{bucket}/{path}/{version}/{binary}`, the old archiver's layout.

An object counts as uploaded only once the server has it whole and its recorded sha256 matches
the bytes we built; promotion copies objects server-side so prod never re-uploads bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import boto3
import dagster as dg
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

MULTIPART_THRESHOLD = 16 * 1024 * 1024


class S3Error(RuntimeError):
    pass


@dataclass(frozen=True)
class S3Object:
    key: str
    sha256: str
    size: int

    def uri(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.key}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class S3Resource(dg.ConfigurableResource):
    """The artifact bucket (APP_ARCHIVER_* settings); endpoint_url points at an S3 API server."""

    bucket: str
    path: str = "binaries"
    region: str = "eu-west-1"
    endpoint_url: str = ""
    max_attempts: int = 4

    def _client(self):
        return boto3.client(
            "s3", region_name=self.region, endpoint_url=self.endpoint_url or None,
            config=Config(retries={"max_attempts": self.max_attempts, "mode": "standard"},
                          connect_timeout=5, read_timeout=60),
        )

    def key(self, version: str, name: str) -> str:
        return f"{self.path.strip('/')}/{version}/{name}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _fail(self, action: str, key: str, exc: Exception) -> S3Error:
        where = self.endpoint_url or f"S3 {self.region}"
        return S3Error(f"{action} s3://{self.bucket}/{key} via {where} failed: {exc}")

    def ensure_bucket(self) -> None:
        client = self._client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError:
            client.create_bucket(Bucket=self.bucket,
                                 CreateBucketConfiguration={"LocationConstraint": self.region})
        except BotoCoreError as exc:
            raise self._fail("reach bucket", "", exc) from None

    def head(self, key: str) -> S3Object | None:
        """What the server has at key (size, recorded sha256), or None."""
        try:
            head = self._client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail("head", key, exc) from None
        except BotoCoreError as exc:
            raise self._fail("head", key, exc) from None
        return S3Object(key=key, sha256=head.get("Metadata", {}).get("sha256", ""),
                        size=head["ContentLength"])

    def upload(self, path: Path, key: str, sha256: str | None = None) -> S3Object:
        """Upload (multipart above 16 MiB) and verify that the server holds the whole object."""
        sha256 = sha256 or file_sha256(path)
        size = path.stat().st_size
        try:
            self._client().upload_file(
                str(path), self.bucket, key,
                ExtraArgs={"Metadata": {"sha256": sha256}, "ChecksumAlgorithm": "SHA256"},
                Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=4),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("upload to", key, exc) from None
        return self._verified(key, sha256, size)

    def copy(self, source_key: str, key: str) -> S3Object:
        """Server-side copy (promotion): no bytes leave the server."""
        source = self.head(source_key)
        if source is None:
            raise S3Error(f"cannot copy s3://{self.bucket}/{source_key}: object missing")
        try:
            self._client().copy_object(Bucket=self.bucket, Key=key, MetadataDirective="COPY",
                                       CopySource={"Bucket": self.bucket, "Key": source_key})
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("copy to", key, exc) from None
        return self._verified(key, source.sha256, source.size)

    def _verified(self, key: str, sha256: str, size: int) -> S3Object:
        got = self.head(key)
        if got is None or got.size != size or got.sha256 != sha256:
            raise S3Error(f"s3://{self.bucket}/{key} is not whole after write: expected {size} bytes "
                          f"sha256 {sha256}, server has {got}")
        return got

    def download_sha256(self, key: str) -> tuple[str, int]:
        """sha256 and size of the bytes the server returns (what a check must trust)."""
        try:
            body = self._client().get_object(Bucket=self.bucket, Key=key)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("download", key, exc) from None
        h, size = hashlib.sha256(), 0
        for chunk in iter(lambda: body.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
        return h.hexdigest(), size

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> S3Object:
        sha256 = hashlib.sha256(data).hexdigest()
        try:
            self._client().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                      Metadata={"sha256": sha256})
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("put", key, exc) from None
        return self._verified(key, sha256, len(data))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("get", key, exc) from None
