"""The publish decision of one service's image: keep, adopt, retag or build it, or refuse.

Plain functions of facts (what the registry serves under the release tag and the content-key
tag, what the instance recorded for these bytes, which layer proofs hold), so every branch is
tested without a registry (deploy_assets_tests/unit/test_image_decisions.py). The images step
gathers the facts and acts on the decision (assets/images.py).

Facts are read in the order of cost and only when a branch needs them: the step passes an
object whose attributes ask the registry on first use (assets/image_facts.py), so a proof that
needs a layer download is made only for a candidate the decision actually considers, and a
promotion whose staging record carries the proof downloads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from deploy_assets.assets.image_recipe import ImageProof, prebuild_tag
from deploy_assets.config import DOCKERFILES_DIR, PipelineConfig
from deploy_assets.matrix import dockerfile_of
from deploy_assets.plan import Service


def template_name(config: PipelineConfig, service: Service) -> str:
    """The template as the config names it (relative to misc/dockerfiles/), for descriptions."""
    return str(dockerfile_of(config, service).relative_to(DOCKERFILES_DIR.resolve()))


@dataclass(frozen=True)
class PriorImage:
    """The instance's newest image record for these bytes (same content key)."""

    partition: str
    digest: str
    reused_from: str  # the lineage that record kept


class ImageFacts(Protocol):
    """What the decision may ask; each attribute is read only on the branch that needs it."""

    tag_digest: str | None  # what the release tag serves
    tag_content_key: str | None  # the content-key label of that image
    tag_proof: ImageProof  # what that image's layer holds (the record's proof if it has one)
    record: PriorImage | None
    record_served: bool  # the registry still serves the record's digest
    record_proof: ImageProof
    prebuilt_digest: str | None  # what the content-key tag ck-<key> serves
    prebuilt_content_key: str | None
    prebuilt_built_in: str  # the release whose run pushed it ("" when unlabelled)
    prebuilt_proof: ImageProof


class Publish(Enum):
    ALREADY = "already pushed"  # the release tag holds our image (a re-run)
    ADOPT = "adopted"  # the release tag holds our image, pushed by a run killed before its record
    RETAG = "retag"  # an earlier release's image of these bytes gets the release tag
    PREBUILT = "prebuilt"  # the image under ck-<key> gets the release tag
    BUILD = "build"  # built from the binary and pushed
    REFUSE = "refuse"  # the release tag holds other bytes: tags are immutable


@dataclass(frozen=True)
class PublishDecision:
    how: Publish
    action: str = ""  # what the log and the record call it
    digest: str = ""  # the manifest digest kept or retagged
    proof: ImageProof | None = None
    reused_from: str = ""
    detail: str = ""
    rejected: tuple[str, ...] = ()  # candidates found but not shipped, and why
    also_tag: str = ""  # BUILD: a ck- tag that held other bytes, ours to overwrite
    reason: str = ""  # REFUSE: why the release tag's image is not ours


def publish_decision(
    facts: ImageFacts, sha256: str, content_key: str, partition: str
) -> PublishDecision:
    """Adopt, retag or build, in that order of cost; an image is adopted or retagged only when
    its layer is proven to hold the binary's sha256, and one that does not is never shipped."""
    if facts.tag_digest:
        return existing_tag_decision(facts, sha256, content_key, partition)
    rejected: list[str] = []
    record = facts.record
    if record and facts.record_served:
        proof = facts.record_proof
        if proof.holds(sha256):
            return PublishDecision(
                Publish.RETAG,
                f"retagged from {record.partition}",
                proof.digest,
                proof,
                reused_from=record.partition,
            )
        rejected.append(rejection(f"the image of {record.partition}", proof, sha256))
    ck = prebuild_tag(content_key)
    if facts.prebuilt_digest and facts.prebuilt_content_key == content_key:
        proof = facts.prebuilt_proof
        if proof.holds(sha256):
            return prebuilt_decision(proof, ck, facts.prebuilt_built_in, partition, rejected)
        rejected.append(rejection(ck, proof, sha256))
    also = ck if rejected and facts.prebuilt_digest else ""
    return PublishDecision(
        Publish.BUILD, "built and pushed", rejected=tuple(rejected), also_tag=also
    )


def existing_tag_decision(
    facts: ImageFacts, sha256: str, content_key: str, partition: str
) -> PublishDecision:
    """The release tag is there already: ours (a re-run, or a run killed after its push) only
    if its layer holds our binary; otherwise refuse, since tags are immutable."""
    record, existing = facts.record, facts.tag_digest
    proof = None
    if record and record.digest == existing:
        proof = facts.tag_proof
        if proof.holds(sha256):
            # A re-run keeps the lineage the release had; it did not reuse its own bytes.
            origin = record.reused_from if record.partition == partition else record.partition
            return PublishDecision(Publish.ALREADY, "already pushed", existing, proof, origin)
    elif facts.tag_content_key == content_key:
        proof = facts.tag_proof
        if proof.holds(sha256):
            return PublishDecision(
                Publish.ADOPT, "adopted (pushed by an interrupted run)", existing, proof
            )
    reason = (
        f"{proof.describe()}, not this release's binary sha256 {sha256}"
        if proof
        else f"its content-key label is not {content_key[:16]}"
    )
    return PublishDecision(Publish.REFUSE, digest=existing, proof=proof, reason=reason)


def prebuilt_decision(
    proof: ImageProof, ck: str, built_in: str, partition: str, rejected: list[str]
) -> PublishDecision:
    """The proven ck- image: this release's own early push, or one prebuilt by another release."""
    if built_in == partition:  # this release's binaries step pushed it
        return PublishDecision(
            Publish.PREBUILT,
            "built and pushed",
            proof.digest,
            proof,
            detail=f"while go was compiling, as {ck}",
            rejected=tuple(rejected),
        )
    return PublishDecision(
        Publish.PREBUILT,
        f"retagged from the image prebuilt in {built_in or 'staging'}",
        proof.digest,
        proof,
        reused_from=built_in,
        rejected=tuple(rejected),
    )


def rejection(what: str, proof: ImageProof, sha256: str) -> str:
    """Why a candidate image is not shipped, for the log and the record."""
    return f"{what} is not shipped: {proof.describe()}, not this release's binary sha256 {sha256}"


def tag_conflict(
    ref: str, decision: PublishDecision, ours: str, content_key: str, recorded: str | None
) -> str:
    """The refusal of a release tag that holds other bytes, naming both images."""
    return (
        f"{ref} already exists with digest {decision.digest}, which is not this release's "
        f"image: {decision.reason} (this release built image {ours}, content key "
        f"{content_key[:16]}, recorded digest {recorded or 'none'}). "
        "Tags are immutable: not overwriting"
    )
