"""Image builds started from `go build`'s output while go is still compiling the other services.

The engine's classic builder spends about a second per Dockerfile instruction waiting, while a
cold `go build` of many services keeps both cores busy for minutes: the waits fit in between.
A binary that lands early is built into an image right away, into the local engine only (no
push, nothing published); the images step then builds the same thing with the same inputs,
finds every layer in the engine's build cache, and only pushes. Measured on the bench's 20
services: the images step took 34 s after the build without this.

A warm-up that fails or builds from a binary go had not finished writing costs nothing but the
cache hit: the images step builds from the final bytes either way.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.resources.docker import DockerResource

WARMUP_CONCURRENCY = 4


@dataclass(frozen=True)
class WarmupJob:
    """How the images step will build this binary's image: the same inputs, exactly."""

    dockerfile: Path
    platform: str
    ref: str
    labels: dict[str, str]


class ImageWarmup:
    """Callable for GoResource.build(on_binary=...); `finish()` waits for the builds it started."""

    def __init__(self, docker: DockerResource, jobs: dict[str, WarmupJob]):
        self.docker, self.jobs = docker, jobs
        self._scratch: Path | None = None  # made, with the threads, when the first binary comes
        self._pool: ThreadPoolExecutor | None = None
        self._started: dict[str, Future] = {}

    def __call__(self, binary: Path) -> None:
        job = self.jobs.get(binary.name)
        if job is None or binary.name in self._started:
            return
        if self._pool is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="deploy-assets-warmup-"))
            self._pool = ThreadPoolExecutor(max_workers=WARMUP_CONCURRENCY, thread_name_prefix="image-warmup")
        copy = self._scratch / binary.name  # go moves its output away when the build ends
        try:
            shutil.copy2(binary, copy)
        except OSError:
            return
        self._started[binary.name] = self._pool.submit(
            self.docker.build_image, copy, job.dockerfile, job.platform, job.ref, job.labels)

    def finish(self) -> tuple[list[str], dict[str, str]]:
        """(services whose image is now in the engine's cache, {service: why not} for failures)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            shutil.rmtree(self._scratch, ignore_errors=True)
        done, failed = [], {}
        for name, future in self._started.items():
            exc = future.exception()
            if exc is None:
                done.append(name)
            else:
                failed[name] = str(exc).splitlines()[0][:200]
        return sorted(done), failed
