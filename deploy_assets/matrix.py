"""The release matrix: what each env builds, images, uploads, prebuilds for the promotion and
deploys, which assets its job selects and which checks apply. Pure code, no I/O.

It used to be recomputed wherever it was needed (jobs, plan, source, binaries, images, GitOps,
the promotion checks), each with its own `services_for(...)` and Dockerfile-per-kind test, so
changing the matrix meant editing eight modules and `deploy-assets plan` could drift from what a
run does. Now one object answers, built from the pipeline config and a service list (the code
location's, or the one a release recorded at its commit), and everything else reads it.

GitOps targets (which repos an env's bump writes) are the config's business: the matrix says
only which projects a release deploys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from deploy_assets import names
from deploy_assets.assets.release_record import RECORD_NAMES
from deploy_assets.config import EnvRule, PipelineConfig

if TYPE_CHECKING:  # plan.py builds on this module: importing it at run time would be a cycle
    from deploy_assets.plan import Service

# Kinds whose `@Router` annotations make the release's routes.json (the old workflow's swag step).
ROUTED_KINDS = ("ms",)


class MatrixError(ValueError):
    """The config has no rule for what was asked; the message names it and what exists."""


def dockerfile_of(config: PipelineConfig, service: Service) -> Path | None:
    """The Dockerfile template of the service's kind; None: the kind gets no image. The one
    Dockerfile-per-kind lookup: the matrix's images are the services this finds a template for."""
    return config.source.kinds[service.kind].dockerfile_path


def with_image(config: PipelineConfig, services: Iterable[Service]) -> list[Service]:
    """The services whose kind has a Dockerfile template (the others get no image)."""
    return [s for s in services if config.source.kinds[s.kind].dockerfile]


def routed_services(services: Iterable[Service]) -> list[Service]:
    """The services whose routes the release parses and deploys."""
    return [s for s in services if s.kind in ROUTED_KINDS]


def _of_kinds(services: Iterable[Service], kinds: Iterable[str]) -> tuple[Service, ...]:
    wanted = set(kinds)
    return tuple(s for s in services if s.kind in wanted)


@dataclass(frozen=True)
class EnvMatrix:
    """One env's release: every list keeps the service order of the matrix (kind, then name)."""

    env: str
    platforms: tuple[str, ...]  # primary first
    built: tuple[Service, ...]
    images: tuple[Service, ...]  # built, kind imaged by the env and with a Dockerfile template
    uploads: tuple[Service, ...]
    deployed: tuple[Service, ...]  # the GitOps projects the bump sets to the version
    prebuilds: tuple[Service, ...]  # built into the build cache only, for the promoted env
    prebuilt_images: tuple[Service, ...]  # prebuilds whose image the promoted env ships (ck- tag)
    promoted_images: tuple[Service, ...]  # compared with the env promoted from (promotion checks)
    promoted_uploads: tuple[Service, ...]
    updates_routes: bool
    updates_api_gateway: bool

    @property
    def job(self) -> str:
        return names.job_name(self.env)

    @property
    def promoted_from(self) -> str | None:
        return names.PROMOTED_FROM if self.env == names.PROMOTED_TO else None

    @property
    def builds(self) -> tuple[tuple[Service, str], ...]:
        """(service, platform) of every binary, service by service."""
        return tuple((s, p) for s in self.built for p in self.platforms)

    @property
    def objects(self) -> dict[str, tuple[Service, str]]:
        """S3 object name -> (service, platform) of every binary uploaded in `{version}/`."""
        return {
            s.s3_object_name(p, self.platforms[0]): (s, p)
            for s in self.uploads
            for p in self.platforms
        }

    def s3_keys(self, s3_path: str, tag: str) -> dict[str, str]:
        """S3 object name -> key of the release's binaries (S3Resource.key's spelling)."""
        return {name: object_key(s3_path, tag, name) for name in self.objects}

    def record_keys(self, s3_path: str, tag: str) -> dict[str, str]:
        """The release record's objects beside the binaries (routes.json, manifest, checksums)."""
        return {name: object_key(s3_path, tag, name) for name in RECORD_NAMES}

    def image_refs(self, registry: str, tag: str) -> dict[str, str]:
        return {s.name: f"{registry}/{s.name}:{tag}" for s in self.images}

    @property
    def asset_keys(self) -> tuple[dg.AssetKey, ...]:
        """What the env's job materializes."""
        keys = [
            names.SOURCE_KEY,
            names.ROUTES_KEY,
            names.ROUTES_OBJECT_KEY,
            names.MANIFEST_KEY,
            names.GITOPS_KEY,
        ]
        keys += [names.binary_key(s) for s in self.built]
        keys += [names.image_key(s) for s in self.images]
        keys += [names.artifact_key(s) for s in self.uploads]
        if self.updates_api_gateway:
            keys.append(names.API_GATEWAY_KEY)
        return tuple(keys)

    @property
    def check_keys(self) -> tuple[dg.AssetCheckKey, ...]:
        """The checklist the env's job runs: the promotion checks only where it promotes."""
        pairs = [
            (names.ROUTES_KEY, names.ROUTES_CHECK),
            (names.GITOPS_KEY, names.GITOPS_CHECK),
            (names.ROUTES_OBJECT_KEY, names.RECORD_CHECK),
            (names.MANIFEST_KEY, names.RECORD_CHECK),
        ]
        pairs += [(names.binary_key(s), names.TOOLCHAIN_CHECK) for s in self.built]
        pairs += [(names.image_key(s), names.IMAGE_CHECK) for s in self.images]
        pairs += [(names.artifact_key(s), names.OBJECT_CHECK) for s in self.uploads]
        pairs += [(names.image_key(s), names.PROMOTION_CHECK) for s in self.promoted_images]
        pairs += [(names.artifact_key(s), names.PROMOTION_CHECK) for s in self.promoted_uploads]
        return tuple(dg.AssetCheckKey(key, name) for key, name in pairs)


