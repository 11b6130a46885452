"""Build once, promote, for binaries of a real service's size: 40 MB and 120 MB.

Above 16 MiB an artifact is a multipart upload and its server checksum a composite over the
parts; the rc → final promotion copies it server-side. Two services of the example monorepo embed
an incompressible payload (random bytes written here, never committed to this repo), so their
binaries are that big, and the release goes alpha → rc → final as a real monorepo's does. The
bench's generator (misc/bench/generator.py, `binary_mb`) makes the other: issue 16's done-when.
"""

import os
import time

import pytest

from deploy_assets.names import partition_key
from deploy_assets_tests.assets.test_promotion import MS

pytestmark = pytest.mark.slow

MB = 1024 * 1024
PAYLOAD_MB = {"ms_core": 40, "ms_chat": 120}
TAGS = {"dev": "v0.1.0-alpha.1", "staging": "v0.1.0-rc.1", "prod": "v0.1.0"}


def embed_payload(monorepo, service: str, mb: int) -> None:
    """cmd/ms/<service>/payload.bin of random bytes, embedded and used so the linker keeps it."""
    (monorepo.clone / "cmd" / "ms" / service / "payload.bin").write_bytes(os.urandom(mb * MB))
    monorepo.write(
        f"cmd/ms/{service}/payload.go",
        (
            'package main\n\nimport _ "embed"\n\n'
            "// payload stands for the bulk of a real service binary (assets, generated code).\n"
            "//go:embed payload.bin\nvar payload []byte\n\n"
            'func init() {\n\tif len(payload) == 0 {\n\t\tpanic("payload missing")\n\t}\n}\n'
        ),
    )


def test_40_and_120_mb_binaries_go_alpha_rc_final_and_prod_holds_the_rc_bytes(harness):
    for service, mb in PAYLOAD_MB.items():
        embed_payload(harness.monorepo, service, mb)
    harness.monorepo.commit("Services with the size of real ones")

    walls = {}
    for env, tag in TAGS.items():
        started = time.monotonic()
        outcome = harness.release(tag)
        walls[env] = time.monotonic() - started
        assert outcome.success, (tag, outcome.error)
    print(
        "\nlarge-binary releases (40 + 120 MB): "
        + ", ".join(f"{TAGS[env]} {seconds:.1f}s" for env, seconds in walls.items())
    )

    staging, prod = partition_key("staging", TAGS["staging"]), partition_key("prod", TAGS["prod"])
    for name in MS:
        rc = harness.metadata(f"s3/{name}", staging)
        final = harness.metadata(f"s3/{name}", prod)
        assert (
            final["action_arm64"] == f"copied from binaries/{TAGS['staging']}/{name}"
        )  # no bytes uploaded
        assert (
            final["sha256_arm64"]
            == rc["sha256_arm64"]
            == harness.metadata(f"binary/{name}", staging)["sha256_arm64"]
        )
        assert harness.s3.download_sha256(f"binaries/{TAGS['prod']}/{name}") == (
            rc["sha256_arm64"],
            rc["size_arm64"],
        )

        rc_digest = harness.registry.manifest_digest(name, TAGS["staging"])
        assert rc_digest and harness.registry.manifest_digest(name, TAGS["prod"]) == rc_digest, name
        assert harness.metadata(f"image/{name}", prod)["digest"] == rc_digest

    for name, mb in PAYLOAD_MB.items():
        size = harness.metadata(f"s3/{name}", staging)["size_arm64"]
        assert size > mb * MB, (name, size)
        copied = harness.s3.head(f"binaries/{TAGS['prod']}/{name}")
        assert (
            copied.checksum.composite and copied.checksum.parts > 1
        )  # the multipart path, not a small object's
