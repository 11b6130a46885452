"""A Go compile cache shared by workers through the artifact bucket: one archive of GOCACHE per key.

Every run's container starts with an empty GOCACHE, so without this a dev release where one
service changed recompiles the standard library and every package. An archive is keyed by
toolchain, platform, build flags and go.sum (`compile_cache_key`); when go.sum changed, the
newest archive of the same toolchain/platform/flags is restored instead, since the standard
library and the unchanged packages are most of it.

Correctness never rests on the key: go addresses its cache by action ID (a hash of all inputs of
a compile), so entries from another key only miss. What it rests on:
- the archive's sha256, recorded in its S3 metadata at upload, is compared with the bytes read on
  every restore before any entry lands in GOCACHE: a mismatch is a warning and a cold build;
- each output entry is named by the sha256 of its bytes (go's OutputID), each index entry holds
  its own action ID: an entry that does not match its name is dropped;
- entries are linked into place one by one (atomic per file, never over an existing one), so a go
  reading the cache meanwhile sees an entry whole or not at all.

Size: go refreshes an entry's mtime on use only when it is older than an hour (mtimeInterval in
cmd/go/internal/cache). Before a build every entry is made to look two hours old, so afterwards
those with mtime >= the build's start are exactly what it used or created: only they are saved,
newest first up to `max_mb` (of entry bytes). A release that builds nothing new saves nothing.

Two workers saving one key at once: each PUT is a whole object (S3 writes are atomic) and the last
writer wins; the other's new entries are compiled again by a later build, never half-stored.
A cache that cannot be reached, or any error here, is a warning and a slower build, never a
failed release.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.resources.s3 import S3Resource, file_sha256

MB = 1024 * 1024
MTIME_INTERVAL_S = 3600  # cmd/go/internal/cache.mtimeInterval: an entry's mtime is refreshed on use past this age
AGED_S = 2 * 3600  # how old entries are made to look before a build, so go refreshes each one it uses
ENTRY = re.compile(r"^([0-9a-f]{2})/(\1[0-9a-f]{62})-([ad])$")
INDEX_ENTRY_LEN = 175  # "v1 <action id> <output id> %20d %20d\n"
STATE_DIR = ".shared-cache"  # in GOCACHE (same file system): restore markers and staging folders
COMPRESSLEVEL = 1  # gzip -1: 20-service bench, 757 MB of entries -> 108 MB in 5.8 s, unpacked in 2.1 s; 0: plain tar


class CacheArchiveError(RuntimeError):
    """An archive that must not be used (wrong sha256, unexpected members, over the cap)."""


@dataclass(frozen=True)
class Entry:
    rel: str  # "ab/<hash>-d"
    size: int
    mtime: float


def compile_cache_key(toolchain: str, platform: str, flags: list[str] | tuple[str, ...],
                      go_sum: bytes | None) -> str:
    """'<toolchain>-linux-<platform>-<flags digest>/<go.sum digest>': the part before '/' is the
    family an archive is borrowed from when go.sum changed."""
    flag_digest = hashlib.sha256("\0".join(flags).encode()).hexdigest()[:12]
    deps = hashlib.sha256(go_sum).hexdigest()[:32] if go_sum is not None else "no-go-sum"
    return f"{toolchain}-linux-{platform}-{flag_digest}/{deps}"


def cache_entries(gocache: Path) -> list[Entry]:
    """GOCACHE's entries (the 00-ff folders); go's own files and ours at the root are not entries."""
    found: list[Entry] = []
    for sub in range(256):
        folder = gocache / f"{sub:02x}"
        try:
            with os.scandir(folder) as it:
                for item in it:
                    rel = f"{sub:02x}/{item.name}"
                    with contextlib.suppress(FileNotFoundError):  # go trims while we look
                        if ENTRY.match(rel) and item.is_file(follow_symlinks=False):
                            st = item.stat(follow_symlinks=False)
                            found.append(Entry(rel, st.st_size, st.st_mtime))
        except FileNotFoundError:
            continue
    return found


def age_entries(gocache: Path, entries: list[Entry], now: float) -> None:
    """Make entries look AGED_S old so go refreshes the mtime of each one it uses."""
    old = now - AGED_S
    for entry in entries:
        if entry.mtime > now - MTIME_INTERVAL_S:
            with contextlib.suppress(FileNotFoundError):
                os.utime(gocache / entry.rel, (old, old))


class _Hashing:
    """A reader that hashes and counts what passes through (the archive as it is downloaded)."""

    def __init__(self, body):
        self.body, self.sha256, self.size = body, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.body.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return self.sha256.hexdigest()


def _entry_is_whole(rel: str, path: Path) -> bool:
    """An output entry's name is the sha256 of its bytes; an index entry holds its own action ID."""
    _, digest, kind = ENTRY.match(rel).groups()
    if kind == "d":
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest() == digest
    data = path.read_bytes()
    return len(data) == INDEX_ENTRY_LEN and data.startswith(f"v1 {digest} ".encode())


