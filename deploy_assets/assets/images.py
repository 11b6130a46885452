"""Container images `{registry}/{service}:{tag}`, one asset per service.

Tags are immutable here whatever the registry allows: a tag that exists with a digest we did
not record for these bytes is refused, never overwritten. Bytes already pushed under another
tag (same content key) are promoted by a registry-side retag of the same manifest digest; so is
the image the binaries step pushed under its content-key tag while go was compiling
(assets/image_warmup.py), which leaves this step a manifest PUT per service on a cold release.

Labels are claims, not proof: an image is adopted or retagged only when its layer holds the
binary with the built sha256 (assets/image_recipe.py). The proof is made once per manifest digest
(a layer download) and recorded with the image; a promotion retags a digest whose proof its
staging record carries, so it downloads nothing. An image that fails the proof is never shipped:
a ck- tag (ours) is overwritten with an image built from the binary, a release tag is refused.
Which of these happens is the publish decision (assets/image_decisions.py), a plain function of
the facts this step reads from the registry and the instance on demand (assets/image_facts.py).

Services are published concurrently: the engine's classic builder spends most of a build waiting
(about a second per Dockerfile instruction for its intermediate container), so parallel builds
overlap those waits; pushes are bound by the engine compressing layers. Measured on 2 cores with
the vfs driver, 12 images of 12 MB built and pushed at 3, 6 and 10 at a time: 1.7, 1.4 and 1.6 s
per image (one at a time: 3.0 s for the build alone).
"""


import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import dagster as dg

from deploy_assets.assets.image_decisions import (Publish, PublishDecision, publish_decision, tag_conflict,
                                                  template_name)
from deploy_assets.assets.image_facts import RegistryImageFacts
from deploy_assets.assets.image_recipe import (binary_path_in_image, image_labels, prebuild_tag, prove,
                                               proof_metadata)
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import latest_for_partition
from deploy_assets.matrix import dockerfile_of, with_image
from deploy_assets.names import (PROMOTED_FROM, PROMOTED_TO, SOURCE_KEY, binary_key, image_key,
                                 partition_key)
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.registry import RegistryError, RegistryResource

PUBLISH_CONCURRENCY = 6  # services built/pushed/retagged at once (see the module doc)


class ImageTagConflict(RuntimeError):
    pass


def build_images_asset(services: list[Service], config: PipelineConfig,
                       settings: Settings) -> dg.AssetsDefinition:
    by_key = {image_key(s): s for s in with_image(config, services)}
    platform = config.platforms[0]

    @dg.multi_asset(
        specs=[dg.AssetSpec(key, deps=[binary_key(s)], group_name="images", kinds={"docker"},
                            partitions_def=release_partitions, skippable=True,
                            description=f"image {s.name} ({template_name(config, s)})")
               for key, s in by_key.items()],
        can_subset=True, name="images", partitions_def=release_partitions,
    )
    def images(context: dg.AssetExecutionContext, docker: DockerResource, registry: RegistryResource):
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source, builds = workspace.source(), workspace.builds()
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        _ready(docker, registry, selected, settings.registry)
        publisher = _Publisher(context, docker, registry, workspace, release.tag, source["commit"], builds,
                               config, settings.registry, platform, _preferred_source(context))
        results, errors = _publish_all(context, publisher, selected,
                                       _promotion_prebuilds(workspace, config, platform))
        for service in selected:
            if service.name in results:
                yield dg.MaterializeResult(asset_key=image_key(service), metadata=_image_metadata(
                    registry, service, release.tag, builds[(service.name, platform)], platform,
                    source["commit"], results[service.name]))
        if errors:
            raise RuntimeError(f"images not published to {settings.registry}: " + "; ".join(
                f"{name}: {exc}" for name, exc in errors.items()))

    return images


