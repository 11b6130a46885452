"""Issue 16's done-when: a generated monorepo whose every binary weighs 25-45 MB goes alpha → rc →
final, prod's images and S3 objects carrying the rc's digests and sha256s.

The bench's generator (misc/bench/generator.py, `binary_mb`) writes the monorepo: 3 services, a
lambda and a CLI, each embedding an incompressible payload, so every object is a multipart upload
(over 16 MiB) and the rc → final promotion copies it server-side. This module's `monorepo`
fixture replaces the example monorepo with the generated one for the harness.
"""

import time

import pytest

from deploy_assets.cli.demo import create_monorepo
from deploy_assets.names import partition_key
from deploy_assets_tests.conftest import Monorepo
from misc.bench import generator

pytestmark = pytest.mark.slow

MB = 1024 * 1024

GENERATED_MB = (25, 45)
GENERATED_TAGS = {"dev": "v0.2.0-alpha.1", "staging": "v0.2.0-rc.1", "prod": "v0.2.0"}


@pytest.fixture
def generated(tmp_path) -> generator.Layout:
    """The bench's monorepo, 3 services (and a lambda, a CLI) of 25-45 MB, light on code."""
    return generator.generate(
        tmp_path / "generated", 3, shared_records=2, service_records=2, binary_mb=GENERATED_MB
    )


@pytest.fixture
def monorepo(tmp_path, generated, monkeypatch) -> Monorepo:
    """The harness's source remote holds the generated monorepo instead of the example one. Its
    payloads are incompressible: git stores them without trying to compress them (zlib level 0)."""
    for key, value in {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "core.compression",
        "GIT_CONFIG_VALUE_0": "0",
        "GIT_CONFIG_KEY_1": "pack.compression",
        "GIT_CONFIG_VALUE_1": "0",
    }.items():
        monkeypatch.setenv(key, value)
    repo = Monorepo(bare=tmp_path / "git" / "monorepo.git", clone=tmp_path / "monorepo")
    create_monorepo(repo.bare, repo.clone, tmp_path / "generated")
    return repo


def test_a_generated_monorepo_of_25_to_45_mb_binaries_goes_alpha_rc_final_prod_carrying_the_rc(
    harness, generated
):
    walls = {}
    for env, tag in GENERATED_TAGS.items():
        started = time.monotonic()
        outcome = harness.release(tag)
        walls[env] = time.monotonic() - started
        assert outcome.success, (tag, outcome.error)
    print(
        "\ngenerated monorepo, 3 services of 25-45 MB: "
        + ", ".join(f"{GENERATED_TAGS[env]} {seconds:.1f}s" for env, seconds in walls.items())
    )

    rc, final = GENERATED_TAGS["staging"], GENERATED_TAGS["prod"]
    staging, prod = partition_key("staging", rc), partition_key("prod", final)
    sizes = generator.binary_sizes(generated, GENERATED_MB)
    for name in generated.ms:
        built = harness.metadata(f"binary/{name}", staging)
        assert abs(built["size_arm64"] - sizes[name]) < 2 * MB, (name, built["size_arm64"])
        assert harness.metadata(f"binary/{name}", prod)["reused_from"] == staging
        rc_object, final_object = (
            harness.metadata(f"s3/{name}", staging),
            harness.metadata(f"s3/{name}", prod),
        )
        assert final_object["action_arm64"] == f"copied from binaries/{rc}/{name}"
        assert final_object["sha256_arm64"] == rc_object["sha256_arm64"] == built["sha256_arm64"]
        assert harness.s3.download_sha256(f"binaries/{final}/{name}") == (
            built["sha256_arm64"],
            built["size_arm64"],
        )
        copied = harness.s3.head(f"binaries/{final}/{name}")
        assert copied.size > 16 * MB and copied.checksum.composite and copied.checksum.parts > 1, (
            name
        )

        rc_digest = harness.registry.manifest_digest(name, rc)
        assert rc_digest and harness.registry.manifest_digest(name, final) == rc_digest, name
        assert harness.metadata(f"image/{name}", prod)["digest"] == rc_digest
        assert harness.registry.file_sha256(name, final, "/service")[2] == built["sha256_arm64"]
    for name in generated.lambdas:  # built for prod only (as the old matrix), at its size too
        assert harness.s3.head(f"binaries/{final}/{name}").size > 16 * MB, name
