"""GOCACHE entries and their archives: which entries a build used, checked unpacking, atomic placing.

Go's cache is two files per entry in folders 00-ff: `<action id>-a`, an index entry naming the
output, and `<output id>-d`, the output, whose name is the sha256 of its bytes. Both are checked
against their names when an archive is unpacked, so a damaged entry is never handed to go.
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
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
# cmd/go/internal/cache.mtimeInterval: an entry's mtime is refreshed on use past this age
MTIME_INTERVAL_S = 3600
# how old entries are made to look before a build, so go refreshes each one it uses
AGED_S = 2 * 3600
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


class Hashing:
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


def write_archive(
    gocache: Path, entries: list[Entry], dest: Path, compresslevel: int = COMPRESSLEVEL
) -> int:
    """A tar (gzip at compresslevel > 0) of entries; returns how many made it (go may trim some)."""
    written = 0
    with (
        open(dest, "wb") as raw,
        (
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0)
            if compresslevel
            else contextlib.nullcontext(raw)
        ) as out,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
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


def compiled(gocache: Path, entry: Entry) -> bool:
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


def compile_cache_key(
    toolchain: str, platform: str, flags: list[str] | tuple[str, ...], go_sum: bytes | None
) -> str:
    """'<toolchain>-linux-<platform>-<flags digest>/<go.sum digest>': the part before '/' is the
    family an archive is borrowed from when go.sum changed."""
    flag_digest = hashlib.sha256("\0".join(flags).encode()).hexdigest()[:12]
    deps = hashlib.sha256(go_sum).hexdigest()[:32] if go_sum is not None else "no-go-sum"
    return f"{toolchain}-linux-{platform}-{flag_digest}/{deps}"
