"""Tag policy: a git tag becomes a `Release` or a rejection with a reason. Pure code, no I/O.

The old workflows triggered on glob-ish tag filters; anything close enough started a deploy.
Here the whole string must match one of the old patterns *and* parse as semver, so a typo,
a look-alike unicode digit or shell metacharacters never reach a subprocess or a registry.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import semver

from deploy_assets.config import Env

MAX_TAG_LENGTH = 64

# ASCII-only on purpose: `\d` would accept Arabic-Indic or full-width digits.
_NUM = r"(?:0|[1-9][0-9]*)"
_TAG_PATTERNS: tuple[tuple[re.Pattern[str], Env], ...] = (
    (re.compile(rf"v{_NUM}\.{_NUM}\.{_NUM}-(?:alpha|beta)\.{_NUM}", re.ASCII), "dev"),
    (re.compile(rf"v{_NUM}\.{_NUM}\.{_NUM}-rc\.{_NUM}", re.ASCII), "staging"),
    (re.compile(rf"v{_NUM}\.{_NUM}\.{_NUM}", re.ASCII), "prod"),
)


class TagRejected(ValueError):
    """The tag is not a release tag; the message says why."""


@dataclass(frozen=True)
class Release:
    """One release: the tag, its semver, and the environment its channel deploys to."""

    tag: str
    env: Env
    version: semver.Version

    @property
    def base_version(self) -> str:
        """X.Y.Z without pre-release: the key that ties rc tags to their prod tag."""
        return str(self.version.finalize_version())

    @property
    def channel(self) -> str | None:
        return self.version.prerelease.split(".")[0] if self.version.prerelease else None

    @property
    def is_prod(self) -> bool:
        return self.env == "prod"

    def staging_tag_prefix(self) -> str:
        return f"v{self.base_version}-rc."


def parse_tag(tag: str) -> Release:
    """Map a tag to its release, or raise TagRejected with a reason a person can act on.

    Acceptance is decided by the full-match patterns and semver alone; `_diagnose` only words
    the reason, so a gap in the wording can never let a tag through.
    """
    if not isinstance(tag, str) or not tag:
        raise TagRejected("empty tag")
    if len(tag) > MAX_TAG_LENGTH:
        raise TagRejected(
            f"tag {tag[:20]!r}... is {len(tag)} characters long, the limit is {MAX_TAG_LENGTH}"
        )
    for pattern, env in _TAG_PATTERNS:
        if pattern.fullmatch(tag):
            try:
                version = semver.Version.parse(tag[1:])
            except ValueError as exc:
                raise TagRejected(f"tag {tag!r} is not valid semver: {exc}") from None
            return Release(tag=tag, env=env, version=version)
    raise TagRejected(f"tag {tag!r} {_diagnose(tag)}; release tags are {_EXPECTED}")


_EXPECTED = "vX.Y.Z-alpha.N / vX.Y.Z-beta.N (dev), vX.Y.Z-rc.N (staging), vX.Y.Z (prod)"
_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9.-]", re.ASCII)
_PRERELEASE = re.compile(r"(?:alpha|beta|rc)\.[0-9]+", re.ASCII)


def _diagnose(tag: str) -> str:
    """Why a tag that matched no pattern is not a release tag, most specific cause first."""
    foreign = [c for c in dict.fromkeys(tag) if not c.isascii()]
    if foreign:
        named = ", ".join(f"{c!r} ({unicodedata.name(c, f'U+{ord(c):04X}')})" for c in foreign)
        return f"contains non-ASCII characters {named}; only ASCII digits count"
    if any(c.isspace() or not c.isprintable() for c in tag):
        return "contains whitespace or control characters"
    if "+" in tag:
        return f"has build metadata {tag[tag.index('+') :]!r}, which release tags do not allow"
    bad = [c for c in dict.fromkeys(tag) if not _ALLOWED_CHARS.fullmatch(c)]
    if bad:
        return (
            f"contains characters {' '.join(bad)} (only letters, digits, '.' and '-' are allowed)"
        )
    if not tag.startswith("v"):
        return "does not start with 'v'"
    core, _, prerelease = tag[1:].partition("-")
    numbers = core.split(".")
    if len(numbers) != 3 or not all(n.isdigit() for n in numbers):
        return f"version {core!r} is not MAJOR.MINOR.PATCH"
    if _has_leading_zero(numbers) or _has_leading_zero(prerelease.split(".")[1:]):
        return "has a number with a leading zero, which semver forbids"
    if not _PRERELEASE.fullmatch(prerelease):
        return f"pre-release {prerelease!r} is not alpha.N, beta.N or rc.N"
    return "matches no release pattern"


def _has_leading_zero(numbers: list[str]) -> bool:
    return any(len(n) > 1 and n.startswith("0") for n in numbers)


def check_partition(tag: str, env: str) -> Release:
    """A partition's env must be the env its version's tag deploys to."""
    release = parse_tag(tag)
    if release.env != env:
        raise TagRejected(
            f"tag {tag!r} deploys to {release.env}, not {env}: partition {env}|{tag} is invalid"
        )
    return release
