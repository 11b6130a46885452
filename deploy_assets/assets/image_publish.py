"""One service's image under the release tag: the publish decision (image_decisions) on the
facts the registry and the instance give (image_facts), then the one action it names: keep,
retag, build and push, or refuse. Also the image prod will ship for a binary staging prebuilt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import dagster as dg

from deploy_assets.assets.image_decisions import (
    Publish,
    PublishDecision,
    publish_decision,
    tag_conflict,
)
from deploy_assets.assets.image_facts import RegistryImageFacts
from deploy_assets.assets.image_recipe import (
    binary_path_in_image,
    image_labels,
    prebuild_tag,
    prove,
)
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig
from deploy_assets.matrix import dockerfile_of
from deploy_assets.plan import Service
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.registry import RegistryResource


class ImageTagConflict(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageRelease:
    """What every service's publish shares: the release, its commit and its binaries."""

    tag: str
    partition: str  # env|tag
    commit: str
    platform: str
    registry_host: str
    prefer: str | None  # for prod, the staging release whose records come first
    builds: dict  # (service name, platform): BuiltBinary


class Publisher:
    """Publishes services' images for one release (called from several threads at once)."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        docker: DockerResource,
        registry: RegistryResource,
        workspace: ReleaseWorkspace,
        config: PipelineConfig,
        release: ImageRelease,
    ):
        self.context, self.docker, self.registry = context, docker, registry
        self.workspace, self.config, self.release = workspace, config, release

    def publish(self, service: Service) -> PublishDecision:
        release = self.release
        built: BuiltBinary = release.builds[(service.name, release.platform)]
        path = binary_path_in_image(dockerfile_of(self.config, service))
        facts = RegistryImageFacts(
            self.context.instance,
            self.registry,
            service,
            built,
            release.tag,
            path,
            release.partition,
            release.prefer,
        )
        decision = publish_decision(facts, built.sha256, built.content_key, release.partition)
        for reason in decision.rejected:
            self.context.log.warning(
                f"images: {service.name}: {reason}; building the image from the binary"
            )
        if decision.how is Publish.REFUSE:
            self._refuse(service, built, decision, facts.record.digest if facts.record else None)
        if decision.how is Publish.BUILD:
            return self._build_and_push(service, built, path, decision)
        if decision.how in (Publish.RETAG, Publish.PREBUILT):
            digest = self.registry.retag(service.name, decision.digest, release.tag)
            return replace(decision, digest=digest)
        return decision

    def _build(self, service: Service, built: BuiltBinary, ref: str) -> str:
        """The image of the binary, as every publish path builds it: the engine's image id."""
        labels = image_labels(
            service, built.content_key, self.release.commit, self.release.partition
        )
        return self.docker.build_image(
            self.workspace.out / built.path,
            dockerfile_of(self.config, service),
            self.release.platform,
            ref,
            labels=labels,
        )

    def _refuse(
        self, service: Service, built: BuiltBinary, decision: PublishDecision, recorded: str | None
    ) -> None:
        """Tags are immutable: build ours anyway, so the refusal names both images."""
        ref = self.registry.ref(service.name, self.release.tag)
        ours = self._build(service, built, ref)
        raise ImageTagConflict(tag_conflict(ref, decision, ours, built.content_key, recorded))

    def _build_and_push(
        self, service: Service, built: BuiltBinary, path: str, decision: PublishDecision
    ) -> PublishDecision:
        """Build from the binary and push; `also_tag` (a ck- tag that held other bytes: ours to
        overwrite) gets the same image, so the next release finds the right one there."""
        tag = self.release.tag
        ref = self.registry.ref(service.name, tag)
        repository = f"{self.release.registry_host}/{service.name}"
        started = time.monotonic()
        self._build(service, built, ref)
        pushing = time.monotonic()
        digest = self.docker.push(repository, tag, auth_config=self.registry.docker_auth())
        served = self.registry.manifest_digest(service.name, tag)
        if served != digest:
            raise RuntimeError(f"{ref}: push reported {digest} but the registry serves {served}")
        proving = time.monotonic()
        proof = prove(self.registry, service.name, digest, path)
        if not proof.holds(built.sha256):
            raise RuntimeError(
                f"{ref}: the image just built and pushed does not hold the binary: "
                f"{proof.describe()}, not sha256 {built.sha256}"
            )
        if decision.also_tag:
            self._overwrite(ref, repository, decision.also_tag)
        took = (
            f"build {pushing - started:.1f}s, push {proving - pushing:.1f}s, "
            f"proof {time.monotonic() - proving:.1f}s"
        )
        return replace(decision, digest=digest, proof=proof, detail=took)

    def _overwrite(self, ref: str, repository: str, tag: str) -> None:
        try:
            self.docker.tag(ref, repository, tag)
            self.docker.push(repository, tag, auth_config=self.registry.docker_auth())
        except Exception as exc:  # the release tag is right; a later release proves ck- again
            self.context.log.warning(f"images: could not overwrite {repository}:{tag}: {exc}")

    def prebuild(self, service: Service, built: BuiltBinary) -> None:
        """The image prod will ship for a binary staging prebuilt; never fails the release."""
        tag = prebuild_tag(built.content_key)
        try:
            if self.registry.manifest_digest(service.name, tag):
                return
            self.registry.ensure_repository(service.name)
            self._build(service, built, self.registry.ref(service.name, tag))
            self.docker.push(
                f"{self.release.registry_host}/{service.name}",
                tag,
                auth_config=self.registry.docker_auth(),
            )
            self.context.log.info(
                f"images: prebuilt {self.registry.ref(service.name, tag)} for "
                "the promotion of this commit (not part of this release)"
            )
        except Exception as exc:  # prod builds it itself, and fails there if it must
            self.context.log.warning(
                f"images: prebuilding {service.name} for the promotion failed: {exc}"
            )
