"""The Docker engine: build an image from one binary and push it.

The build context is a temp folder holding only the Dockerfile template and the binary, so a
build sends kilobytes of context, not the monorepo, and can't pick up stray files.

A push to a registry that went away is retried by dockerd itself, five times over about 50
seconds per layer, and only then reported. We follow its progress and give up after
`max_push_retries` retries by closing our connection, which makes dockerd cancel the push: the
step fails in seconds, and no abandoned push can complete later behind our back.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import dagster as dg
import docker
from docker.errors import APIError, BuildError, DockerException


_CACHE_RACE = "failed to get digest"


class DockerEngineError(RuntimeError):
    pass


class DockerPushError(DockerEngineError):
    pass


_RETRYING = re.compile(r"^Retrying in (\d+) seconds?$")
_UPLOAD_RACE_MARKERS = ("blob unknown", "digest invalid", "blob upload unknown")


class DockerResource(dg.ConfigurableResource):
    """Docker engine via the docker SDK (DOCKER_HOST or the local socket)."""

    base_url: str = ""
    timeout_s: int = 300
    registry_username: str = ""
    registry_password: str = ""
    max_push_retries: int = 2  # dockerd's retries of one failing layer before we cancel the push
    push_attempts: int = 3  # whole pushes, when concurrent uploads of one layer raced

    @property
    def endpoint(self) -> str:
        """Where the engine is expected, for error messages."""
        return self.base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def _client(self) -> docker.DockerClient:
        try:
            if self.base_url:
                return docker.DockerClient(base_url=self.base_url, timeout=self.timeout_s)
            return docker.from_env(timeout=self.timeout_s)
        except DockerException as exc:
            raise DockerEngineError(f"no Docker engine answers at {self.endpoint}: {exc}") from None

    def ping(self) -> str:
        """Engine version; raises a clear error when no engine answers (before any side effect)."""
        try:
            client = self._client()
            client.ping()
            return client.version().get("Version", "?")
        except (DockerException, OSError) as exc:
            raise DockerEngineError(f"no Docker engine answers at {self.endpoint}: {exc}") from None

    def build_image(self, binary: Path, dockerfile: Path, platform: str, tag: str,
                    labels: dict[str, str]) -> str:
        """Build `tag` from the template; the binary is the context's only file, named `service`."""
        if not dockerfile.is_file():
            raise DockerEngineError(f"Dockerfile template {dockerfile} does not exist")
        with tempfile.TemporaryDirectory(prefix="deploy-assets-ctx-") as ctx:
            shutil.copyfile(dockerfile, Path(ctx) / "Dockerfile")
            shutil.copy2(binary, Path(ctx) / "service")
            # One mode whatever the source's (the cache's files are read-only): the builder's cache
            # key for COPY includes it, and an image warmed up from go's output must hit that cache.
            os.chmod(Path(ctx) / "service", 0o755)
            for attempt in (1, 2):
                try:
                    image, _ = self._client().images.build(
                        path=ctx, dockerfile="Dockerfile", tag=tag, platform=f"linux/{platform}",
                        labels=labels, rm=True, pull=False, nocache=attempt > 1,
                    )
                    return image.id
                except BuildError as exc:
                    # On a shared engine a cached layer can be removed (another build untagging the
                    # same bytes) between the cache hit and its use: build once more without cache.
                    if attempt == 1 and _CACHE_RACE in str(exc.msg):
                        continue
                    log = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
                    raise DockerEngineError(f"docker build of {tag} failed: {exc.msg}\n{log[-2000:]}") from None
                except (APIError, DockerException) as exc:
                    raise DockerEngineError(f"docker build of {tag} failed: {exc}") from None
        raise AssertionError("unreachable")

    def push(self, repository: str, tag: str, progress: Callable[[str], None] | None = None,
             auth_config: dict[str, str] | None = None) -> str:
        """Push repository:tag; returns the manifest digest the registry acknowledged.

        Two pushes of the same layer at once (two envs releasing the same bytes) can make a
        distribution registry answer "blob unknown" / "digest invalid" to one of them; pushing
        again then finds the layer in place. Such races are retried `push_attempts` times.
        """
        auth = auth_config
        if auth is None and self.registry_username:
            auth = {"username": self.registry_username, "password": self.registry_password}
        for attempt in range(1, self.push_attempts + 1):
            try:
                return self._push_once(repository, tag, progress, auth)
            except DockerPushError as exc:
                if attempt == self.push_attempts or not any(m in str(exc) for m in _UPLOAD_RACE_MARKERS):
                    raise
        raise AssertionError("unreachable")

    def _push_once(self, repository: str, tag: str, progress: Callable[[str], None] | None,
                   auth: dict[str, str] | None) -> str:
        registry = repository.split("/", 1)[0]
        digest = None
        retries = _RetryCounter()
        client = self._client()
        try:
            for chunk in client.images.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
                if "error" in chunk:
                    raise DockerPushError(f"push of {repository}:{tag} to registry {registry} failed: "
                                          f"{chunk['error']}")
                if retries.count(chunk) > self.max_push_retries:
                    # Closing the connection cancels the push in dockerd (see the module doc).
                    raise DockerPushError(
                        f"push of {repository}:{tag} to registry {registry} failed: layer {chunk.get('id')} "
                        f"still failing after {self.max_push_retries} retries; push cancelled")
                aux = chunk.get("aux") or {}
                if aux.get("Digest"):
                    digest = aux["Digest"]
                if progress and chunk.get("status") in ("Pushed", "Layer already exists"):
                    progress(f"{repository}:{tag} layer {chunk.get('id')} {chunk['status'].lower()}")
        except (APIError, DockerException) as exc:
            raise DockerPushError(f"push of {repository}:{tag} to registry {registry} failed: {exc}") from None
        finally:
            client.close()
        if not digest:
            raise DockerPushError(f"push of {repository}:{tag} to registry {registry} returned no digest")
        return digest

    def remove_tag(self, ref: str) -> None:
        try:
            self._client().images.remove(ref, noprune=True)
        except DockerException:
            pass


class _RetryCounter:
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
