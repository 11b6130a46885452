"""The source mirror's locks: who holds our flock, and git's own `*.lock` files a killed git
left behind (removed only while holding the flock, so no live git loses its lock).

Split from resources/git.py, which uses them around every write to the mirror.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from deploy_assets.resources.credentials import redact_text


def lock_holder(lock_file: Path) -> str:
    """Who holds lock_file's flock: pid and command from /proc/locks, else what the holder wrote."""
    with contextlib.suppress(OSError):
        inode = lock_file.stat().st_ino
        for line in Path("/proc/locks").read_text().splitlines():
            fields = (
                line.split()
            )  # "1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> 0 EOF" ("1: -> FLOCK" waits)
            at = fields.index("FLOCK") if "FLOCK" in fields else -1
            if (
                at < 0
                or "->" in fields
                or len(fields) <= at + 4
                or fields[at + 4].rsplit(":", 1)[-1] != str(inode)
            ):
                continue
            pid = fields[at + 3]
            with contextlib.suppress(OSError):
                cmd = (
                    Path(f"/proc/{pid}/cmdline")
                    .read_bytes()
                    .replace(b"\0", b" ")
                    .decode(errors="replace")
                )
                return f"pid {pid} ({redact_text(cmd.strip())[:120]})"
            return f"pid {pid}"
    with contextlib.suppress(OSError):
        return lock_file.read_text().strip() or "another process"
    return "another process"


def remove_stale_git_locks(repo: Path) -> list[Path]:
    """Delete git's `*.lock` files in a bare repo; call only while holding the repo's flock."""
    removed = []
    for pattern in ("*.lock", "refs/**/*.lock", "objects/info/*.lock"):
        for lock in repo.glob(pattern):
            if lock.is_file():
                lock.unlink(missing_ok=True)
                removed.append(lock)
    return removed


def pid_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
