"""What goes into a service's image besides its binary: the labels that tie an image to the
bytes it holds and the release that built it, the content-addressed tag it is first pushed under,
and the proof that an image in the registry holds the binary the release built.

Shared by the binaries step (which builds and pushes each image under its content-key tag while go
still compiles) and the images step (which puts the release tag on it, or builds it itself).

A label is a claim anyone who can push may make. So an image is adopted or retagged only once its
layer has been read back from the registry and the binary's file in it hashed to the release's
sha256. That proof is recorded with the manifest digest it was made for (`proof_metadata`), and a
later retag of the same digest trusts the record instead of downloading again: a manifest digest
names its layers by their digests, so the same digest cannot hold other bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.plan import Service
from deploy_assets.resources.registry import RegistryResource

CONTENT_KEY_LABEL = "io.deploy-assets.content-key"
BUILT_IN_LABEL = "io.deploy-assets.built-in"  # the release (env|tag) whose run built the image


def image_labels(service: Service, content_key: str, commit: str, partition: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.revision": commit,
        "org.opencontainers.image.title": service.name,
        CONTENT_KEY_LABEL: content_key,
        BUILT_IN_LABEL: partition,
    }


def prebuild_tag(content_key: str) -> str:
    """Where an image waits for its release tag: pushed during the build, or left by staging for
    a binary only prod ships (CLIs). Content-addressed, so it never moves."""
    return f"ck-{content_key}"


_COPY_BINARY = re.compile(r"^\s*COPY\s+service\s+(\S+)\s*$", re.IGNORECASE | re.MULTILINE)


def binary_path_in_image(dockerfile: Path) -> str:
    """Where the template puts the binary (the context's one file, `service`): '/service'."""
    match = _COPY_BINARY.search(dockerfile.read_text())
    if match is None:
        raise ValueError(
            f"Dockerfile template {dockerfile} has no `COPY service <path>`: nothing says "
            "where the binary is in the image, so no image of it can be verified"
        )
    dest = match.group(1)
    return "/" + (dest + "service" if dest.endswith("/") else dest).lstrip("/")


@dataclass(frozen=True)
class ImageProof:
    """What the registry's bytes of one manifest digest hold at the binary's path."""

    digest: str
    path: str
    layer_digest: str  # "" when no layer has a file there
    sha256: str  # "" likewise
    how: str  # "layer downloaded and hashed", or the release whose record is trusted

    def holds(self, sha256: str) -> bool:
        return bool(self.layer_digest) and self.sha256 == sha256

    def describe(self) -> str:
        found = (
            f"sha256 {self.sha256} (layer {self.layer_digest})"
            if self.layer_digest
            else "no such file"
        )
        return f"{self.path} in {self.digest} is {found}"


def prove(registry: RegistryResource, name: str, digest: str, path: str) -> ImageProof:
    """Download the image's layer and hash the binary's file in it."""
    served, layer, sha256 = registry.file_sha256(name, digest, path)
    return ImageProof(served, path, layer, sha256, "layer downloaded and hashed")


def recorded_proof(
    metadata: dict, digest: str, sha256: str, path: str, origin: str, prefix: str = ""
) -> ImageProof | None:
    """The proof a record carries for exactly this digest, binary and path; None if it has none
    (a record from before proofs existed, or of another digest): then the layer must be read."""
    if (
        metadata.get(f"{prefix}digest") == digest
        and metadata.get(f"{prefix}binary_sha256") == sha256
        and metadata.get(f"{prefix}binary_path") == path
        and metadata.get(f"{prefix}layer_digest")
    ):
        return ImageProof(
            digest, path, metadata[f"{prefix}layer_digest"], sha256, f"recorded by {origin}"
        )
    return None


def proof_metadata(proof: ImageProof, prefix: str = "") -> dict[str, str]:
    """The fact to record beside the digest, so the next retag of it needs no download."""
    return {
        f"{prefix}digest": proof.digest,
        f"{prefix}binary_path": proof.path,
        f"{prefix}layer_digest": proof.layer_digest,
        f"{prefix}binary_sha256": proof.sha256,
        f"{prefix}binary_proof": proof.how,
    }
