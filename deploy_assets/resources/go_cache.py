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
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.resources.go_cache_entries import (
    AGED_S,
    COMPRESSLEVEL,
    MB,
    CacheArchiveError,
    Entry,
    Hashing,
    age_entries,
    cache_entries,
    compile_cache_key,
    compiled,
    marker,
    mb,
    newest_first_within,
    place,
    stage_dir,
    unpack,
    write_archive,
)
from deploy_assets.resources.s3 import S3Resource, file_sha256

__all__ = [
    "MB",
    "CacheArchiveError",
    "Entry",
    "SharedGoCache",
    "cache_entries",
    "compile_cache_key",
    "marker",
]


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


# A stored archive is rewritten only when a build that restored it compiled more than this part
# of it again: a one-service change adds one package's objects, and uploading the whole archive
# for them (15 s on the 20-service bench) would cost more than the next worker's recompiling.
RESAVE_FRACTION = 0.1
KEPT_MARGIN_S = 300  # restore and build of one session lie within this of each other


class SharedGoCache:
    """GOCACHE restored from / saved to `s3` under `prefix`, at most `max_mb` MB of entries."""

    def __init__(
        self,
        s3: S3Resource,
        prefix: str,
        max_mb: int,
        compresslevel: int = COMPRESSLEVEL,
        resave_fraction: float = RESAVE_FRACTION,
    ):
        self.s3, self.prefix, self.max_bytes, self.compresslevel = (
            s3,
            prefix.strip("/"),
            max_mb * MB,
            compresslevel,
        )
        self.resave_fraction = resave_fraction

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}.{'tgz' if self.compresslevel else 'tar'}"

    @contextlib.contextmanager
    def session(self, gocache: Path, key: str, log) -> Iterator[None]:
        """Restore before the block (a go build), save after it if it succeeded."""
        _, source = self._restore_logged(gocache, key, log)
        started = time.time()
        before = {e.rel for e in cache_entries(gocache)}
        yield
        self.save(
            gocache, key, started, log, before=before, already_stored=source == self.object_key(key)
        )

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
            return (
                f"no archive under {uri(self.s3, self.prefix)}/{key.split('/')[0]}/: cold build",
                None,
            )
        where = uri(self.s3, found.key)
        if marker(gocache, found.sha256).exists():
            return (
                f"already holds {where} (sha256 {found.sha256[:16]}): nothing downloaded",
                found.key,
            )
        if found.size > self.max_bytes + self.max_bytes // 10:
            raise CacheArchiveError(
                f"{where} is {mb(found.size)}, over the cap {mb(self.max_bytes)}"
            )
        with stage_dir(gocache) as staging:
            body = self.s3.stream(found.key, found.etag)  # the HEAD's object, not a newer one
            stream = Hashing(body)
            try:
                names, dropped = unpack(stream, Path(staging), self.max_bytes)
                digest = stream.drain()
            except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
                digest, names = stream.drain(), None
                if digest == found.sha256:
                    raise CacheArchiveError(f"{where} is not a readable archive: {exc}") from None
            if digest != found.sha256:
                raise CacheArchiveError(
                    f"{where} bytes hash to sha256 {digest}, its metadata records "
                    f"{found.sha256}: the archive is corrupt and was not used"
                )
            placed = place(Path(staging), gocache, names, time.time() - AGED_S)
        marker(gocache, found.sha256).touch()
        return (
            f"restored {placed} entries ({mb(stream.size)}) from {where} in {elapsed(since)}"
            + (
                f"; {dropped} entries did not match their names and were left out"
                if dropped
                else ""
            ),
            found.key,
        )

    def _find(self, key: str) -> Archive | None:
        """The archive of key, else the newest of its family (same toolchain, platform, flags)."""
        head = self.s3.head(self.object_key(key))
        if head is None:
            listed = self.s3.list_prefix(f"{self.prefix}/{key.split('/')[0]}/")
            if not listed:
                return None
            head = self.s3.head(max(listed, key=lambda o: o.last_modified).key)
            if head is None:  # removed between the listing and the HEAD
                return None
        # `claimed`: the saver's digest in the metadata (no checksum is sent with an archive)
        return Archive(key=head.key, sha256=head.claimed, size=head.size, etag=head.etag)

    def save(
        self,
        gocache: Path,
        key: str,
        started: float,
        log,
        before: set[str] | None = None,
        already_stored: bool = False,
    ) -> str:
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

    def _save(
        self,
        gocache: Path,
        key: str,
        started: float,
        before: set[str] | None,
        already_stored: bool,
        since: float,
        log,
    ) -> str:
        # Saving back the archive it restored, a build keeps that archive's entries (they look
        # AGED_S old) beside what it used: a build of a few mains (a prebuild, a one-change
        # release) must not shrink the shared archive to its own working set. An archive borrowed
        # from the family (another go.sum) is saved with what this build used only.
        floor = started - AGED_S - KEPT_MARGIN_S if already_stored else started - 1
        used = [e for e in cache_entries(gocache) if e.mtime >= floor]
        created = [e for e in used if e.rel not in before] if before is not None else used
        new_bytes = sum(e.size for e in created if compiled(gocache, e))
        if already_stored and new_bytes <= self.resave_fraction * sum(e.size for e in used):
            return (
                f"save skipped: {key} is stored and the build added {mb(new_bytes)} to it, at most "
                f"{self.resave_fraction:.0%}: a later worker recompiles no more than that"
            )
        kept, dropped = newest_first_within(used, self.max_bytes)
        if dropped:
            log.warning(
                f"go compile cache: {len(dropped)} oldest entries ({mb(sum(e.size for e in dropped))}) "
                f"left out of {key}: the build used more than the cap of {mb(self.max_bytes)} "
                "(GoResource.compile_cache_max_mb)"
            )
        if not kept:
            return f"save skipped: no entry fits the cap of {mb(self.max_bytes)}"
        with stage_dir(gocache) as staging:
            archive = Path(staging) / "archive"
            written = write_archive(gocache, kept, archive, self.compresslevel)
            sha256, size = file_sha256(archive), archive.stat().st_size
            # Not S3Resource.upload: its read-back would take another worker's concurrent PUT for a
            # bad write and delete it. Every restore checks the bytes against this sha256 instead.
            self.s3.upload_unverified(archive, self.object_key(key), sha256)
        marker(gocache, sha256).touch()
        return (
            f"saved {written} entries ({mb(sum(e.size for e in kept))}, archive {mb(size)}) "
            f"as {uri(self.s3, self.object_key(key))} in {elapsed(since)}"
        )