def _ready(docker: DockerResource, registry: RegistryResource, selected: list[Service],
           registry_host: str) -> None:
    """The engine and the registry answer, and each selected service has its repository."""
    docker.ping()
    try:
        registry.ping()
        for service in selected:
            registry.ensure_repository(service.name)
    except RegistryError as exc:  # e.g. it went away during the build: name what is not published
        raise RuntimeError(f"images not published to {registry_host} "
                           f"({', '.join(s.name for s in selected)}): {exc}") from None


def _publish_all(context: dg.AssetExecutionContext, publisher: "_Publisher", selected: list[Service],
                 prebuilds: list[tuple[Service, BuiltBinary]]) -> tuple[dict, dict]:
    """Every selected service's image, concurrently, with the promotion's prebuilds beside them:
    (decisions by service name, errors by service name), logged in the services' order."""
    results, errors = {}, {}
    with ThreadPoolExecutor(max_workers=PUBLISH_CONCURRENCY) as pool:
        futures = {s.name: pool.submit(publisher.publish, s) for s in selected}
        for service, built in prebuilds:
            pool.submit(publisher.prebuild, service, built)
        for n, service in enumerate(selected, 1):
            try:
                result = results[service.name] = futures[service.name].result()
                took = f" ({result.detail})" if result.detail else ""
                context.log.info(f"images {n}/{len(selected)} {service.name}: "
                                 f"{result.action}{took} {result.digest}")
            except Exception as exc:  # collect all, then fail once naming every service
                errors[service.name] = exc
    return results, errors


def _image_metadata(registry: RegistryResource, service: Service, tag: str, built: BuiltBinary,
                    platform: str, commit: str, result: PublishDecision) -> dict:
    ref = registry.ref(service.name, tag)
    return {
        "image": f"{ref}@{result.digest}", "ref": ref, "digest": result.digest,
        "platform": f"linux/{platform}", "content_key": built.content_key,
        "binary_sha256": built.sha256, "commit": commit, "action": result.action,
        "reused_from": result.reused_from, "rejected": "; ".join(result.rejected),
        **proof_metadata(result.proof),
    }


