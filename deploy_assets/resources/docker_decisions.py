"""The Docker engine's answers read without an engine: can it build with BuildKit, the mode of
a build context's binary, and how often dockerd has retried a layer of a push (docker.py)."""

from __future__ import annotations

import re
import tarfile

_RETRYING = re.compile(r"^Retrying in (\d+) seconds?$")


def buildkit_refusal(version: dict) -> str | None:
    """Why an engine (its /version answer) cannot run BuildKit builds, or None when it can:
    BuildKit came with API 1.39 (Docker 18.09), for Linux engines only."""
    api = tuple(int(part) for part in str(version.get("ApiVersion", "0.0")).split(".")[:2])
    if api < (1, 39):
        return f"speaks API {version.get('ApiVersion')}, BuildKit builds need 1.39 (Docker 18.09) or later"
    if version.get("Os", "linux") != "linux":
        return f"runs on {version.get('Os')}, BuildKit builds need a Linux engine"
    return None


def executable_member(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """One mode and owner whatever the source's (the build cache's files are read-only)."""
    member.mode, member.uid, member.gid, member.uname, member.gname = 0o755, 0, 0, "", ""
    return member


class RetryCounter:
    """Counts dockerd's layer upload retries from its progress stream.

    Each retry announces a countdown, "Retrying in 5 seconds", 4, 3, ...; a countdown that
    starts over (a larger number than the last one seen for that layer) is the next retry.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._retries: dict[str, int] = {}

    def count(self, chunk: dict) -> int:
        match = _RETRYING.match(str(chunk.get("status", "")))
        if not match:
            return 0
        layer, seconds = str(chunk.get("id")), int(match.group(1))
        if seconds > self._last.get(layer, 0):
            self._retries[layer] = self._retries.get(layer, 0) + 1
        self._last[layer] = seconds
        return self._retries[layer]
