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

Services are published concurrently: the engine's classic builder spends most of a build waiting
(about a second per Dockerfile instruction for its intermediate container), so parallel builds
overlap those waits; pushes are bound by the engine compressing layers. Measured on 2 cores with
the vfs driver, 12 images of 12 MB built and pushed at 3, 6 and 10 at a time: 1.7, 1.4 and 1.6 s
per image (one at a time: 3.0 s for the build alone).
"""


import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from deploy_assets.assets.binaries import PROMOTED_TO, binary_key
from deploy_assets.assets.image_recipe import (BUILT_IN_LABEL, CONTENT_KEY_LABEL, ImageProof, binary_path_in_image,
                                               image_labels, prebuild_tag, prove, proof_metadata, recorded_proof)
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import asset_key_for, find_by_content_key, latest_for_partition
from deploy_assets.names import image_key  # noqa: F401 (re-exported)
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.registry import RegistryError, RegistryResource

PUBLISH_CONCURRENCY = 6  # services built/pushed/retagged at once (see the module doc)


class ImageTagConflict(RuntimeError):
    pass


def build_images_asset(services: list[Service], config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    with_dockerfile = [s for s in services if config.source.kinds[s.kind].dockerfile]
    by_key = {image_key(s): s for s in with_dockerfile}
    platform = config.platforms[0]

    @dg.multi_asset(
        specs=[dg.AssetSpec(key, deps=[binary_key(s)], group_name="images", kinds={"docker"},
                            partitions_def=release_partitions, skippable=True,
                            description=f"image {s.name} ({config.source.kinds[s.kind].dockerfile})")
               for key, s in by_key.items()],
        can_subset=True, name="images", partitions_def=release_partitions,
    )
    def images(context: dg.AssetExecutionContext, docker: DockerResource, registry: RegistryResource):
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source, builds = workspace.source(), workspace.builds()
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        docker.ping()
        try:
            registry.ping()
            for service in selected:
                registry.ensure_repository(service.name)
        except RegistryError as exc:  # e.g. it went away during the build: name what is not published
            raise RuntimeError(f"images not published to {settings.registry} "
                               f"({', '.join(s.name for s in selected)}): {exc}") from None
        publish = _Publisher(context, docker, registry, workspace, release.tag, source["commit"], builds,
                             config, settings.registry, platform, _preferred_source(context)).publish
        prebuilds = _promotion_prebuilds(workspace, config, platform)

        def prebuild(service: Service, built: BuiltBinary) -> None:
            """The image prod will ship for a binary staging prebuilt; never fails the release."""
            tag = prebuild_tag(built.content_key)
            try:
                if registry.manifest_digest(service.name, tag):
                    return
                registry.ensure_repository(service.name)
                docker.build_image(workspace.out / built.path, config.source.kinds[service.kind].dockerfile_path,
                                   platform, registry.ref(service.name, tag),
                                   labels=image_labels(service, built.content_key, source["commit"],
                                                       context.partition_key))
                docker.push(f"{settings.registry}/{service.name}", tag, auth_config=registry.docker_auth())
                context.log.info(f"images: prebuilt {registry.ref(service.name, tag)} for the promotion "
                                 "of this commit (not part of this release)")
            except Exception as exc:  # prod builds it itself, and fails there if it must
                context.log.warning(f"images: prebuilding {service.name} for the promotion failed: {exc}")

        results, errors = {}, {}
        with ThreadPoolExecutor(max_workers=PUBLISH_CONCURRENCY) as pool:
            futures = {s.name: pool.submit(publish, s) for s in selected}
            for service, built in prebuilds:
                pool.submit(prebuild, service, built)
            for n, service in enumerate(selected, 1):
                try:
                    results[service.name] = futures[service.name].result()
                    result = results[service.name]
                    took = f" ({result['detail']})" if result.get("detail") else ""
                    context.log.info(f"images {n}/{len(selected)} {service.name}: "
                                     f"{result['action']}{took} {result['digest']}")
                except Exception as exc:  # collect all, then fail once naming every service
                    errors[service.name] = exc
        for service in selected:
            if service.name not in results:
                continue
            built = builds[(service.name, platform)]
            result = results[service.name]
            yield dg.MaterializeResult(asset_key=image_key(service), metadata={
                "image": f"{registry.ref(service.name, release.tag)}@{result['digest']}",
                "ref": registry.ref(service.name, release.tag), "digest": result["digest"],
                "platform": f"linux/{platform}", "content_key": built.content_key,
                "binary_sha256": built.sha256, "commit": source["commit"], "action": result["action"],
                "reused_from": result["reused_from"], "rejected": result.get("rejected", ""),
                **proof_metadata(result["proof"]),
            })
        if errors:
            raise RuntimeError(f"images not published to {settings.registry}: " + "; ".join(
                f"{name}: {exc}" for name, exc in errors.items()))

    return images


class _Publisher:
    """One service's image under the release tag: adopt, retag or build, in that order of cost.
    An image is adopted or retagged only when its layer is proven to hold the binary's sha256
    (image_recipe); an image that does not is never shipped."""

    def __init__(self, context, docker: DockerResource, registry: RegistryResource, workspace: ReleaseWorkspace,
                 tag: str, commit: str, builds: dict, config: PipelineConfig, registry_host: str, platform: str,
                 prefer: str | None):
        self.context, self.docker, self.registry, self.workspace = context, docker, registry, workspace
        self.tag, self.commit, self.builds, self.config = tag, commit, builds, config
        self.registry_host, self.platform, self.prefer = registry_host, platform, prefer
        self.partition = str(context.partition_key)

    def publish(self, service: Service) -> dict:
        built: BuiltBinary = self.builds[(service.name, self.platform)]
        path = binary_path_in_image(self.config.source.kinds[service.kind].dockerfile_path)
        existing = self.registry.manifest_digest(service.name, self.tag)
        previous = find_by_content_key(self.context.instance, image_key(service), "content_key",
                                       built.content_key, prefer_partition=self.prefer)
        if existing:
            return self._existing(service, built, path, existing, previous)
        rejected = []
        if previous and self.registry.manifest_digest(service.name, previous.metadata["digest"]):
            proof = self._proof(service.name, previous.metadata["digest"], built, path, previous.metadata,
                                previous.partition)
            if proof.holds(built.sha256):
                digest = self.registry.retag(service.name, proof.digest, self.tag)
                return {"digest": digest, "action": f"retagged from {previous.partition}",
                        "reused_from": previous.partition, "proof": proof}
            rejected.append(self._reject(service, built, f"the image of {previous.partition}", proof))
        ck = prebuild_tag(built.content_key)
        prebuilt = self.registry.manifest_digest(service.name, ck)
        if prebuilt:
            labels = self.registry.image_labels(service.name, prebuilt)
            if labels.get(CONTENT_KEY_LABEL) == built.content_key:
                warm = latest_for_partition(self.context.instance, binary_key(service), self.partition)
                proof = self._proof(service.name, prebuilt, built, path, warm.metadata if warm else {},
                                    self.partition, prefix="ck_image_")
                if proof.holds(built.sha256):
                    return {**self._retag_prebuilt(service, ck, proof, labels.get(BUILT_IN_LABEL, "")),
                            "rejected": "; ".join(rejected)}
                rejected.append(self._reject(service, built, ck, proof))
        result = self._build_and_push(service, built, path, also_tag=ck if rejected and prebuilt else None)
        return {**result, "rejected": "; ".join(rejected)}

    def _proof(self, name: str, digest: str, built: BuiltBinary, path: str, record: dict, origin: str,
               prefix: str = "") -> ImageProof:
        """The recorded proof for this digest, or a download of its layer (once per digest)."""
        return (recorded_proof(record, digest, built.sha256, path, origin, prefix)
                or prove(self.registry, name, digest, path))

    def _reject(self, service: Service, built: BuiltBinary, what: str, proof: ImageProof) -> str:
        reason = (f"{what} is not shipped: {proof.describe()}, not this release's binary "
                  f"sha256 {built.sha256}")
        self.context.log.warning(f"images: {service.name}: {reason}; building the image from the binary")
        return reason

    def _existing(self, service: Service, built: BuiltBinary, path: str, existing: str, previous) -> dict:
        """The release tag is there already: ours (a re-run, or a run killed after its push) only
        if its layer holds our binary; otherwise refuse, since tags are immutable."""
        ref = self.registry.ref(service.name, self.tag)
        proof = None
        if previous and previous.metadata.get("digest") == existing:
            proof = self._proof(service.name, existing, built, path, previous.metadata, previous.partition)
            if proof.holds(built.sha256):
                # A re-run keeps the lineage the release had; it did not reuse its own bytes.
                origin = (previous.metadata.get("reused_from", "") if previous.partition == self.partition
                          else previous.partition)
                return {"digest": existing, "action": "already pushed", "reused_from": origin, "proof": proof}
        elif self.registry.image_labels(service.name, existing).get(CONTENT_KEY_LABEL) == built.content_key:
            proof = prove(self.registry, service.name, existing, path)
            if proof.holds(built.sha256):  # a run killed after its push but before its record
                return {"digest": existing, "action": "adopted (pushed by an interrupted run)",
                        "reused_from": "", "proof": proof}
        dockerfile = self.config.source.kinds[service.kind].dockerfile_path
        ours = self.docker.build_image(self.workspace.out / built.path, dockerfile, self.platform, ref,
                                       labels=self._labels(service, built))
        holds = (f"{proof.describe()}, not this release's binary sha256 {built.sha256}" if proof
                 else f"its content-key label is not {built.content_key[:16]}")
        raise ImageTagConflict(
            f"{ref} already exists with digest {existing}, which is not this release's image: {holds} "
            f"(this release built image {ours}, content key {built.content_key[:16]}, recorded digest "
            f"{previous.metadata.get('digest') if previous else 'none'}). Tags are immutable: not overwriting")

    def _retag_prebuilt(self, service: Service, ck: str, proof: ImageProof, origin: str) -> dict:
        digest = self.registry.retag(service.name, proof.digest, self.tag)
        if origin == self.partition:  # this release's binaries step pushed it
            return {"digest": digest, "action": "built and pushed", "reused_from": "", "proof": proof,
                    "detail": f"while go was compiling, as {ck}"}
        return {"digest": digest, "action": f"retagged from the image prebuilt in {origin or 'staging'}",
                "reused_from": origin, "proof": proof}

    def _labels(self, service: Service, built: BuiltBinary) -> dict[str, str]:
        return image_labels(service, built.content_key, self.commit, self.partition)

    def _build_and_push(self, service: Service, built: BuiltBinary, path: str, also_tag: str | None) -> dict:
        """Build from the binary and push; `also_tag` (a ck- tag that held other bytes: ours to
        overwrite) gets the same image, so the next release finds the right one there."""
        ref, repository = self.registry.ref(service.name, self.tag), f"{self.registry_host}/{service.name}"
        started = time.monotonic()
        self.docker.build_image(self.workspace.out / built.path,
                                self.config.source.kinds[service.kind].dockerfile_path, self.platform, ref,
                                labels=self._labels(service, built))
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
        if also_tag:
            try:
                self.docker.tag(ref, repository, also_tag)
                self.docker.push(repository, also_tag, auth_config=self.registry.docker_auth())
            except Exception as exc:  # the release tag is right; a later release proves ck- again
                self.context.log.warning(f"images: could not overwrite {repository}:{also_tag}: {exc}")
        return {"digest": digest, "action": "built and pushed", "reused_from": "", "proof": proof,
                "detail": f"build {pushing - started:.1f}s, push {proving - pushing:.1f}s, "
                          f"proof {time.monotonic() - proving:.1f}s"}


def _promotion_prebuilds(workspace: ReleaseWorkspace, config: PipelineConfig,
                         platform: str) -> list[tuple[Service, BuiltBinary]]:
    """Binaries the binaries step prebuilt for prod whose kind prod ships as an image."""
    rule = config.envs.get(PROMOTED_TO)
    if rule is None:
        return []
    services = {s.name: s for s in workspace.services()}
    return [(services[name], built) for (name, p), built in workspace.prebuilds().items()
            if p == platform and name in services and services[name].kind in rule.images
            and config.source.kinds[services[name].kind].dockerfile]


def _preferred_source(context: dg.AssetExecutionContext) -> str | None:
    """For prod, the staging release the promotion gate named (recorded by the source asset)."""
    from deploy_assets.assets.source import SOURCE_KEY
    record = latest_for_partition(context.instance, SOURCE_KEY, context.partition_key)
    tag = record.metadata.get("staging_release") if record else None
    return f"staging|{tag}" if tag else None
