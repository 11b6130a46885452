"""The pure rules behind the checks: toolchain pinning, Go build info, routes, the release record.
(Reading the version from a real Go binary: checks/test_check_rules_go.py.)"""

import pytest

from deploy_assets.assets.release_record import Artifact, checksums_txt, own_partition_removed
from deploy_assets.checks.routes import services_without_routes
from deploy_assets.checks.toolchain import embedded_go_version, toolchain_problem


@pytest.mark.parametrize(
    ("built_with", "configured", "go_mod", "problem"),
    [
        ("go1.24.11", "1.24", "1.24", None),
        ("go1.24.11", "1.24", "1.22", None),  # go.mod asks less than the pin: the pin decides
        ("go1.24.11", "1.24", "1.24.3", None),  # go.mod's patch minimum is met
        ("go1.24.2", "1.24", "1.24.3", "built with go1.24.2, but go.mod requires go 1.24.3"),
        ("go1.24.11", "1.24", "1.25", "built with go1.24.11, but go.mod requires go 1.25"),
        ("go1.23.4", "1.24", None, "built with go1.23.4, but the pipeline config pins Go 1.24"),
        (
            "go1.24.11",
            "1.24.10",
            None,
            "built with go1.24.11, but the pipeline config pins Go 1.24.10",
        ),
        ("go1.24.10", "1.24.10", "1.24", None),
    ],
)
def test_toolchain_rule(built_with, configured, go_mod, problem):
    assert toolchain_problem(built_with, configured, go_mod) == problem


def test_bytes_that_are_no_go_binary_have_no_embedded_go_version():
    assert embedded_go_version(b"\x7fELF not a go binary") is None


def test_services_without_routes_are_named():
    table = [{"service": "ms_core", "method": "GET", "path": "/"}]
    assert services_without_routes(["ms_quiet", "ms_core", "ms_idle"], table) == [
        "ms_idle",
        "ms_quiet",
    ]


def test_checksums_are_sha256sum_lines_for_uploaded_binaries_only():
    artifacts = [
        Artifact(
            "s3_object", "ms_core", "ms", "linux/arm64", path="binaries/v1/ms_core", sha256="a" * 64
        ),
        Artifact(
            "s3_object",
            "ms_core",
            "ms",
            "linux/amd64",
            path="binaries/v1/ms_core_amd64",
            sha256="b" * 64,
        ),
        Artifact(
            "image",
            "ms_core",
            "ms",
            "linux/arm64",
            image="r/ms_core:v1@sha256:c",
            digest="sha256:c",
        ),
        Artifact("routes", "", "", "", path="binaries/v1/routes.json", sha256="d" * 64),
    ]
    assert checksums_txt(artifacts) == f"{'a' * 64}  ms_core\n{'b' * 64}  ms_core_amd64\n".encode()
    clash = artifacts + [
        Artifact("s3_object", "x", "ms", "linux/arm64", path="other/ms_core", sha256="e" * 64)
    ]
    with pytest.raises(ValueError, match=r"share the file name\(s\) \['ms_core'\]"):
        checksums_txt(clash)


def test_a_release_reusing_its_own_record_is_not_reuse():
    assert own_partition_removed("dev|v1-alpha.1", "dev|v1-alpha.1") == ""
    assert own_partition_removed("staging|v1.0.0-rc.1", "prod|v1.0.0") == "staging|v1.0.0-rc.1"
    assert own_partition_removed(None, "prod|v1.0.0") == ""
