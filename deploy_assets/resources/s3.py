"""S3 artifacts: `s3://{bucket}/{path}/{version}/{binary}`, the old archiver's layout.

An object counts as uploaded only once the server has it whole and its bytes hash to the sha256
we built. The sha256 in the object's metadata is only our claim, and so is the ChecksumSHA256 an
S3 API reports when it stores the checksum we sent without checking it (moto does; AWS S3
refuses the upload instead): so each written object is read back and hashed
(`verify_reads_back`; a read from a local S3 API costs a tenth of the write). Above 16 MiB an
upload is multipart and the server's checksum is a composite over the parts, not the bytes'
sha256: what a checksum covers is decided from its own form and the object's part count, never
from the ETag (s3_checksums). A write that does not verify is deleted, so a later run never
mistakes it for a good one. Writing an object that is already there whole writes nothing, so a
re-run leaves the bucket as it was. Promotion copies objects server-side: prod never re-uploads;
a copy is verified without downloading it (size, our sha256 in its metadata, and the server's
whole-object checksum or the source's composite), and read back only when the server's checksum
cannot tell. Objects over 5 GiB are copied in parts (UploadPartCopy, boto3's managed copy).
Transient errors (5xx, refused connections) are retried `max_attempts` times by botocore.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from deploy_assets.resources.s3_bucket import (
    COPY_PART_THRESHOLD,
    TRANSFER_ERRORS,
    S3Bucket,
    S3Error,
    S3Listed,
    S3Object,
    file_sha256,
)
from deploy_assets.resources.s3_checksums import (
    MULTIPART_CHUNKSIZE,
    MULTIPART_THRESHOLD,
    multipart_checksum,
    verdict,
)

__all__ = [
    "COPY_PART_THRESHOLD",
    "TRANSFER_ERRORS",
    "S3Error",
    "S3Listed",
    "S3Object",
    "S3Resource",
    "file_sha256",
]


class S3Resource(S3Bucket):
    """The artifact bucket (APP_ARCHIVER_* settings); endpoint_url points at an S3 API server.
    Its settings and plain requests are S3Bucket's (s3_bucket.py); here are the verified ones."""

    def upload(self, path: Path, key: str, sha256: str | None = None) -> S3Object:
        """Upload (multipart above 16 MiB) and verify that the server holds the whole object.

        An object already there with these bytes is left alone: nothing is written.
        """
        sha256 = sha256 or file_sha256(path)
        size = path.stat().st_size
        composites = {multipart_checksum(path, size)} if size >= MULTIPART_THRESHOLD else set()
        present = self.head(key)
        if present and self._holds(present, sha256, size, composites):
            return present
        try:
            self._client().upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": sha256}, "ChecksumAlgorithm": "SHA256"},
                Config=TransferConfig(
                    multipart_threshold=MULTIPART_THRESHOLD,
                    multipart_chunksize=MULTIPART_CHUNKSIZE,
                    max_concurrency=4,
                ),
            )
        except TRANSFER_ERRORS as exc:
            raise self._fail("upload to", key, exc) from None
        return self._verified(key, sha256, size, composites)

    def copy(
        self, source_key: str, key: str, source: S3Object | None = None, absent: bool = False
    ) -> S3Object:
        """Server-side copy (promotion): no bytes leave the server. A caller that has just asked
        the server about the source (`source`) and the destination (`absent`) saves asking again:
        a promotion copies every object of a release.

        One CopyObject up to `copy_part_threshold`, UploadPartCopy parts above it (boto3's managed
        copy, cut like our uploads, so the copy's composite checksum is the source's).
        """
        source = source or self.head(source_key)
        if source is None:
            raise S3Error(f"cannot copy s3://{self.bucket}/{source_key}: object missing")
        composites = {source.checksum.value} if source.checksum.composite else set()
        present = None if absent else self.head(key)
        if present and self._holds(present, source.sha256, source.size, composites):
            return present
        in_parts = source.size >= self.copy_part_threshold
        try:
            # A checksum algorithm on a single CopyObject would make moto recompute a whole-object
            # value yet keep calling it composite; parts need it, else AWS gives them CRC64NVME.
            self._client().copy(
                {"Bucket": self.bucket, "Key": source_key},
                self.bucket,
                key,
                ExtraArgs={
                    "MetadataDirective": "COPY",
                    **({"ChecksumAlgorithm": "SHA256"} if in_parts else {}),
                },
                Config=TransferConfig(
                    multipart_threshold=self.copy_part_threshold,
                    multipart_chunksize=MULTIPART_CHUNKSIZE,
                    max_concurrency=4,
                ),
            )
        except TRANSFER_ERRORS as exc:
            raise self._fail("copy to", key, exc) from None
        # No bytes passed through us: the server's own checksum is the proof, read back only when
        # it cannot tell. The release's blocking S3 check reads the bytes in any case.
        return self._verified(key, source.sha256, source.size, composites, read_back=False)

    def holds(self, key: str, sha256: str, size: int) -> S3Object | None:
        """The object at key if it is exactly these bytes (read back unless told not to), else None."""
        got = self.head(key)
        return got if got is not None and self._holds(got, sha256, size, set()) else None

    def _holds(
        self, got: S3Object, sha256: str, size: int, composites: set[str], read_back: bool = True
    ) -> bool:
        """Whether got is exactly these bytes: size, our claim, the server's checksum, then a
        read-back (always with `read_back` and verify_reads_back; else when the checksum cannot tell)."""
        if got.size != size or got.sha256 != sha256:
            return False
        proven = verdict(got.checksum, sha256, composites)
        if proven is False:
            return False
        if proven is None or (read_back and self.verify_reads_back):
            return self._read_sha256(got.key, got) == (sha256, size)
        return True

    def _verified(
        self, key: str, sha256: str, size: int, composites: set[str], read_back: bool = True
    ) -> S3Object:
        """The object just written, if whole and verified; otherwise delete it and fail."""
        got = self.head(key)
        if got is not None and self._holds(got, sha256, size, composites, read_back):
            return got
        if got is not None:
            try:
                self._client().delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError):
                pass  # the error below still says the object is not to be trusted
        raise S3Error(
            f"s3://{self.bucket}/{key} is not whole after write (removed): expected {size} bytes "
            f"sha256 {sha256}, server has {got}: write it again (a re-run of the release does)"
        )

    def download_sha256(
        self, key: str, into: Path | None = None, reported: S3Object | None = None
    ) -> tuple[str, int]:
        """sha256 and size of the bytes the server returns (what a check must trust); with `into`,
        the bytes are also written there as they are hashed (one GET for a download and its proof)."""
        found = self._read_sha256(key, reported, into)
        if found is None:
            raise S3Error(
                f"s3://{self.bucket}/{key}: the bytes the server returns do not match the checksum "
                "it stored for them: the object is corrupt"
            )
        return found

    def _read_sha256(
        self, key: str, reported: S3Object | None = None, into: Path | None = None
    ) -> tuple[str, int] | None:
        """(sha256, size) of the object's bytes; None if they contradict the server's own checksum.

        We compare, not botocore: it would take moto's composite checksum of a copy (no `-N`) for
        the bytes' sha256 and call every multipart copy corrupt. The GET is pinned to the ETag of
        the HEAD whose checksum we compare with.
        """
        reported = reported or self.head(key)
        h, size = hashlib.sha256(), 0
        body = self.stream(key, reported.etag if reported else "")
        try:
            with open(into, "wb") if into else contextlib.nullcontext() as out:
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
                    if out is not None:
                        out.write(chunk)
        except FlexibleChecksumError:
            return None
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("download", key, exc) from None
        if (
            reported
            and reported.checksum.composite is False
            and reported.checksum.sha256 != h.hexdigest()
        ):
            return None
        return h.hexdigest(), size

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> S3Object:
        sha256 = hashlib.sha256(data).hexdigest()
        present = self.head(key)
        if present and self._holds(present, sha256, len(data), set()):
            return present
        try:
            self._client().put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": sha256},
                ChecksumAlgorithm="SHA256",
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("put", key, exc) from None
        return self._verified(key, sha256, len(data), set())

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("get", key, exc) from None
