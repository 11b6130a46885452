"""Where a release's binaries come from, and how its S3 objects are stored.

A worker's disk is a cache that may be empty on every run (each production run is a fresh
container), so reuse by content key cannot rest on it. Every binary a release builds is also
stored in the artifact bucket under its content key (`<path>/build-cache/<content key>/<name>`,
the build cache): a worker whose local cache misses downloads it from there once, verified,
instead of running `go build`, and the artifacts step copies it server-side instead of uploading
the bytes again. A promotion on a fresh worker so builds nothing and uploads no binary bytes.

An entry is trusted only as far as its bytes hash to what it claims, to what the server's own
checksum says, and to what the instance recorded for the content key: a corrupted entry is never
used, the release rebuilds that binary and overwrites the entry, and says so. The decisions are
plain functions (`binary_origin`, `entry_refusal`, `store_action`), tested without servers; the
transfers around them run a few at a time, as the artifacts step's uploads do.
"""

import json
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.resources.s3 import S3Error, S3Object, S3Resource, file_sha256

# a binary's origin (metadata build_<platform>)
BUILT, LOCAL, BUCKET = "built", "local cache", "bucket cache"
ORIGINS = (BUILT, LOCAL, BUCKET)
ALREADY, COPY_EARLIER, COPY_CACHE, UPLOAD, CONFLICT = (
    "already",
    "copy earlier",
    "copy build cache",
    "upload",
    "conflict",
)
CACHE_PREFIX = "build-cache"
TRANSFER_CONCURRENCY = 4


@dataclass(frozen=True)
class Recorded:
    """What the instance recorded for a content key's bytes: the proof a bucket entry must match."""

    sha256: str
    size: int
    built_in: str = ""


def cache_path(cache_dir: Path, content_key: str, name: str) -> Path:
    """The local build cache entry (a record `<name>.json` lies beside it)."""
    return Path(cache_dir) / "builds" / content_key[:2] / content_key / name


def bucket_key(s3: S3Resource, content_key: str, name: str) -> str:
    """The bucket's build cache entry; `build-cache` is no semver tag, so no release's folder."""
    return s3.key(f"{CACHE_PREFIX}/{content_key}", name)


def corrupt_warning(uri: str, name: str, expected: str, got: str) -> str:
    return (
        f"build cache entry {uri} is corrupt: expected sha256 {expected}, its bytes are sha256 {got}; "
        f"not using it: rebuilding {name} and overwriting the entry"
    )


def binary_origin(
    local: bool, entry: S3Object | None, recorded: Recorded | None
) -> tuple[str, tuple[str, str]]:
    """(LOCAL, BUCKET or BUILT; the (expected, found) sha256s when the bucket entry is refused).

    The local cache wins (its bytes are hashed by the blocking toolchain check). A bucket entry
    is refused before any download when what it says of itself already contradicts itself (the
    server's checksum against our metadata's claim) or the instance's record.
    """
    if local:
        return LOCAL, ("", "")
    if entry is None:
        return BUILT, ("", "")
    if entry.claimed and entry.claimed != entry.sha256:
        return BUILT, (entry.claimed, entry.sha256)
    if recorded is not None and (entry.sha256, entry.size) != (recorded.sha256, recorded.size):
        return BUILT, (recorded.sha256, entry.sha256)
    return BUCKET, ("", "")


def entry_refusal(
    entry: S3Object, got: tuple[str, int], recorded: Recorded | None
) -> tuple[str, str]:
    """("", "") if the downloaded bytes `got` (sha256, size) are the entry's and the record's;
    else (expected sha256, got sha256) for the warning."""
    expected = recorded.sha256 if recorded else entry.sha256
    size = recorded.size if recorded else entry.size
    if got == (expected, size) and got == (entry.sha256, entry.size):
        return "", ""
    return expected, got[0]


def store_action(
    existing: S3Object | None,
    sha256: str,
    size: int,
    earlier: S3Object | None,
    cached: S3Object | None,
) -> str:
    """How the artifacts step stores one binary at its release key.

    ALREADY with these bytes there; CONFLICT with other bytes there (never overwritten).
    Otherwise a server-side copy from an earlier release's object, else from the build cache
    entry, when it holds these bytes; an upload only when neither does.
    """
    if existing is not None:
        return ALREADY if (existing.sha256, existing.size) == (sha256, size) else CONFLICT
    if earlier is not None and earlier.sha256 == sha256 and earlier.size == size:
        return COPY_EARLIER
    if (
        cached is not None
        and cached.sha256 == sha256
        and cached.size == size
        and cached.claimed in ("", sha256)
    ):
        return COPY_CACHE
    return UPLOAD


