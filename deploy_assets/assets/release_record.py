"""The release record uploaded next to the binaries: manifest.json and checksums.txt. Pure code.

manifest.json lists every artifact of the release (S3 objects and images) with what made it:
service, kind, platform, where it is, its sha256 or digest, size, source commit, toolchain and
the release it was reused from. checksums.txt is `sha256sum` format over the uploaded binaries'
file names, so `sha256sum -c checksums.txt` verifies a download without this tool. Nothing in
either file depends on the run (no timestamps, no run ids): re-recording a release whose facts
did not change writes the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

MANIFEST_NAME = "manifest.json"
CHECKSUMS_NAME = "checksums.txt"
ROUTES_NAME = "routes.json"
# Objects of the release record next to the binaries: no binary may take one of these names.
RECORD_NAMES = (ROUTES_NAME, MANIFEST_NAME, CHECKSUMS_NAME)
MANIFEST_SCHEMA = 1


@dataclass(frozen=True)
class Artifact:
    artifact: str  # "s3_object" | "image"
    service: str
    kind: str
    platform: str
    path: str = ""  # S3 key of an object
    image: str = ""  # ref@digest of an image
    sha256: str = ""  # bytes of an S3 object
    digest: str = ""  # manifest digest of an image
    size: int | None = None
    commit: str = ""
    toolchain: str = ""
    reused_from: str = ""

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.path).name


def own_partition_removed(reused_from: str | None, partition: str) -> str:
    """A re-run of a release 'reuses' its own earlier record; that is not reuse from elsewhere."""
    return "" if not reused_from or reused_from == partition else reused_from


def binary_objects(
    service: str, kind: str, s3_meta: dict, binary_meta: dict, platforms: list[str], partition: str
) -> list[Artifact]:
    return [
        Artifact(
            artifact="s3_object",
            service=service,
            kind=kind,
            platform=f"linux/{p}",
            path=s3_meta[f"s3_key_{p}"],
            sha256=s3_meta[f"sha256_{p}"],
            size=int(s3_meta[f"size_{p}"]),
            commit=str(binary_meta.get("commit", "")),
            toolchain=str(binary_meta.get("toolchain", "")),
            reused_from=own_partition_removed(
                s3_meta.get("reused_from") or binary_meta.get("reused_from"), partition
            ),
        )
        for p in platforms
    ]


def image_artifact(
    service: str, kind: str, image_meta: dict, binary_meta: dict, partition: str
) -> Artifact:
    return Artifact(
        artifact="image",
        service=service,
        kind=kind,
        platform=str(image_meta.get("platform", "")),
        image=f"{image_meta['ref']}@{image_meta['digest']}",
        digest=str(image_meta["digest"]),
        commit=str(image_meta.get("commit", "")),
        toolchain=str(binary_meta.get("toolchain", "")),
        reused_from=own_partition_removed(image_meta.get("reused_from"), partition),
    )


def manifest_json(
    tag: str, env: str, commit: str, toolchain: str, staging_release: str, artifacts: list[Artifact]
) -> bytes:
    ordered = sorted(artifacts, key=lambda a: (a.artifact, a.service, a.platform))
    doc = {
        "schema": MANIFEST_SCHEMA,
        "tag": tag,
        "env": env,
        "commit": commit,
        "toolchain": toolchain,
        "staging_release": staging_release or None,
        "artifacts": [asdict(a) for a in ordered],
    }
    return (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode()


def checksums_txt(artifacts: list[Artifact]) -> bytes:
    """`sha256sum` lines ('<hex>  <name>') for the uploaded binaries, by file name."""
    objects = sorted((a for a in artifacts if a.artifact == "s3_object"), key=lambda a: a.file_name)
    names = [a.file_name for a in objects]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"two uploaded binaries share the file name(s) {duplicates}: checksums.txt "
            "could not tell them apart"
        )
    return "".join(f"{a.sha256}  {a.file_name}\n" for a in objects).encode()
