"""Tag policy: a git tag becomes a `Release` or a rejection with a reason. Pure code, no I/O.

The old workflows triggered on glob-ish tag filters; anything close enough started a deploy.
Here the whole string must match one of the old patterns *and* parse as semver, so a typo,
a look-alike unicode digit or shell metacharacters never reach a subprocess or a registry.
"""

from __future__ import annotations

import re
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
    """Map a tag to its release, or raise TagRejected with a reason a person can act on."""
    if not isinstance(tag, str) or not tag:
        raise TagRejected("empty tag")
    if len(tag) > MAX_TAG_LENGTH:
        raise TagRejected(f"tag is {len(tag)} characters long, the limit is {MAX_TAG_LENGTH}")
    if not tag.isascii():
        raise TagRejected(f"tag {tag!r} contains non-ASCII characters")
    if not tag.isprintable() or any(c.isspace() for c in tag):
        raise TagRejected(f"tag {tag!r} contains whitespace or control characters")
    for pattern, env in _TAG_PATTERNS:
        if pattern.fullmatch(tag):
            try:
                version = semver.Version.parse(tag[1:])
            except ValueError as exc:
                raise TagRejected(f"tag {tag!r} is not valid semver: {exc}") from None
            return Release(tag=tag, env=env, version=version)
    raise TagRejected(
        f"tag {tag!r} matches none of vX.Y.Z-alpha.N / vX.Y.Z-beta.N (dev), "
        "vX.Y.Z-rc.N (staging), vX.Y.Z (prod)"
    )


def check_partition(tag: str, env: str) -> Release:
    """A partition's env must be the env its version's tag deploys to."""
    release = parse_tag(tag)
    if release.env != env:
        raise TagRejected(
            f"tag {tag!r} deploys to {release.env}, not {env}: partition {env}|{tag} is invalid"
        )
    return release
