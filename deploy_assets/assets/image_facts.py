"""The publish decision's facts about one service's image, asked of the registry and the
instance on first use (assets/image_decisions.py reads only what its branch needs).

Each attribute is computed once: a layer proof that needs a download is made at most once per
candidate digest, and one the record carries (`recorded_proof`) needs none.
"""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from deploy_assets.assets.image_decisions import PriorImage
from deploy_assets.assets.image_recipe import (
    BUILT_IN_LABEL,
    CONTENT_KEY_LABEL,
    ImageProof,
    prebuild_tag,
    prove,
    recorded_proof,
)
from deploy_assets.assets.workspace import BuiltBinary
from deploy_assets.names import binary_key, image_key
from deploy_assets.plan import Service
from deploy_assets.records.history import (
    PastMaterialization,
    find_by_content_key,
    latest_for_partition,
)
from deploy_assets.resources.registry import RegistryResource


class RegistryImageFacts:
    """ImageFacts for `service`'s image of `built` under `tag`, in release `partition`."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        registry: RegistryResource,
        service: Service,
        built: BuiltBinary,
        tag: str,
        path: str,
        partition: str,
        prefer: str | None,
    ):
        self.instance, self.registry, self.service, self.built = instance, registry, service, built
        self.tag, self.path, self.partition, self.prefer = tag, path, partition, prefer
        self.name = service.name

    def _proof(self, digest: str, record: dict, origin: str, prefix: str = "") -> ImageProof:
        """The recorded proof for this digest, or a download of its layer."""
        return recorded_proof(
            record, digest, self.built.sha256, self.path, origin, prefix
        ) or prove(self.registry, self.name, digest, self.path)

    @cached_property
    def past(self) -> PastMaterialization | None:
        """The newest image record of these bytes (a staging one first for prod)."""
        return find_by_content_key(
            self.instance,
            image_key(self.service),
            "content_key",
            self.built.content_key,
            prefer_partition=self.prefer,
        )

    @cached_property
    def record(self) -> PriorImage | None:
        if self.past is None:
            return None
        meta = self.past.metadata
        return PriorImage(self.past.partition, meta.get("digest"), meta.get("reused_from", ""))

    @cached_property
    def tag_digest(self) -> str | None:
        return self.registry.manifest_digest(self.name, self.tag)

    @cached_property
    def tag_content_key(self) -> str | None:
        return self.registry.image_labels(self.name, self.tag_digest).get(CONTENT_KEY_LABEL)

    @cached_property
    def tag_proof(self) -> ImageProof:
        past = self.past
        return self._proof(
            self.tag_digest, past.metadata if past else {}, past.partition if past else ""
        )

    @cached_property
    def record_served(self) -> bool:
        return bool(self.registry.manifest_digest(self.name, self.past.metadata["digest"]))

    @cached_property
    def record_proof(self) -> ImageProof:
        return self._proof(self.past.metadata["digest"], self.past.metadata, self.past.partition)

    @cached_property
    def prebuilt_digest(self) -> str | None:
        return self.registry.manifest_digest(self.name, prebuild_tag(self.built.content_key))

    @cached_property
    def _prebuilt_labels(self) -> dict[str, str]:
        return self.registry.image_labels(self.name, self.prebuilt_digest)

    @cached_property
    def prebuilt_content_key(self) -> str | None:
        return self._prebuilt_labels.get(CONTENT_KEY_LABEL)

    @cached_property
    def prebuilt_built_in(self) -> str:
        return self._prebuilt_labels.get(BUILT_IN_LABEL, "")

    @cached_property
    def prebuilt_proof(self) -> ImageProof:
        """The binaries step recorded the proof of its early push (ck_image_*) beside the binary."""
        warm = latest_for_partition(self.instance, binary_key(self.service), self.partition)
        return self._proof(
            self.prebuilt_digest, warm.metadata if warm else {}, self.partition, prefix="ck_image_"
        )
