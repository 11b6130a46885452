"""The Docker engine: build an image from one binary and push it.

The build context holds only the Dockerfile template and the binary, so a build sends the
binary's megabytes, not the monorepo, and can't pick up stray files.

Images are built with the engine's BuildKit builder by default. The classic builder commits a
container for every instruction after COPY (EXPOSE, ENTRYPOINT, the labels), and on a storage
driver without copy-on-write (vfs) each commit copies the whole image: 20 service images took
26-28 s and 26-28 CPU-s of the machine that way, 4 s and 7.5 CPU-s with BuildKit, which applies
metadata to the image config (the bench's binaries of 11-14 MB, 4 builds at a time).
`builder="classic"` keeps the old path for engines without BuildKit.

A push to a registry that went away is retried by dockerd itself, five times over about 50
seconds per layer, and only then reported. We follow its progress and give up after
`max_push_retries` retries by closing our connection, which makes dockerd cancel the push: the
step fails in seconds, and no abandoned push can complete later behind our back.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import dagster as dg
import docker
from docker.errors import APIError, BuildError, DockerException
from pydantic import Field

from deploy_assets.resources.docker_decisions import (
    RetryCounter,
    buildkit_refusal,
    executable_member,
)

__all__ = ["DockerEngineError", "DockerPushError", "DockerResource", "buildkit_refusal"]

_CACHE_RACE = "failed to get digest"


class DockerEngineError(RuntimeError):
    pass


class DockerPushError(DockerEngineError):
    pass


_UPLOAD_RACE_MARKERS = ("blob unknown", "digest invalid", "blob upload unknown")


class DockerResource(dg.ConfigurableResource):
    """Docker engine via the docker SDK (DOCKER_HOST or the local socket)."""

    base_url: str = Field(
        default="", description="The engine's URL; empty for DOCKER_HOST or the local socket."
    )
    timeout_s: int = Field(default=300, description="Seconds one request to the engine may take.")
    registry_username: str = Field(
        default="",
        description="Registry user for pushes; empty: the Docker client config's credentials.",
    )
    registry_password: str = Field(default="", description="Password of registry_username.")
    max_push_retries: int = Field(
        default=2, description="dockerd's retries of one failing layer before we cancel the push."
    )
    push_attempts: int = Field(
        default=3, description="Whole pushes, when concurrent uploads of one layer raced."
    )
    builder: Literal["buildkit", "classic"] = Field(
        default="buildkit",
        description="BuildKit (the default), or the classic builder for engines without it.",
    )

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
        """Engine version; raises a clear error when no engine answers, or when it cannot build
        with the configured builder (before any side effect)."""
        try:
            client = self._client()
            client.ping()
            version = client.version()
        except (DockerException, OSError) as exc:
            raise DockerEngineError(f"no Docker engine answers at {self.endpoint}: {exc}") from None
        refusal = buildkit_refusal(version) if self.builder == "buildkit" else None
        if refusal:
            raise DockerEngineError(
                f"the Docker engine at {self.endpoint} {refusal}; "
                "set image_builder: classic in the pipeline config"
            )
        return version.get("Version", "?")

    def build_image(
        self, binary: Path, dockerfile: Path, platform: str, tag: str, labels: dict[str, str]
    ) -> str:
        """Build `tag` from the template; the binary is the context's only file, named `service`."""
        if not dockerfile.is_file():
            raise DockerEngineError(f"Dockerfile template {dockerfile} does not exist")
        if self.builder == "buildkit":
            return self._build_with_buildkit(binary, dockerfile, platform, tag, labels)
        return self._build_classic(binary, dockerfile, platform, tag, labels)

    def _build_with_buildkit(
        self, binary: Path, dockerfile: Path, platform: str, tag: str, labels: dict[str, str]
    ) -> str:
        """POST /build?version=2 with a tar context: the SDK's build() has no switch for the
        builder version, and the engine takes a tar context without a BuildKit session. The tar
        must be plain ustar: one that starts with a PAX header (Python's default for files with
        sub-second mtimes) is not recognised as a tar and is parsed as the Dockerfile itself."""
        with tempfile.TemporaryFile(prefix="deploy-assets-ctx-") as context:
            with tarfile.open(fileobj=context, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                tar.add(dockerfile, arcname="Dockerfile")
                tar.add(binary, arcname="service", filter=executable_member)
            context.seek(0)
            api = self._client().api
            params = {
                "t": tag,
                "version": "2",
                "platform": f"linux/{platform}",
                "labels": json.dumps(labels),
                "rm": "1",
            }
            image_id = None
            try:
                response = api.post(
                    api._url("/build"),
                    params=params,
                    data=context,
                    stream=True,
                    headers={"Content-Type": "application/x-tar"},
                    timeout=self.timeout_s,
                )
                api._raise_for_status(response)
                for chunk in api._stream_helper(response, decode=True):
                    if "error" in chunk:
                        raise DockerEngineError(f"docker build of {tag} failed: {chunk['error']}")
                    if chunk.get("id") == "moby.image.id":
                        image_id = chunk["aux"]["ID"]
            except (APIError, DockerException, OSError) as exc:
                raise DockerEngineError(f"docker build of {tag} failed: {exc}") from None
            finally:
                api.close()
        if not image_id:
            raise DockerEngineError(f"docker build of {tag} failed: the engine named no image")
        return image_id

    def _build_classic(
        self, binary: Path, dockerfile: Path, platform: str, tag: str, labels: dict[str, str]
    ) -> str:
        with tempfile.TemporaryDirectory(prefix="deploy-assets-ctx-") as ctx:
            shutil.copyfile(dockerfile, Path(ctx) / "Dockerfile")
            shutil.copy2(binary, Path(ctx) / "service")
            # One mode whatever the source's (the cache's files are read-only): the builder's cache
            # key for COPY includes it, and an image warmed up from go's output must hit that cache.
            os.chmod(Path(ctx) / "service", 0o755)
            for attempt in (1, 2):
                try:
                    image, _ = self._client().images.build(
                        path=ctx,
                        dockerfile="Dockerfile",
                        tag=tag,
                        platform=f"linux/{platform}",
                        labels=labels,
                        rm=True,
                        pull=False,
                        nocache=attempt > 1,
                    )
                    return image.id
                except BuildError as exc:
                    # On a shared engine a cached layer can be removed (another build untagging the
                    # same bytes) between the cache hit and its use: build once more without cache.
                    if attempt == 1 and _CACHE_RACE in str(exc.msg):
                        continue
                    log = "".join(
                        str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log
                    )
                    raise DockerEngineError(
                        f"docker build of {tag} failed: {exc.msg}\n{log[-2000:]}"
                    ) from None
                except (APIError, DockerException) as exc:
                    raise DockerEngineError(f"docker build of {tag} failed: {exc}") from None
        raise AssertionError("unreachable")

    def push(
        self,
        repository: str,
        tag: str,
        progress: Callable[[str], None] | None = None,
        auth_config: dict[str, str] | None = None,
    ) -> str:
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
                if attempt == self.push_attempts or not any(
                    m in str(exc) for m in _UPLOAD_RACE_MARKERS
                ):
                    raise
        raise AssertionError("unreachable")

    def _push_once(
        self,
        repository: str,
        tag: str,
        progress: Callable[[str], None] | None,
        auth: dict[str, str] | None,
    ) -> str:
        registry = repository.split("/", 1)[0]
        digest = None
        retries = RetryCounter()
        client = self._client()
        try:
            for chunk in client.images.push(
                repository, tag=tag, stream=True, decode=True, auth_config=auth
            ):
                if "error" in chunk:
                    raise DockerPushError(
                        f"push of {repository}:{tag} to registry {registry} failed: "
                        f"{chunk['error']}"
                    )
                if retries.count(chunk) > self.max_push_retries:
                    # Closing the connection cancels the push in dockerd (see the module doc).
                    raise DockerPushError(
                        f"push of {repository}:{tag} to registry {registry} failed: layer {chunk.get('id')} "
                        f"still failing after {self.max_push_retries} retries; push cancelled"
                    )
                aux = chunk.get("aux") or {}
                if aux.get("Digest"):
                    digest = aux["Digest"]
                if progress and chunk.get("status") in ("Pushed", "Layer already exists"):
                    progress(
                        f"{repository}:{tag} layer {chunk.get('id')} {chunk['status'].lower()}"
                    )
        except (APIError, DockerException) as exc:
            raise DockerPushError(
                f"push of {repository}:{tag} to registry {registry} failed: {exc}"
            ) from None
        finally:
            client.close()
        if not digest:
            raise DockerPushError(
                f"push of {repository}:{tag} to registry {registry} returned no digest"
            )
        return digest

    def tag(self, ref: str, repository: str, tag: str) -> None:
        """Put the engine's image `ref` under repository:tag too (to push it under a second tag)."""
        try:
            self._client().images.get(ref).tag(repository, tag)
        except DockerException as exc:
            raise DockerEngineError(f"cannot tag {ref} as {repository}:{tag}: {exc}") from None

    def remove_tag(self, ref: str) -> None:
        try:
            self._client().images.remove(ref, noprune=True)
        except DockerException:
            pass