class _Publisher:
    """One service's image under the release tag: the decision (image_decisions) on the facts
    the registry and the instance give (image_facts), then the one action it names."""

    def __init__(self, context, docker: DockerResource, registry: RegistryResource, workspace: ReleaseWorkspace,
                 tag: str, commit: str, builds: dict, config: PipelineConfig, registry_host: str, platform: str,
                 prefer: str | None):
        self.context, self.docker, self.registry, self.workspace = context, docker, registry, workspace
        self.tag, self.commit, self.builds, self.config = tag, commit, builds, config
        self.registry_host, self.platform, self.prefer = registry_host, platform, prefer
        self.partition = str(context.partition_key)

    def publish(self, service: Service) -> PublishDecision:
        built: BuiltBinary = self.builds[(service.name, self.platform)]
        path = binary_path_in_image(dockerfile_of(self.config, service))
        facts = RegistryImageFacts(self.context.instance, self.registry, service, built, self.tag, path,
                                   self.partition, self.prefer)
        decision = publish_decision(facts, built.sha256, built.content_key, self.partition)
        for reason in decision.rejected:
            self.context.log.warning(f"images: {service.name}: {reason}; building the image from the binary")
        if decision.how is Publish.REFUSE:
            self._refuse(service, built, decision, facts.record.digest if facts.record else None)
        if decision.how is Publish.BUILD:
            return self._build_and_push(service, built, path, decision)
        if decision.how in (Publish.RETAG, Publish.PREBUILT):
            return replace(decision, digest=self.registry.retag(service.name, decision.digest, self.tag))
        return decision

    def _refuse(self, service: Service, built: BuiltBinary, decision: PublishDecision,
                recorded: str | None) -> None:
        """Tags are immutable: build ours anyway, so the refusal names both images."""
        ref = self.registry.ref(service.name, self.tag)
        ours = self.docker.build_image(self.workspace.out / built.path, dockerfile_of(self.config, service),
                                       self.platform, ref, labels=self._labels(service, built))
        raise ImageTagConflict(tag_conflict(ref, decision, ours, built.content_key, recorded))

    def _labels(self, service: Service, built: BuiltBinary) -> dict[str, str]:
        return image_labels(service, built.content_key, self.commit, self.partition)

    def _build_and_push(self, service: Service, built: BuiltBinary, path: str,
                        decision: PublishDecision) -> PublishDecision:
        """Build from the binary and push; `also_tag` (a ck- tag that held other bytes: ours to
        overwrite) gets the same image, so the next release finds the right one there."""
        ref, repository = self.registry.ref(service.name, self.tag), f"{self.registry_host}/{service.name}"
        started = time.monotonic()
        self.docker.build_image(self.workspace.out / built.path, dockerfile_of(self.config, service),
                                self.platform, ref, labels=self._labels(service, built))
        pushing = time.monotonic()
        digest = self.docker.push(repository, self.tag, auth_config=self.registry.docker_auth())
        served = self.registry.manifest_digest(service.name, self.tag)
        if served != digest:
            raise RuntimeError(f"{ref}: push reported {digest} but the registry serves {served}")
        proving = time.monotonic()
        proof = prove(self.registry, service.name, digest, path)
        if not proof.holds(built.sha256):
            raise RuntimeError(f"{ref}: the image just built and pushed does not hold the binary: "
                               f"{proof.describe()}, not sha256 {built.sha256}")
        if decision.also_tag:
            try:
                self.docker.tag(ref, repository, decision.also_tag)
                self.docker.push(repository, decision.also_tag, auth_config=self.registry.docker_auth())
            except Exception as exc:  # the release tag is right; a later release proves ck- again
                self.context.log.warning(f"images: could not overwrite {repository}:{decision.also_tag}: {exc}")
        return replace(decision, digest=digest, proof=proof,
                       detail=f"build {pushing - started:.1f}s, push {proving - pushing:.1f}s, "
                              f"proof {time.monotonic() - proving:.1f}s")

    def prebuild(self, service: Service, built: BuiltBinary) -> None:
        """The image prod will ship for a binary staging prebuilt; never fails the release."""
        tag = prebuild_tag(built.content_key)
        try:
            if self.registry.manifest_digest(service.name, tag):
                return
            self.registry.ensure_repository(service.name)
            self.docker.build_image(self.workspace.out / built.path, dockerfile_of(self.config, service),
                                    self.platform, self.registry.ref(service.name, tag),
                                    labels=self._labels(service, built))
            self.docker.push(f"{self.registry_host}/{service.name}", tag,
                             auth_config=self.registry.docker_auth())
            self.context.log.info(f"images: prebuilt {self.registry.ref(service.name, tag)} for the "
                                  "promotion of this commit (not part of this release)")
        except Exception as exc:  # prod builds it itself, and fails there if it must
            self.context.log.warning(f"images: prebuilding {service.name} for the promotion failed: {exc}")


def _promotion_prebuilds(workspace: ReleaseWorkspace, config: PipelineConfig,
                         platform: str) -> list[tuple[Service, BuiltBinary]]:
    """Binaries the binaries step prebuilt for prod whose kind prod ships as an image."""
    rule = config.envs.get(PROMOTED_TO)
    if rule is None:
        return []
    services = {s.name: s for s in workspace.services()}
    return [(services[name], built) for (name, p), built in workspace.prebuilds().items()
            if p == platform and name in services and services[name].kind in rule.images
            and dockerfile_of(config, services[name])]


def _preferred_source(context: dg.AssetExecutionContext) -> str | None:
    """For prod, the staging release the promotion gate named (recorded by the source asset)."""
    record = latest_for_partition(context.instance, SOURCE_KEY, context.partition_key)
    tag = record.metadata.get("staging_release") if record else None
    return partition_key(PROMOTED_FROM, tag) if tag else None
