"""The image registry, spoken to directly over the distribution v2 HTTP API.

We ask the registry itself (not our records) what a tag points to, and promote by re-PUTting the
same manifest under a new tag: the prod tag then has the rc's digest, byte for byte, with no
build and no layer upload. ECR is the production registry: auth and repository checks go
through boto3, the manifest calls are the same API.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
import tarfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import requests
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import PrivateAttr

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
_ECR_HOST = re.compile(r"^(\d+)\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$")
_INDEX_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
_READABLE_LAYERS = re.compile(
    r"(tar|tar\.gzip|tar\+gzip)$"
)  # tarfile reads these; zstd it does not
# ECR tokens live 12 hours; renew well before so a long release never sends an expired one.
_TOKEN_MARGIN = timedelta(minutes=30)


class RegistryError(RuntimeError):
    pass


class RegistryResource(dg.ConfigurableResource):
    """A registry host[:port]; plain HTTP for loopback, HTTPS otherwise."""

    host: str
    ecr_endpoint_url: str = ""  # moto in tests; empty means AWS
    ecr_create_missing: bool = False
    retries: int = 3
    timeout_s: float = 30
    _token: tuple[str, str, datetime] | None = PrivateAttr(default=None)
    _token_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _sessions: threading.local = PrivateAttr(default_factory=threading.local)

    @property
    def is_ecr(self) -> bool:
        return _ECR_HOST.match(self.host) is not None

    @property
    def ecr_region(self) -> str:
        match = _ECR_HOST.match(self.host)
        return match.group(2) if match else ""

    def _base(self) -> str:
        loopback = self.host.startswith(("127.0.0.1", "localhost", "[::1]"))
        return f"{'http' if loopback else 'https'}://{self.host}/v2"

    def ref(self, name: str, tag: str) -> str:
        return f"{self.host}/{name}:{tag}"

    def _ecr(self):
        return boto3.client(
            "ecr", region_name=self.ecr_region or None, endpoint_url=self.ecr_endpoint_url or None
        )

    def ecr_credentials(self) -> tuple[str, str]:
        """(username, password) from ECR's get_authorization_token, reused until near expiry.

        Every manifest call needs them; asking ECR each time would be one extra API call per
        HEAD/GET/PUT and runs into its request rate limits on big releases.
        """
        with self._token_lock:
            now = datetime.now(UTC)
            if self._token and self._token[2] - _TOKEN_MARGIN > now:
                return self._token[0], self._token[1]
            try:
                data = self._ecr().get_authorization_token()["authorizationData"][0]
            except (ClientError, BotoCoreError) as exc:
                raise RegistryError(f"ECR login in {self.ecr_region} failed: {exc}") from None
            user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
            expires = data.get("expiresAt") or now + timedelta(hours=1)
            self._token = (
                user,
                password,
                expires if expires.tzinfo else expires.replace(tzinfo=UTC),
            )
            return user, password

    def docker_auth(self) -> dict[str, str] | None:
        """auth_config for a docker push to this registry: ECR's token, or None (docker's own login)."""
        if not self.is_ecr:
            return None
        user, password = self.ecr_credentials()
        return {"username": user, "password": password}

    def ensure_repository(self, name: str) -> None:
        """Fail early (before any push) when an ECR repository is missing, or create it."""
        if not self.is_ecr:
            return
        ecr = self._ecr()
        try:
            ecr.describe_repositories(repositoryNames=[name])
        except ecr.exceptions.RepositoryNotFoundException:
            if not self.ecr_create_missing:
                raise RegistryError(
                    f"repository {name} not found in ECR {self.ecr_region}"
                ) from None
            try:
                # Immutable like our own rule: a tag never moves once pushed.
                ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
            except (ClientError, BotoCoreError) as exc:
                raise RegistryError(
                    f"ECR {self.ecr_region}: cannot create repository {name}: {exc}"
                ) from None
        except (ClientError, BotoCoreError) as exc:
            raise RegistryError(
                f"ECR {self.ecr_region}: cannot check repository {name}: {exc}"
            ) from None

    def _session(self) -> requests.Session:
        """A keep-alive session per thread: a release sends hundreds of small requests, and a
        new connection for each costs more than the request."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = f"{self._base()}/{path}"
        if self.is_ecr:
            kwargs.setdefault("auth", self.ecr_credentials())
        last: Exception | None = None
        for attempt in range(self.retries):
            try:
                response = self._session().request(method, url, timeout=self.timeout_s, **kwargs)
                if response.status_code < 500:
                    return response
                last = RegistryError(f"HTTP {response.status_code}")
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.5 * 2**attempt)
        raise RegistryError(f"registry {self.host} unreachable ({method} {path}): {last}")

    def ping(self) -> None:
        response = self._request("GET", "")
        if response.status_code not in (200, 401):
            raise RegistryError(
                f"registry {self.host} answered HTTP {response.status_code} on /v2/"
            )

    def manifest_digest(self, name: str, reference: str) -> str | None:
        """The digest the registry serves for name:reference, or None if it has no such tag."""
        response = self._request(
            "HEAD", f"{name}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(
                f"registry {self.host}: HEAD {name}:{reference} gave HTTP {response.status_code}"
            )
        return response.headers.get("Docker-Content-Digest")

    def retag(self, name: str, source_reference: str, new_tag: str) -> str:
        """Put the manifest of name@source_reference under new_tag; returns its digest."""
        got = self._request(
            "GET", f"{name}/manifests/{source_reference}", headers={"Accept": MANIFEST_TYPES}
        )
        if got.status_code != 200:
            raise RegistryError(
                f"registry {self.host}: {name}@{source_reference} not found (HTTP {got.status_code})"
            )
        put = self._request(
            "PUT",
            f"{name}/manifests/{new_tag}",
            data=got.content,
            headers={"Content-Type": got.headers["Content-Type"]},
        )
        if put.status_code not in (200, 201):
            raise RegistryError(
                f"registry {self.host}: retag {name}:{new_tag} failed: HTTP {put.status_code} {put.text[:200]}"
            )
        return put.headers.get("Docker-Content-Digest") or got.headers["Docker-Content-Digest"]

    def delete_tag_manifest(self, name: str, digest: str) -> None:
        """Used by tests and repair: drop a manifest (all tags pointing at it)."""
        self._request("DELETE", f"{name}/manifests/{digest}")

    def _image_config(self, name: str, reference: str) -> dict:
        manifest = self._request(
            "GET", f"{name}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
        ).json()
        return self._request("GET", f"{name}/blobs/{manifest['config']['digest']}").json()

    def manifest_platform(self, name: str, reference: str) -> str:
        """os/arch from the image config, so a check can say what was actually pushed."""
        config = self._image_config(name, reference)
        return f"{config.get('os')}/{config.get('architecture')}"

    def image_labels(self, name: str, reference: str) -> dict[str, str]:
        """Labels of the image config: how a re-run recognises an image its killed run pushed."""
        return (self._image_config(name, reference).get("config") or {}).get("Labels") or {}

    def manifest(self, name: str, reference: str) -> tuple[str, dict]:
        """(digest, manifest) of name:reference; a single-platform image manifest only, because
        only one of those names the layers a proof of its bytes must read."""
        got = self._request(
            "GET", f"{name}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
        )
        if got.status_code != 200:
            raise RegistryError(
                f"registry {self.host}: {name}@{reference} not found (HTTP {got.status_code})"
            )
        manifest = got.json()
        if manifest.get("mediaType") in _INDEX_TYPES or "manifests" in manifest:
            raise RegistryError(
                f"registry {self.host}: {name}@{reference} is a multi-platform index, "
                "not the single image this pipeline pushes"
            )
        return got.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(
            got.content
        ).hexdigest(), manifest

    @contextmanager
    def blob(self, name: str, digest: str):
        """The blob's bytes as a stream (layers are tens of MB: never held in memory whole). ECR
        redirects to S3; requests follows and drops our credentials on the other host."""
        response = self._request("GET", f"{name}/blobs/{digest}", stream=True)
        try:
            if response.status_code != 200:
                raise RegistryError(
                    f"registry {self.host}: blob {name}@{digest} not served (HTTP {response.status_code})"
                )
            yield response.raw
        finally:
            response.close()

    def file_sha256(self, name: str, reference: str, path: str) -> tuple[str, str, str]:
        """(manifest digest, layer digest, sha256) of the regular file at `path` in the image as it
        runs: the topmost layer that has the file (or deletes it) decides. Layer and sha256 are ""
        when the image has no such file. Reads the layers from the top down, one stream each, and
        stops at the file: for our one-layer images that is a single layer download."""
        digest, manifest = self.manifest(name, reference)
        wanted = path.strip("/")
        for layer in reversed(manifest.get("layers") or []):
            media_type = layer.get("mediaType", "")
            if not _READABLE_LAYERS.search(media_type):
                raise RegistryError(
                    f"registry {self.host}: {name}@{digest} has a layer of type {media_type}, "
                    "which cannot be read to prove what it holds"
                )
            with self.blob(name, layer["digest"]) as stream:
                found = _find_in_layer(stream, wanted)
            if found is not None:
                return digest, (layer["digest"] if found else ""), found
        return digest, "", ""


def _find_in_layer(stream, path: str) -> str | None:
    """sha256 of path's regular file in one layer tar; "" if the layer deletes it (a whiteout, or
    an opaque parent folder) or has something else there; None if the layer does not touch it."""
    parent, base = posixpath.split(path)
    parents = {""} | {posixpath.join(*path.split("/")[:i]) for i in range(1, path.count("/") + 1)}
    hidden = False
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                name = posixpath.normpath(member.name.lstrip("/")).removeprefix("./")
                if name == path:
                    if not member.isfile():
                        return ""
                    return hashlib.file_digest(tar.extractfile(member), "sha256").hexdigest()
                if name == posixpath.join(parent, f".wh.{base}") or (
                    posixpath.basename(name) == ".wh..wh..opq"
                    and posixpath.dirname(name) in parents
                ):
                    hidden = True  # unless this same layer adds the file again, further on
    except tarfile.TarError as exc:
        raise RegistryError(f"a layer is not a readable tar: {exc}") from None
    return "" if hidden else None