def unpack(stream, staging: Path, limit: int) -> tuple[list[str], int]:
    """Unpack an archive stream into staging: (entries whole, entries dropped). Any member that is
    not a GOCACHE entry, or entry bytes past `limit`, rejects the whole archive."""
    kept, dropped, total = [], 0, 0
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            if not member.isreg() or not ENTRY.match(member.name):
                raise CacheArchiveError(f"member {member.name!r} is not a GOCACHE entry")
            total += member.size
            if total > limit:
                raise CacheArchiveError(f"entries exceed {limit // MB} MB")
            path = staging / member.name
            path.parent.mkdir(exist_ok=True)
            with tar.extractfile(member) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            if _entry_is_whole(member.name, path):
                kept.append(member.name)
            else:
                path.unlink()
                dropped += 1
    return kept, dropped


def place(staging: Path, gocache: Path, names: list[str], mtime: float) -> int:
    """Link staged entries into GOCACHE where it has none (atomic per file; outputs before the
    index entries naming them, so go never finds an index entry before its output)."""
    placed = 0
    for rel in sorted(names, key=lambda n: n.endswith("-a")):
        src = staging / rel
        os.utime(src, (mtime, mtime))
        (gocache / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, gocache / rel)
            placed += 1
        except FileExistsError:
            pass  # go (or another restore) has it: an entry is the same whoever wrote it
    return placed


def write_archive(gocache: Path, entries: list[Entry], dest: Path, compresslevel: int = COMPRESSLEVEL) -> int:
    """A tar (gzip at compresslevel > 0) of entries; returns how many made it (go may trim some)."""
    written = 0
    with open(dest, "wb") as raw, (gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0)
                                   if compresslevel else contextlib.nullcontext(raw)) as out, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            try:
                with open(gocache / entry.rel, "rb") as fh:
                    info = tar.gettarinfo(arcname=entry.rel, fileobj=fh)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    tar.addfile(info, fh)
                written += 1
            except FileNotFoundError:
                continue
    return written


def _compiled(gocache: Path, entry: Entry) -> bool:
    """Whether an entry is a build's output, not an index of a module folder ('go index' data that
    every build of a fresh checkout writes again: it hashes the folder's path and mtimes)."""
    if not entry.rel.endswith("-d"):
        return False
    try:
        with open(gocache / entry.rel, "rb") as fh:
            return not fh.read(8).startswith(b"go index")
    except FileNotFoundError:
        return False


def newest_first_within(entries: list[Entry], max_bytes: int) -> tuple[list[Entry], list[Entry]]:
    """(kept, dropped): the newest entries, up to the first that would take the total past max_bytes."""
    ordered, total = sorted(entries, key=lambda e: e.mtime, reverse=True), 0
    for n, entry in enumerate(ordered):
        total += entry.size
        if total > max_bytes:
            return ordered[:n], ordered[n:]
    return ordered, []


def mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def stage_dir(gocache: Path) -> tempfile.TemporaryDirectory:
    """A temporary folder in GOCACHE's file system (so a link or rename into GOCACHE is atomic)."""
    (gocache / STATE_DIR).mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="tmp-", dir=gocache / STATE_DIR)


def marker(gocache: Path, sha256: str) -> Path:
    """Present once GOCACHE holds the archive with this sha256 (restored or saved from here)."""
    return gocache / STATE_DIR / f"holds-{sha256}"


def uri(s3: S3Resource, key: str) -> str:
    return f"s3://{s3.bucket}/{key}"


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f} s"


@dataclass(frozen=True)
class Archive:
    key: str
    sha256: str  # what the S3 metadata records: the saver's digest of the bytes it uploaded
    size: int
    etag: str


class SharedGoCache:
    """GOCACHE restored from / saved to `s3` under `prefix`, at most `max_mb` MB of entries."""

    def __init__(self, s3: S3Resource, prefix: str, max_mb: int, compresslevel: int = COMPRESSLEVEL):
        self.s3, self.prefix, self.max_bytes, self.compresslevel = s3, prefix.strip("/"), max_mb * MB, compresslevel

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}.{'tgz' if self.compresslevel else 'tar'}"

    @contextlib.contextmanager
    def session(self, gocache: Path, key: str, log) -> Iterator[None]:
        """Restore before the block (a go build), save after it if it succeeded."""
        _, source = self._restore_logged(gocache, key, log)
        started = time.time()
        before = {e.rel for e in cache_entries(gocache)}
        yield
        self.save(gocache, key, started, log, before=before, already_stored=source == self.object_key(key))

    def restore(self, gocache: Path, key: str, log) -> str:
        """Entries of the archive for key (or its family's newest) into GOCACHE; every entry of
        GOCACHE then looks two hours old, so that `save` sees what the build uses. One line back."""
        return self._restore_logged(gocache, key, log)[0]

    def _restore_logged(self, gocache: Path, key: str, log) -> tuple[str, str | None]:
        """(outcome, the object key GOCACHE now holds, if any)."""
        since = time.monotonic()
        try:
            outcome, source = self._restore(gocache, key, since)
        except Exception as exc:  # noqa: BLE001 — the cache only speeds builds up: it never fails one
            outcome, source = f"not restored ({exc}): cold build", None
            log.warning(f"go compile cache: {outcome}")
        else:
            log.info(f"go compile cache: {outcome}")
        with contextlib.suppress(OSError):
            age_entries(gocache, cache_entries(gocache), time.time())
        return outcome, source

    def _restore(self, gocache: Path, key: str, since: float) -> tuple[str, str | None]:
        found = self._find(key)
        if found is None:
            return f"no archive under {uri(self.s3, self.prefix)}/{key.split('/')[0]}/: cold build", None
        where = uri(self.s3, found.key)
        if marker(gocache, found.sha256).exists():
            return f"already holds {where} (sha256 {found.sha256[:16]}): nothing downloaded", found.key
        if found.size > self.max_bytes + self.max_bytes // 10:
            raise CacheArchiveError(f"{where} is {mb(found.size)}, over the cap {mb(self.max_bytes)}")
        with stage_dir(gocache) as staging:
            body = self.s3._client().get_object(  # the HEAD's object, not one written since
                Bucket=self.s3.bucket, Key=found.key, IfMatch=f'"{found.etag}"')["Body"]
            stream = _Hashing(body)
            try:
                names, dropped = unpack(stream, Path(staging), self.max_bytes)
                digest = stream.drain()
            except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
                digest, names = stream.drain(), None
                if digest == found.sha256:
                    raise CacheArchiveError(f"{where} is not a readable archive: {exc}") from None
            if digest != found.sha256:
                raise CacheArchiveError(f"{where} bytes hash to sha256 {digest}, its metadata records "
                                        f"{found.sha256}: the archive is corrupt and was not used")
            placed = place(Path(staging), gocache, names, time.time() - AGED_S)
        marker(gocache, found.sha256).touch()
        return (f"restored {placed} entries ({mb(stream.size)}) from {where} in {elapsed(since)}"
                + (f"; {dropped} entries did not match their names and were left out" if dropped else ""),
                found.key)

    def _find(self, key: str) -> Archive | None:
        """The archive of key, else the newest of its family (same toolchain, platform, flags)."""
        client = self.s3._client()
        candidates = [self.object_key(key)]
        if not self._exists(candidates[0]):
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.s3.bucket, Prefix=f"{self.prefix}/{key.split('/')[0]}/")
            listed = [o for page in pages for o in page.get("Contents", ())]
            if not listed:
                return None
            candidates = [max(listed, key=lambda o: o["LastModified"])["Key"]]
        head = client.head_object(Bucket=self.s3.bucket, Key=candidates[0])
        return Archive(key=candidates[0], sha256=head.get("Metadata", {}).get("sha256", ""),
                       size=head["ContentLength"], etag=head.get("ETag", "").strip('"'))

    def _exists(self, object_key: str) -> bool:
        try:
            self.s3._client().head_object(Bucket=self.s3.bucket, Key=object_key)
            return True
        except Exception as exc:  # noqa: BLE001 — a 404 is absence; anything else is the caller's warning
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def save(self, gocache: Path, key: str, started: float, log, before: set[str] | None = None,
             already_stored: bool = False) -> str:
        """Upload the entries the build used or created (mtime >= started) as key's archive.

        Skipped when the build created no entry (`before`: the entries it started with) and the
        bucket already holds this key's archive. Last writer wins; an error is a warning."""
        since = time.monotonic()
        try:
            outcome = self._save(gocache, key, started, before, already_stored, since, log)
        except Exception as exc:  # noqa: BLE001 — a cache that cannot be saved is only slower next time
            outcome = f"not saved ({exc})"
            log.warning(f"go compile cache: {outcome}")
        else:
            log.info(f"go compile cache: {outcome}")
        return outcome

    def _save(self, gocache: Path, key: str, started: float, before: set[str] | None,
              already_stored: bool, since: float, log) -> str:
        used = [e for e in cache_entries(gocache) if e.mtime >= started - 1]
        created = [e for e in used if e.rel not in before] if before is not None else used
        if not any(_compiled(gocache, e) for e in created) and already_stored:
            return f"save skipped: the build created no entries and {key} is stored"
        kept, dropped = newest_first_within(used, self.max_bytes)
        if dropped:
            log.warning(f"go compile cache: {len(dropped)} oldest entries ({mb(sum(e.size for e in dropped))}) "
                        f"left out of {key}: the build used more than the cap of {mb(self.max_bytes)} "
                        "(GoResource.compile_cache_max_mb)")
        if not kept:
            return f"save skipped: no entry fits the cap of {mb(self.max_bytes)}"
        with stage_dir(gocache) as staging:
            archive = Path(staging) / "archive"
            written = write_archive(gocache, kept, archive, self.compresslevel)
            sha256, size = file_sha256(archive), archive.stat().st_size
            # Not S3Resource.upload: its read-back would take another worker's concurrent PUT for a
            # bad write and delete it. Every restore checks the bytes against this sha256 instead.
            self.s3._client().upload_file(str(archive), self.s3.bucket, self.object_key(key),
                                          ExtraArgs={"Metadata": {"sha256": sha256}})
        marker(gocache, sha256).touch()
        return (f"saved {written} entries ({mb(sum(e.size for e in kept))}, archive {mb(size)}) "
                f"as {uri(self.s3, self.object_key(key))} in {elapsed(since)}")
