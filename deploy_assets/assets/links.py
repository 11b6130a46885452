"""Links for the UI and the CLI: where a person can look at an image, an object or a bump commit.

Dagster shows `MetadataValue.url` as a clickable link; a link is only made where the system
behind it serves one (a registry's HTTP API, an S3 endpoint or console, a web git host), never
for a bare local path, which is shown as a path instead.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import dagster as dg

from deploy_assets.resources.credentials import plain_url

_ECR_HOST = re.compile(r"^(\d+)\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$")


def registry_url(host: str, name: str, reference: str) -> str:
    """The manifest in the registry (ECR: the repository in the AWS console)."""
    ecr = _ECR_HOST.match(host)
    if ecr:
        account, region = ecr.groups()
        return (
            f"https://{region}.console.aws.amazon.com/ecr/repositories/private/{account}/"
            f"{quote(name)}?region={region}"
        )
    loopback = host.startswith(("127.0.0.1", "localhost", "[::1]"))
    return f"{'http' if loopback else 'https'}://{host}/v2/{name}/manifests/{reference}"


def s3_url(bucket: str, key: str, region: str, endpoint_url: str = "") -> str:
    """Path-style URL on a custom endpoint (moto, MinIO); the S3 console for AWS."""
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{bucket}/{quote(key)}"
    return (
        f"https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={quote(key)}"
    )


def gitops_commit_url(root: str, repo: str, commit: str) -> str | None:
    """A web git host's commit page (root like https://github.com/org); None for local repos.

    A token in the root's user info (see resources/credentials.py) is dropped: the link is
    stored in the event log and shown in the UI, and the page asks the person to log in anyway.
    """
    if not root.startswith(("https://", "http://")) or not commit:
        return None
    return f"{plain_url(root).rstrip('/')}/{repo}/commit/{commit}"


def url_or_text(url: str | None, text: str) -> dg.MetadataValue:
    return dg.MetadataValue.url(url) if url else dg.MetadataValue.text(text)
