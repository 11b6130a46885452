"""Build once, promote, for binaries of a real service's size: 40 MB and 120 MB, and a generated
monorepo whose every binary weighs 25-45 MB.

Above 16 MiB an artifact is a multipart upload and its server checksum a composite over the
parts; the rc → final promotion copies it server-side. Two services of the example monorepo embed
an incompressible payload (random bytes written here, never committed to this repo), so their
binaries are that big, and the release goes alpha → rc → final as a real monorepo's does. The
bench's generator (misc/bench/generator.py, `binary_mb`) makes the other: issue 16's done-when.
"""

import os
import time

import pytest

from deploy_assets.demo import create_monorepo
from deploy_assets.names import partition_key
from deploy_assets_tests.assets.test_promotion import MS
from deploy_assets_tests.conftest import Monorepo
from misc.bench import generator

pytestmark = pytest.mark.slow

MB = 1024 * 1024
PAYLOAD_MB = {"ms_core": 40, "ms_chat": 120}
TAGS = {"dev": "v0.1.0-alpha.1", "staging": "v0.1.0-rc.1", "prod": "v0.1.0"}


def embed_payload(monorepo, service: str, mb: int) -> None:
    """cmd/ms/<service>/payload.bin of random bytes, embedded and used so the linker keeps it."""
    (monorepo.clone / "cmd" / "ms" / service / "payload.bin").write_bytes(os.urandom(mb * MB))
    monorepo.write(f"cmd/ms/{service}/payload.go", (
        "package main\n\nimport _ \"embed\"\n\n"
        "// payload stands for the bulk of a real service binary (assets, generated code).\n"
        "//go:embed payload.bin\nvar payload []byte\n\n"
        "func init() {\n\tif len(payload) == 0 {\n\t\tpanic(\"payload missing\")\n\t}\n}\n"))


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
    print(f"\nlarge-binary releases (40 + 120 MB): " + ", ".join(
        f"{TAGS[env]} {seconds:.1f}s" for env, seconds in walls.items()))

    staging, prod = partition_key("staging", TAGS["staging"]), partition_key("prod", TAGS["prod"])
    for name in MS:
        rc = harness.metadata(f"s3/{name}", staging)
        final = harness.metadata(f"s3/{name}", prod)
        assert final["action_arm64"] == f"copied from binaries/{TAGS['staging']}/{name}"  # no bytes uploaded
        assert final["sha256_arm64"] == rc["sha256_arm64"] == harness.metadata(f"binary/{name}", staging)["sha256_arm64"]
        assert harness.s3.download_sha256(f"binaries/{TAGS['prod']}/{name}") == (rc["sha256_arm64"], rc["size_arm64"])

        rc_digest = harness.registry.manifest_digest(name, TAGS["staging"])
        assert rc_digest and harness.registry.manifest_digest(name, TAGS["prod"]) == rc_digest, name
        assert harness.metadata(f"image/{name}", prod)["digest"] == rc_digest

    for name, mb in PAYLOAD_MB.items():
        size = harness.metadata(f"s3/{name}", staging)["size_arm64"]
        assert size > mb * MB, (name, size)
        copied = harness.s3.head(f"binaries/{TAGS['prod']}/{name}")
        assert copied.checksum.composite and copied.checksum.parts > 1  # the multipart path, not a small object's


GENERATED_MB = (25, 45)
GENERATED_TAGS = {"dev": "v0.2.0-alpha.1", "staging": "v0.2.0-rc.1", "prod": "v0.2.0"}


@pytest.fixture
def generated(tmp_path) -> generator.Layout:
    """The bench's monorepo, 3 services (and a lambda, a CLI) of 25-45 MB, light on code."""
    return generator.generate(tmp_path / "generated", 3, shared_records=2, service_records=2,
                              binary_mb=GENERATED_MB)


@pytest.fixture
def monorepo(tmp_path, generated) -> Monorepo:
    """The harness's source remote holds the generated monorepo instead of the example one."""
    repo = Monorepo(bare=tmp_path / "git" / "monorepo.git", clone=tmp_path / "monorepo")
    create_monorepo(repo.bare, repo.clone, tmp_path / "generated")
    return repo


def test_a_generated_monorepo_of_25_to_45_mb_binaries_goes_alpha_rc_final_prod_carrying_the_rc(
        harness, generated):
    walls = {}
    for env, tag in GENERATED_TAGS.items():
        started = time.monotonic()
        outcome = harness.release(tag)
        walls[env] = time.monotonic() - started
        assert outcome.success, (tag, outcome.error)
    print("\ngenerated monorepo, 3 services of 25-45 MB: " + ", ".join(
        f"{GENERATED_TAGS[env]} {seconds:.1f}s" for env, seconds in walls.items()))

    rc, final = GENERATED_TAGS["staging"], GENERATED_TAGS["prod"]
    staging, prod = partition_key("staging", rc), partition_key("prod", final)
    sizes = generator.binary_sizes(generated, GENERATED_MB)
    for name in generated.ms:
        built = harness.metadata(f"binary/{name}", staging)
        assert abs(built["size_arm64"] - sizes[name]) < 2 * MB, (name, built["size_arm64"])
        assert harness.metadata(f"binary/{name}", prod)["reused_from"] == staging
        rc_object, final_object = harness.metadata(f"s3/{name}", staging), harness.metadata(f"s3/{name}", prod)
        assert final_object["action_arm64"] == f"copied from binaries/{rc}/{name}"
        assert final_object["sha256_arm64"] == rc_object["sha256_arm64"] == built["sha256_arm64"]
        assert harness.s3.download_sha256(f"binaries/{final}/{name}") == (built["sha256_arm64"], built["size_arm64"])
        copied = harness.s3.head(f"binaries/{final}/{name}")
        assert copied.size > 16 * MB and copied.checksum.composite and copied.checksum.parts > 1, name

        rc_digest = harness.registry.manifest_digest(name, rc)
        assert rc_digest and harness.registry.manifest_digest(name, final) == rc_digest, name
        assert harness.metadata(f"image/{name}", prod)["digest"] == rc_digest
        assert harness.registry.file_sha256(name, final, "/service")[2] == built["sha256_arm64"]
    for name in generated.lambdas:  # built for prod only (as the old matrix), at its size too
        assert harness.s3.head(f"binaries/{final}/{name}").size > 16 * MB, name
