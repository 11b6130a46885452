"""S3 artifacts: `s3://{bucket}/{path}/{version}/{binary}`, the old archiver's layout.

An object counts as uploaded only once the server has it whole and its bytes hash to the sha256
we built. The sha256 in the object's metadata is only our claim, and so is the ChecksumSHA256 an
S3 API reports when it stores the checksum we sent without checking it (moto does; AWS S3
refuses the upload instead): so each written object is read back and hashed
(`verify_reads_back`; a read from a local S3 API costs a tenth of the write). A write that does
not verify is deleted, so a later run never mistakes it for a good one. Writing an object that
is already there whole writes nothing, so a re-run leaves the bucket as it was. Promotion copies
objects server-side: prod never re-uploads. Transient errors (5xx, refused connections) are
retried `max_attempts` times by botocore.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import boto3
import dagster as dg
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError
from pydantic import PrivateAttr
from s3transfer.utils import ChunksizeAdjuster

MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024


class S3Error(RuntimeError):
    pass


@dataclass(frozen=True)
class S3Object:
    """What the server holds at key. `sha256` is the hex digest of the bytes where the server's
    own checksum tells it, else the digest recorded in the object's metadata at upload."""

    key: str
    sha256: str
    size: int
    server_checksum: str = ""  # ChecksumSHA256 as the server reports it (base64; composite if multipart)
    etag: str = ""

    def uri(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.key}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def multipart_checksum(path: Path, size: int) -> str:
    """The ChecksumSHA256 S3 reports for a multipart upload: sha256 over the parts' sha256s."""
    part = ChunksizeAdjuster().adjust_chunksize(MULTIPART_CHUNKSIZE, size)
    digests = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(part), b""):
            digests.update(hashlib.sha256(block).digest())
    return base64.b64encode(digests.digest()).decode()


