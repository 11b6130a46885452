"""What an S3 API's ChecksumSHA256 says about an object's bytes: pure decisions, no requests.

AWS's rules: a single-part object's ChecksumSHA256 is the sha256 of its bytes (ChecksumType
FULL_OBJECT). A multipart upload's is COMPOSITE: the sha256 of its parts' sha256s, which HeadObject
reports as `base64-N` with ChecksumType COMPOSITE (SHA256 has no FULL_OBJECT form for multipart).
A CopyObject either keeps the source's checksum or recomputes a FULL_OBJECT one over the copy; an
UploadPartCopy copy gets a composite over its own parts, equal to the source's when the part
boundaries are the same (ours are: one chunk size for uploads and copies).

The local S3 API (moto) reports a composite without `-N` or ChecksumType, and keeps it on a
CopyObject whose ETag is single-part. So the ETag proves nothing: a checksum's meaning is taken
from its own form (`-N`, ChecksumType) and, when that is silent, from whether the server says the
object has parts (HeadObject with PartNumber=1 answers PartsCount only for a multipart object).
Read as a whole-object sha256, a composite makes every multipart copy look corrupt.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from s3transfer.utils import ChunksizeAdjuster

MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class Checksum:
    """A server's ChecksumSHA256 and what it covers: `composite` is False for the bytes' sha256,
    True for a sha256 over part checksums, None while the response leaves it open."""

    value: str = ""  # base64, without any `-N`
    composite: bool | None = None
    parts: int = 0  # part count when known (composite only)

    @property
    def sha256(self) -> str:
        """The bytes' hex sha256 if this checksum is one, else ""."""
        return base64.b64decode(self.value).hex() if self.value and self.composite is False else ""

    def __str__(self) -> str:
        if not self.value:
            return "none"
        kind = {False: "full object", True: "composite", None: "undecided"}[self.composite]
        return f"{self.value}{f'-{self.parts}' if self.parts else ''} ({kind})"


def b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def reported_checksum(head: dict) -> Checksum:
    """The checksum of a HeadObject response (ChecksumMode ENABLED), decided from its own form."""
    raw = head.get("ChecksumSHA256") or ""
    if not raw:
        return Checksum()
    value, dash, count = raw.partition("-")
    if dash:
        if not count.isdigit():
            raise ValueError(f"ChecksumSHA256 {raw!r}: neither a digest nor `digest-N` (N parts)")
        return Checksum(value, True, int(count))
    kind = head.get("ChecksumType", "")
    if kind == "FULL_OBJECT":
        return Checksum(value, False)
    return Checksum(value, True if kind == "COMPOSITE" else None)


def with_part_count(checksum: Checksum, part_head: dict) -> Checksum:
    """Settle an undecided checksum (or a composite's part count) from HeadObject PartNumber=1:
    PartsCount is answered for a multipart object only, whatever its ETag says."""
    parts = part_head.get("PartsCount")
    if parts is None:
        return checksum if checksum.composite else Checksum(checksum.value, False)
    return Checksum(checksum.value, True, int(parts))


def needs_part_count(checksum: Checksum) -> bool:
    return bool(checksum.value) and (
        checksum.composite is None or (checksum.composite and not checksum.parts)
    )


def verdict(got: Checksum, sha256: str, composites: set[str]) -> bool | None:
    """True if the server's checksum proves the bytes are `sha256`, False if it proves other bytes,
    None if it cannot tell: no checksum, or a composite over parts cut elsewhere than the ones we
    know (`composites`: base64 values, for our upload's cut or the copied source's)."""
    if not got.value or got.composite is None:
        return None
    if not got.composite:
        return got.value == b64(sha256)
    return True if got.value in composites else None


def part_size(size: int) -> int:
    """The part size s3transfer uses for an object of `size` bytes (uploads and copies alike)."""
    return ChunksizeAdjuster().adjust_chunksize(MULTIPART_CHUNKSIZE, size)


def multipart_checksum(path: Path, size: int) -> str:
    """The composite ChecksumSHA256 (base64, without `-N`) of our multipart upload of path."""
    digests = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(part_size(size)), b""):
            digests.update(hashlib.sha256(block).digest())
    return base64.b64encode(digests.digest()).decode()