def place(cached: Path, dest: Path) -> None:
    """The cached bytes at dest: a hard link (no copy of tens of MB) where the disk allows."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(cached, dest)
    except OSError:
        shutil.copy2(cached, dest)


def cache_record(cached: Path) -> dict:
    """What was recorded beside cached bytes when they were built or downloaded: which release
    built them, and their sha256 and size (older cache entries may lack some)."""
    try:
        return json.loads(cached.with_name(f"{cached.name}.json").read_text())
    except (OSError, ValueError):
        return {}


def sha256_and_size(cached: Path) -> tuple[str, int]:
    """The cached bytes' digest as recorded when they entered the cache, so a release that reuses
    twenty binaries does not hash hundreds of MB again; the blocking toolchain check hashes the
    bytes before anything is pushed, so a damaged cache entry still stops the release."""
    record, size = cache_record(cached), cached.stat().st_size
    if record.get("sha256") and record.get("size") == size:
        return record["sha256"], size
    return file_sha256(cached), size


def commit_entry(staged: Path, target: Path, sha256: str, size: int, built_in: str) -> None:
    """Move verified bytes into the local cache under their key, record first, bytes last: an
    entry that exists is whole (a reader never sees bytes without their record)."""
    staged.chmod(0o555)  # shared by hard links with release folders: never written again
    record = staged.with_suffix(".json")
    record.write_text(json.dumps({"built_in": built_in, "sha256": sha256, "size": size}))
    record.replace(target.with_name(f"{target.name}.json"))
    staged.replace(target)


def fetch(
    s3: S3Resource, cache_dir: Path, keys: dict[str, str], records: dict[str, Recorded | None], warn
) -> dict[str, str]:
    """Each binary's origin (name -> LOCAL, BUCKET or BUILT), downloading bucket entries into the
    local cache on the way. `warn` gets one line per refused entry, naming it and both sha256s."""
    local = {n: cache_path(cache_dir, ck, n).exists() for n, ck in keys.items()}
    misses = [n for n in keys if not local[n]]
    with ThreadPoolExecutor(max_workers=TRANSFER_CONCURRENCY) as pool:
        entries = dict(zip(misses, pool.map(lambda n: s3.head(bucket_key(s3, keys[n], n)), misses)))
        origins = {}
        for name in keys:
            origins[name], (expected, found) = binary_origin(
                local[name], entries.get(name), records.get(name)
            )
            if expected:
                warn(corrupt_warning(s3.uri(entries[name].key), name, expected, found))
        downloads = [n for n in keys if origins[n] == BUCKET]
        refusals = pool.map(
            lambda n: _download(s3, cache_dir, n, keys[n], entries[n], records.get(n)), downloads
        )
        for name, (expected, got) in zip(downloads, list(refusals)):
            if expected:
                origins[name] = BUILT
                warn(corrupt_warning(s3.uri(entries[name].key), name, expected, got))
    return origins


def _download(
    s3: S3Resource,
    cache_dir: Path,
    name: str,
    content_key: str,
    entry: S3Object,
    recorded: Recorded | None,
) -> tuple[str, str]:
    target = cache_path(cache_dir, content_key, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{uuid.uuid4().hex}")
    try:
        got = s3.download_sha256(entry.key, into=staged, reported=entry)
    except S3Error:  # the bytes contradict the server's own checksum
        got = ("(contradicts the server's checksum)", -1)
    expected, found = entry_refusal(entry, got, recorded)
    if expected:
        staged.unlink(missing_ok=True)
        return expected, found
    commit_entry(staged, target, got[0], got[1], recorded.built_in if recorded else "")
    return "", ""


class CacheUploads:
    """Stores freshly built binaries in the bucket's build cache while the step goes on; `finish`
    waits and returns a warning per entry not stored (a cache miss later, never a failed release)."""

    def __init__(self, s3: S3Resource, cache_dir: Path):
        self.s3, self.cache_dir = s3, Path(cache_dir)
        self._pool = ThreadPoolExecutor(max_workers=TRANSFER_CONCURRENCY)
        self._futures: dict[str, Future] = {}

    def submit(self, name: str, content_key: str, sha256: str) -> None:
        path = cache_path(self.cache_dir, content_key, name)
        key = bucket_key(self.s3, content_key, name)
        self._futures[key] = self._pool.submit(self.s3.upload, path, key, sha256)

    def finish(self) -> tuple[int, list[str]]:
        """(entries stored, warnings)."""
        warnings = []
        for key, future in self._futures.items():
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001  (any failure is the same cache miss later)
                warnings.append(
                    f"build cache entry {self.s3.uri(key)} not stored: {exc}; "
                    "a release on another worker will build it again"
                )
        self._pool.shutdown()
        return len(self._futures) - len(warnings), warnings