class S3Resource(dg.ConfigurableResource):
    """The artifact bucket (APP_ARCHIVER_* settings); endpoint_url points at an S3 API server."""

    bucket: str
    path: str = "binaries"
    region: str = "eu-west-1"
    endpoint_url: str = ""
    max_attempts: int = 4  # per request, the first try included; 5xx and refused connections are retried
    # AWS S3 validates the checksum we send, so production may skip the read-back (one GET per object).
    verify_reads_back: bool = True
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
            "s3", region_name=self.region, endpoint_url=self.endpoint_url or None,
            # total_max_attempts counts the first try; botocore's "max_attempts" would not.
            config=Config(retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
                          connect_timeout=5, read_timeout=60),
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
            client.create_bucket(Bucket=self.bucket,
                                 CreateBucketConfiguration={"LocationConstraint": self.region})
        except BotoCoreError as exc:
            raise self._fail("reach bucket", "", exc) from None

    def head(self, key: str) -> S3Object | None:
        """What the server has at key (size, sha256 of its bytes as far as known), or None.

        For an object stored in one part the server's ChecksumSHA256 *is* the bytes' sha256,
        and it wins over the metadata: a corrupted object then shows the digest it really has.
        """
        try:
            head = self._client().head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail("head", key, exc) from None
        except BotoCoreError as exc:
            raise self._fail("head", key, exc) from None
        checksum, etag = head.get("ChecksumSHA256") or "", head.get("ETag", "").strip('"')
        sha256 = head.get("Metadata", {}).get("sha256", "")
        whole_object = checksum and "-" not in checksum and "-" not in etag \
            and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
        if whole_object:
            sha256 = base64.b64decode(checksum).hex()
        return S3Object(key=key, sha256=sha256, size=head["ContentLength"], server_checksum=checksum, etag=etag)

    def upload(self, path: Path, key: str, sha256: str | None = None) -> S3Object:
        """Upload (multipart above 16 MiB) and verify that the server holds the whole object.

        An object already there with these bytes is left alone: nothing is written.
        """
        sha256 = sha256 or file_sha256(path)
        size = path.stat().st_size
        multipart = size >= MULTIPART_THRESHOLD
        expected = {_b64(sha256), multipart_checksum(path, size)} if multipart else {_b64(sha256)}
        present = self.head(key)
        if present and self._holds(present, sha256, size, expected):
            return present
        try:
            self._client().upload_file(
                str(path), self.bucket, key,
                ExtraArgs={"Metadata": {"sha256": sha256}, "ChecksumAlgorithm": "SHA256"},
                Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                      multipart_chunksize=MULTIPART_CHUNKSIZE, max_concurrency=4),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("upload to", key, exc) from None
        return self._verified(key, sha256, size, expected)

    def copy(self, source_key: str, key: str, source: S3Object | None = None,
             absent: bool = False) -> S3Object:
        """Server-side copy (promotion): no bytes leave the server. A caller that has just asked
        the server about the source (`source`) and the destination (`absent`) saves asking again:
        a promotion copies every object of a release."""
        source = source or self.head(source_key)
        if source is None:
            raise S3Error(f"cannot copy s3://{self.bucket}/{source_key}: object missing")
        expected = {_b64(source.sha256)} | ({source.server_checksum} if source.server_checksum else set())
        present = None if absent else self.head(key)
        if present and self._holds(present, source.sha256, source.size, expected):
            return present
        try:
            self._client().copy_object(Bucket=self.bucket, Key=key, MetadataDirective="COPY",
                                       CopySource={"Bucket": self.bucket, "Key": source_key})
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("copy to", key, exc) from None
        # No bytes passed through us, so nothing of ours can have been damaged on the way: the
        # server's report is checked here, the bytes by the release's blocking S3 check.
        return self._verified(key, source.sha256, source.size, expected, read_back=False)

    def holds(self, key: str, sha256: str, size: int) -> S3Object | None:
        """The object at key if it is exactly these bytes (read back unless told not to), else None."""
        got = self.head(key)
        return got if got is not None and self._holds(got, sha256, size, {_b64(sha256)} | (
            {got.server_checksum} if "-" in got.etag else set())) else None

    def _holds(self, got: S3Object, sha256: str, size: int, expected_checksums: set[str],
               read_back: bool = True) -> bool:
        """Whether got is exactly these bytes: size, claims, the server's checksum, then a read-back."""
        if got.size != size or got.sha256 != sha256:
            return False
        if got.server_checksum and got.server_checksum.split("-")[0] not in expected_checksums:
            return False
        if read_back and (self.verify_reads_back or not got.server_checksum):
            return self._read_sha256(got.key) == (sha256, size)
        return True

    def _verified(self, key: str, sha256: str, size: int, expected_checksums: set[str],
                  read_back: bool = True) -> S3Object:
        """The object just written, if whole and verified; otherwise delete it and fail."""
        got = self.head(key)
        if got is not None and self._holds(got, sha256, size, expected_checksums, read_back):
            return got
        if got is not None:
            try:
                self._client().delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError):
                pass  # the error below still says the object is not to be trusted
        raise S3Error(f"s3://{self.bucket}/{key} is not whole after write (removed): expected {size} bytes "
                      f"sha256 {sha256}, server has {got}")

    def download_sha256(self, key: str) -> tuple[str, int]:
        """sha256 and size of the bytes the server returns (what a check must trust)."""
        found = self._read_sha256(key)
        if found is None:
            raise S3Error(f"s3://{self.bucket}/{key}: the bytes the server returns do not match the checksum "
                          "it stored for them: the object is corrupt")
        return found

    def _read_sha256(self, key: str) -> tuple[str, int] | None:
        """(sha256, size) of the object's bytes; None if they contradict the server's own checksum."""
        h, size = hashlib.sha256(), 0
        try:
            body = self._client().get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
        except FlexibleChecksumError:  # botocore checked the bytes against the stored checksum
            return None
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("download", key, exc) from None
        return h.hexdigest(), size

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> S3Object:
        sha256 = hashlib.sha256(data).hexdigest()
        present = self.head(key)
        if present and self._holds(present, sha256, len(data), {_b64(sha256)}):
            return present
        try:
            self._client().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                      Metadata={"sha256": sha256}, ChecksumAlgorithm="SHA256")
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("put", key, exc) from None
        return self._verified(key, sha256, len(data), {_b64(sha256)})

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("get", key, exc) from None
