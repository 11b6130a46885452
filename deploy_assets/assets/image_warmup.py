"""Images built and pushed from `go build`'s output while go is still compiling the others.

A cold `go build` of many services links one main every few seconds for its last minute or two;
each binary that lands is built into an image and pushed right away, under its content-key tag
`ck-<key>` only: no release tag moves, so nothing is published before the images step, which
then finds the image by its key and retags it (one manifest PUT). Measured on the bench's 20
services: the images step took 34 s after the build with neither, 10 s with the build alone
overlapped (pushes still after), well under a second with both.

A content-key tag is addressed by the bytes it holds, so pushing it early is safe even when the
release fails later: a later release with the same key retags it, one with another key never
sees it. Each pushed image is read back from the registry and the binary in its layer hashed
(`image_recipe.prove`), still while go compiles: the binaries step records that proof, so the
images step retags the digest without a download of its own. A warm-up that fails costs nothing
but the overlap: the images step builds and pushes itself. The first failed push stops the pushes (a registry that went away would otherwise make
dockerd retry every layer for a minute), the builds go on, for the engine's cache.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from deploy_assets.assets.image_recipe import ImageProof, binary_path_in_image, prove
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.registry import RegistryResource

WARMUP_CONCURRENCY = 4


@dataclass(frozen=True)
class WarmupJob:
    """How the images step would build this binary's image: the same inputs, exactly."""

    name: str  # the image repository's name, e.g. ms_core
    tag: str  # the content-key tag, ck-<key>
    dockerfile: Path
    platform: str
    labels: dict[str, str]


@dataclass(frozen=True)
class WarmupOutcome:
    pushed: list[str]  # services whose image is in the registry under its content-key tag
    built: list[str]  # services whose image is only in the engine (its push failed or was skipped)
    failed: dict[str, str]  # service: why its build failed
    proofs: dict[str, ImageProof] = field(
        default_factory=dict
    )  # what each pushed image's layer holds


class ImageWarmup:
    """Callable for GoResource.build(on_binary=...); `finish()` waits for what it started."""

    def __init__(
        self, docker: DockerResource, registry: RegistryResource, jobs: dict[str, WarmupJob]
    ):
        self.docker, self.registry, self.jobs = docker, registry, jobs
        self._scratch: Path | None = None  # made, with the threads, when the first binary comes
        self._pool: ThreadPoolExecutor | None = None
        self._started: dict[str, Future] = {}
        self._push_failed = threading.Event()
        self._proofs: dict[str, ImageProof] = {}

    def __call__(self, binary: Path) -> None:
        job = self.jobs.get(binary.name)
        if job is None or binary.name in self._started:
            return
        if self._pool is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="deploy-assets-warmup-"))
            self._pool = ThreadPoolExecutor(
                max_workers=WARMUP_CONCURRENCY, thread_name_prefix="image-warmup"
            )
        copy = self._scratch / binary.name  # go moves its output away when the build ends
        try:
            shutil.copy2(binary, copy)
        except OSError:
            return
        self._started[binary.name] = self._pool.submit(self._build_and_push, copy, job)

    def _build_and_push(self, binary: Path, job: WarmupJob) -> bool:
        """True when the image is in the registry under job.tag."""
        self.docker.build_image(
            binary, job.dockerfile, job.platform, self.registry.ref(job.name, job.tag), job.labels
        )
        if self._push_failed.is_set():
            return False
        try:
            self.registry.ensure_repository(job.name)
            digest = self.docker.push(
                f"{self.registry.host}/{job.name}", job.tag, auth_config=self.registry.docker_auth()
            )
        except Exception:  # the images step pushes itself, and reports the cause if it fails too
            self._push_failed.set()
            return False
        try:
            self._proofs[job.name] = prove(
                self.registry, job.name, digest, binary_path_in_image(job.dockerfile)
            )
        except Exception:  # unproven: the images step reads the layer itself before it retags
            pass
        return True

    def finish(self) -> WarmupOutcome:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            shutil.rmtree(self._scratch, ignore_errors=True)
        pushed, built, failed = [], [], {}
        for name, future in sorted(self._started.items()):
            exc = future.exception()
            if exc is not None:
                failed[name] = str(exc).splitlines()[0][:200]
            elif future.result():
                pushed.append(name)
            else:
                built.append(name)
        return WarmupOutcome(
            pushed=pushed,
            built=built,
            failed=failed,
            proofs={name: self._proofs[name] for name in pushed if name in self._proofs},
        )
