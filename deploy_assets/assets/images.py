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
the facts read from the registry and the instance on demand (assets/image_facts.py); this step
wires the resources to it and assets/image_publish.py acts on it.

Services are published concurrently: the engine's classic builder spends most of a build waiting
(about a second per Dockerfile instruction for its intermediate container), so parallel builds
overlap those waits; pushes are bound by the engine compressing layers. Measured on 2 cores with
the vfs driver, 12 images of 12 MB built and pushed at 3, 6 and 10 at a time: 1.7, 1.4 and 1.6 s
per image (one at a time: 3.0 s for the build alone).
"""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from deploy_assets.assets.image_decisions import PublishDecision, template_name
from deploy_assets.assets.image_publish import (  # noqa: F401 (ImageTagConflict re-exported)
    ImageRelease,
    ImageTagConflict,
    Publisher,
)
from deploy_assets.assets.image_recipe import proof_metadata
from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.workspace import BuiltBinary, ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.matrix import ReleaseMatrix, with_image
from deploy_assets.names import (
    PROMOTED_FROM,
    SOURCE_KEY,
    binary_key,
    image_key,
    partition_key,
)
from deploy_assets.plan import Service
from deploy_assets.records.history import latest_for_partition
from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.registry import RegistryError, RegistryResource

PUBLISH_CONCURRENCY = 6  # services built/pushed/retagged at once (see the module doc)


def build_images_asset(
    services: list[Service], config: PipelineConfig, settings: Settings
) -> dg.AssetsDefinition:
    by_key = {image_key(s): s for s in with_image(config, services)}
    platform = config.platforms[0]

    @dg.multi_asset(
        specs=[_image_spec(key, s, config) for key, s in by_key.items()],
        can_subset=True,
        name="images",
        partitions_def=release_partitions,
    )
    def images(
        context: dg.AssetExecutionContext, docker: DockerResource, registry: RegistryResource
    ):
        workspace, tagged = ReleaseWorkspace.for_context(context, settings.work_dir)
        release = ImageRelease(
            tagged.tag,
            str(context.partition_key),
            workspace.source()["commit"],
            platform,
            settings.registry,
            _preferred_source(context),
            workspace.builds(),
        )
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        _ready(docker, registry, selected, settings.registry)
        publisher = Publisher(context, docker, registry, workspace, config, release)
        prebuilds = _promotion_prebuilds(workspace, config, tagged.env, platform)
        results, errors = _publish_all(context, publisher, selected, prebuilds)
        for service in selected:
            if service.name in results:
                metadata = _image_metadata(registry, service, release, results[service.name])
                yield dg.MaterializeResult(asset_key=image_key(service), metadata=metadata)
        if errors:
            raise RuntimeError(
                f"images not published to {settings.registry}: "
                + "; ".join(f"{name}: {exc}" for name, exc in errors.items())
            )

    return images


def _image_spec(key: dg.AssetKey, service: Service, config: PipelineConfig) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        deps=[binary_key(service)],
        group_name="images",
        kinds={"docker"},
        partitions_def=release_partitions,
        skippable=True,
        description=f"image {service.name} ({template_name(config, service)})",
    )


def _ready(
    docker: DockerResource, registry: RegistryResource, selected: list[Service], registry_host: str
) -> None:
    """The engine and the registry answer, and each selected service has its repository."""
    docker.ping()
    try:
        registry.ping()
        for service in selected:
            registry.ensure_repository(service.name)
    except RegistryError as exc:  # e.g. it went away during the build: name what is not published
        raise RuntimeError(
            f"images not published to {registry_host} "
            f"({', '.join(s.name for s in selected)}): {exc}"
        ) from None


def _publish_all(
    context: dg.AssetExecutionContext,
    publisher: Publisher,
    selected: list[Service],
    prebuilds: list[tuple[Service, BuiltBinary]],
) -> tuple[dict, dict]:
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
                context.log.info(
                    f"images {n}/{len(selected)} {service.name}: "
                    f"{result.action}{took} {result.digest}"
                )
            except Exception as exc:  # collect all, then fail once naming every service
                errors[service.name] = exc
    return results, errors


def _image_metadata(
    registry: RegistryResource, service: Service, release: ImageRelease, result: PublishDecision
) -> dict:
    built = release.builds[(service.name, release.platform)]
    ref = registry.ref(service.name, release.tag)
    return {
        "image": f"{ref}@{result.digest}",
        "ref": ref,
        "digest": result.digest,
        "platform": f"linux/{release.platform}",
        "content_key": built.content_key,
        "binary_sha256": built.sha256,
        "commit": release.commit,
        "action": result.action,
        "reused_from": result.reused_from,
        "rejected": "; ".join(result.rejected),
        **proof_metadata(result.proof),
    }


def _promotion_prebuilds(
    workspace: ReleaseWorkspace, config: PipelineConfig, env: str, platform: str
) -> list[tuple[Service, BuiltBinary]]:
    """Binaries the binaries step prebuilt for prod whose image prod ships (the matrix's
    prebuilt images of this env; none at any other env)."""
    matrix = ReleaseMatrix.of(config, workspace.services())
    wanted = {s.name: s for s in matrix.env(env).prebuilt_images}
    return [
        (wanted[name], built)
        for (name, p), built in workspace.prebuilds().items()
        if p == platform and name in wanted
    ]


def _preferred_source(context: dg.AssetExecutionContext) -> str | None:
    """For prod, the staging release the promotion gate named (recorded by the source asset)."""
    record = latest_for_partition(context.instance, SOURCE_KEY, context.partition_key)
    tag = record.metadata.get("staging_release") if record else None
    return partition_key(PROMOTED_FROM, tag) if tag else None