def object_key(s3_path: str, tag: str, name: str) -> str:
    """The S3 key of a release's object `name`: `{path}/{version}/{name}` (S3Resource.key)."""
    return f"{s3_path.strip('/')}/{tag}/{name}"


@dataclass(frozen=True)
class ReleaseMatrix:
    """Every env's release of one service list under one pipeline config."""

    services: tuple[Service, ...]
    platforms: tuple[str, ...]
    envs: Mapping[str, EnvMatrix]
    config: PipelineConfig

    @classmethod
    def of(cls, config: PipelineConfig, services: Sequence[Service]) -> ReleaseMatrix:
        imaged = {s.name for s in with_image(config, services)}
        first = {
            env: _first_pass(env, config, rule, services, imaged)
            for env, rule in config.envs.items()
        }
        envs = {env: _with_promotion(env, matrix, first) for env, matrix in first.items()}
        return cls(tuple(services), tuple(config.platforms), envs, config)

    def env(self, env: str) -> EnvMatrix:
        try:
            return self.envs[env]
        except KeyError:
            raise MatrixError(
                f"env {env!r} has no rule in the pipeline config (envs: "
                f"{', '.join(self.envs) or 'none'}); add envs.{env} to pipeline.yaml or "
                "release to a configured env"
            ) from None

    def dockerfile(self, service: Service) -> Path | None:
        """The Dockerfile template of the service's kind; None: the kind gets no image."""
        return dockerfile_of(self.config, service)

    @property
    def imaged(self) -> tuple[Service, ...]:
        """Services whose kind has a Dockerfile template: the image assets of the code location."""
        return tuple(with_image(self.config, self.services))

    @property
    def promotion(self) -> EnvMatrix | None:
        """The env that promotes from another's bytes, if the config has both ends."""
        promoted = self.envs.get(names.PROMOTED_TO)
        return promoted if promoted is not None and promoted.promoted_from in self.envs else None


def _first_pass(
    env: str, config: PipelineConfig, rule: EnvRule, services: Sequence[Service], imaged: set[str]
) -> EnvMatrix:
    """The env on its own: what its rule builds, images, uploads and deploys."""
    built = _of_kinds(services, rule.build)
    return EnvMatrix(
        env=env,
        platforms=tuple(config.platforms),
        built=built,
        images=tuple(s for s in _of_kinds(built, rule.images) if s.name in imaged),
        uploads=_of_kinds(built, rule.upload),
        deployed=_of_kinds(built, rule.deploy),
        prebuilds=(),
        prebuilt_images=(),
        promoted_images=(),
        promoted_uploads=(),
        updates_routes=rule.updates_routes,
        updates_api_gateway=bool(rule.api_gateway_repo),
    )


def _with_promotion(env: str, matrix: EnvMatrix, envs: Mapping[str, EnvMatrix]) -> EnvMatrix:
    """Build once, promote: the env promoted from prebuilds what the promoted env builds and it
    does not (and the images of those the promoted env ships); the promoted env compares the
    images and objects both ship with the ones of the release it promotes."""
    promoted, source = envs.get(names.PROMOTED_TO), envs.get(names.PROMOTED_FROM)
    if promoted is None or source is None:
        return matrix
    if env == names.PROMOTED_FROM:
        prebuilds = _without(promoted.built, matrix.built)
        return replace(
            matrix, prebuilds=prebuilds, prebuilt_images=_within(prebuilds, promoted.images)
        )
    if env == names.PROMOTED_TO:
        return replace(
            matrix,
            promoted_images=_within(matrix.images, source.images),
            promoted_uploads=_within(matrix.uploads, source.uploads),
        )
    return matrix


def _within(services: Iterable[Service], others: Iterable[Service]) -> tuple[Service, ...]:
    names_ = {s.name for s in others}
    return tuple(s for s in services if s.name in names_)


def _without(services: Iterable[Service], others: Iterable[Service]) -> tuple[Service, ...]:
    names_ = {s.name for s in others}
    return tuple(s for s in services if s.name not in names_)
