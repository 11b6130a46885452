"""Credentials in git remote URLs: shown redacted, handed to git through its environment.

Most teams push to GitHub over HTTPS with the token as the URL's user info (user `x-access-token`,
the token as password, before `@github.com/org`). A URL like that must never be printed, stored as metadata, raised in an exception, written into a clone's
`.git/config` or passed in git's argv (any local user can read another process's argv in /proc).
So every URL shown anywhere goes through `redact_url` (or `redact_text` for free text such as
git's stderr), and git is given the plain URL plus the credentials as an `http.<url>.extraHeader`
in `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` environment variables: they reach
git's HTTP layer, are readable only by the same user, and never touch a config file on disk.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
_HTTP_SCHEMES = ("http", "https")
# scheme://userinfo@ anywhere in free text (git's messages, tracebacks)
_USERINFO_IN_TEXT = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@'\"]+)@"
)


def _split_userinfo(url: str):
    """(parts, user, password) of a URL; user is None when the URL carries no userinfo."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None, None, None
    if not parts.scheme or "@" not in parts.netloc:
        return parts, None, None
    userinfo, _, _ = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    return parts, user, password if sep else None


def _host_part(parts) -> str:
    return parts.netloc.rpartition("@")[2]


def has_credentials(url: str) -> bool:
    """True for a URL that carries a secret: a password, or any userinfo over HTTP(S) (a token
    alone as user name is how GitHub and GitLab accept tokens)."""
    parts, user, password = _split_userinfo(url)
    if user is None:
        return False
    return password is not None or parts.scheme.lower() in _HTTP_SCHEMES


def redact_url(url: str) -> str:
    """The URL with its secret replaced by *** (`https://***@host/org`); others unchanged.

    `ssh://git@host/x` keeps its user name (it is not a secret); a password is always masked.
    """
    parts, user, password = _split_userinfo(url)
    if user is None or not has_credentials(url):
        return url
    if parts.scheme.lower() in _HTTP_SCHEMES:
        userinfo = MASK
    else:
        userinfo = f"{user}:{MASK}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{_host_part(parts)}"))


def plain_url(url: str) -> str:
    """The URL without its credentials: what git gets in argv and stores in `.git/config`."""
    if not has_credentials(url):
        return url
    parts, _, _ = _split_userinfo(url)
    return urlunsplit(parts._replace(netloc=_host_part(parts)))


def secrets_of(url: str) -> list[str]:
    """The literal secret strings of a URL (raw and percent-decoded), to scrub from free text."""
    parts, user, password = _split_userinfo(url)
    if user is None or not has_credentials(url):
        return []
    secret = password if password is not None else user
    found = {secret, unquote(secret)} if secret else set()
    if secret:
        found.add(base64.b64encode(f"{unquote(user)}:{unquote(password or '')}".encode()).decode())
    return sorted((s for s in found if s), key=len, reverse=True)


def redact_text(text: str, *urls: str) -> str:
    """Free text (git's stderr, an error) with every `scheme://userinfo@` masked, and every
    literal secret of `urls` replaced too (git may echo a credential without its URL)."""
    for url in urls:
        for secret in secrets_of(url):
            text = text.replace(secret, MASK)
    return _USERINFO_IN_TEXT.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def git_credentials(
    url: str, environ: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """(plain URL, env vars) that let git authenticate to `url` without the secret in argv.

    The header is scoped to the URL's prefix (`http.<plain url>.extraHeader`), so a GitOps root
    `https://host/org` covers every repo under it and no other host ever gets the header. Entries
    already in `GIT_CONFIG_COUNT` of the environment are kept (ours are appended).
    """
    if not has_credentials(url):
        return url, {}
    parts, user, password = _split_userinfo(url)
    if parts.scheme.lower() not in _HTTP_SCHEMES:
        raise ValueError(
            f"{redact_url(url)}: a password in a {parts.scheme}:// URL is not supported; "
            "use an SSH key or an https:// URL with a token"
        )
    plain = plain_url(url)
    basic = base64.b64encode(f"{unquote(user)}:{unquote(password or '')}".encode()).decode()
    environ = os.environ if environ is None else environ
    index = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)
    return plain, {
        "GIT_CONFIG_COUNT": str(index + 1),
        f"GIT_CONFIG_KEY_{index}": f"http.{plain}.extraHeader",
        f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {basic}",
    }
