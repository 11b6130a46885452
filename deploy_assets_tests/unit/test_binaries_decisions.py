"""The binaries step's decisions without go, caches or servers: built / local cache / bucket
cache / reused from a release / prebuilt for the promotion / refused, and the words and metadata
the step records for them."""

import pytest

from deploy_assets.assets.binary_decisions import (
    BinaryDecision,
    binary_line,
    binary_metadata,
    decide,
    explain_build_failure,
    promotion_prebuilds,
    recorded,
    refuse_missing,
    summary_line,
)
from deploy_assets.assets.build_store import BUCKET, BUILT, LOCAL, Recorded
from deploy_assets.assets.workspace import BuiltBinary
from deploy_assets.config import DEFAULT_CONFIG, load_pipeline_config
from deploy_assets.plan import Service
from deploy_assets.resources.go import GoBuildError

CORE = Service("ms_core", "ms", "cmd/ms/ms_core")
CHAT = Service("ms_chat", "ms", "cmd/ms/ms_chat")
AUTH = Service("lambda_auth_handler", "lambdas", "cmd/lambdas/lambda_auth_handler")
CLI = Service("cli_core", "cli", "cmd/cli/cli_core")
SERVICES = [CORE, CHAT, AUTH, CLI]
SHA, KEY = "ab" * 32, "cd" * 32


def built(
    platform: str = "amd64", reused_from: str | None = None, service: Service = CORE
) -> BuiltBinary:
    return BuiltBinary(
        service=service.name,
        kind=service.kind,
        platform=platform,
        path=service.binary_path(platform),
        sha256=SHA,
        size=1234,
        content_key=KEY,
        reused_from=reused_from,
    )


@pytest.mark.parametrize(
    ("origin", "previous", "prebuild", "expected"),
    [
        (BUILT, None, False, BinaryDecision(BUILT, None)),  # no bytes anywhere: build
        (
            BUILT,
            "dev|v0.1.0-alpha.1",
            False,
            BinaryDecision(BUILT, None),
        ),  # recorded, entry refused: build
        (LOCAL, "dev|v0.1.0-alpha.1", False, BinaryDecision(LOCAL, "dev|v0.1.0-alpha.1")),
        (BUCKET, "dev|v0.1.0-alpha.1", False, BinaryDecision(BUCKET, "dev|v0.1.0-alpha.1")),
        (
            LOCAL,
            None,
            False,
            BinaryDecision(LOCAL, None),
        ),  # bytes no release recorded (a prebuild's)
        (
            BUCKET,
            "x",
            True,
            BinaryDecision(BUCKET, None, prebuild=True),
        ),  # a prebuild names no release
        (BUILT, None, True, BinaryDecision(BUILT, None, prebuild=True)),
    ],
)
def test_the_build_decision_of_a_binary(origin, previous, prebuild, expected):
    decision = decide(origin, previous, prebuild)
    assert decision == expected
    assert decision.build is (origin == BUILT)


def test_an_unknown_origin_is_refused_naming_it():
    with pytest.raises(ValueError, match="unknown binary origin 'remote'"):
        decide("remote", None)


def test_a_service_the_tag_does_not_contain_is_refused_before_any_build():
    refuse_missing(["ms_core"], {"ms_core", "ms_chat"}, "v1.0.0", "f" * 40)  # all there: nothing
    with pytest.raises(RuntimeError) as refused:
        refuse_missing(["ms_core", "ms_new"], {"ms_core"}, "v1.0.0", "0123456789abcdef" * 3)
    assert str(refused.value) == "services ['ms_new'] are not in v1.0.0 (0123456789ab)"


def test_staging_prebuilds_what_prod_builds_and_staging_does_not():
    config = load_pipeline_config(DEFAULT_CONFIG)
    assert promotion_prebuilds("staging", SERVICES, config) == [AUTH, CLI]  # prod: ms, lambdas, cli
    assert promotion_prebuilds("dev", SERVICES, config) == []
    assert promotion_prebuilds("prod", SERVICES, config) == []


def test_the_record_an_earlier_release_left_is_the_proof_of_its_bytes():
    meta = {"sha256_amd64": SHA, "size_amd64": 1234, "built_in_amd64": "dev|v0.1.0-alpha.1"}
    assert recorded(meta, "dev|v0.1.0-alpha.2", "amd64") == Recorded(
        SHA, 1234, "dev|v0.1.0-alpha.1"
    )
    assert (
        recorded({**meta, "built_in_amd64": ""}, "dev|v0.1.0-alpha.2", "amd64").built_in
        == "dev|v0.1.0-alpha.2"
    )  # older records: the partition that recorded them
    assert recorded(meta, "p", "arm64") is None and recorded(None, "p", "amd64") is None


def test_a_failed_build_names_the_service_or_the_users_of_a_shared_package():
    mains = {"example.com/m/cmd/ms/ms_core": CORE, "example.com/m/cmd/ms/ms_chat": CHAT}
    deps = {
        "example.com/m/cmd/ms/ms_core": {"example.com/m/internal/config"},
        "example.com/m/cmd/ms/ms_chat": {"example.com/m/internal/config", "fmt"},
    }
    exc = GoBuildError(
        "...",
        {
            "example.com/m/cmd/ms/ms_core": "main.go:3:1: undefined: x",
            "example.com/m/internal/config": "config.go:1:1: bad",
            "?": "go: something early",
        },
    )
    assert explain_build_failure(exc, mains, deps).splitlines() == [
        "go build failed for ms_core (cmd/ms/ms_core): main.go:3:1: undefined: x",
        "example.com/m/internal/config (used by ms_chat, ms_core): config.go:1:1: bad",
        "? (used by unknown): go: something early",
    ]


def test_the_step_s_lines_say_where_each_binary_came_from():
    decisions = {
        "ms_core": decide(BUILT, None),
        "ms_chat": decide(LOCAL, "dev|v1.0.0-alpha.1"),
        "cli_core": decide(BUCKET, None),
    }
    assert summary_line("amd64", decisions) == (
        "amd64: 3 binaries: 1 built, 1 local cache, 1 bucket cache; building ['ms_core']"
    )
    assert summary_line("arm64", {"ms_chat": decisions["ms_chat"]}) == (
        "arm64: 1 binaries: 0 built, 1 local cache, 0 bucket cache"
    )
    line = binary_line(1, 3, built(), decisions["ms_core"], "dev|v1.0.0-alpha.2")
    assert line == f"binaries 1/3 amd64 ms_core: 1234 bytes sha256 {SHA[:16]} built (built)"
    assert binary_line(
        2, 3, built(reused_from="dev|v1.0.0-alpha.1"), decisions["ms_chat"], "x"
    ).endswith("reused from dev|v1.0.0-alpha.1 (local cache)")
    assert binary_line(
        3, 3, built(), decisions["cli_core"], "staging|v1.0.0-rc.1 (for prod)"
    ).endswith("cached (built in staging|v1.0.0-rc.1 (for prod)) (bucket cache)")
    assert binary_line(3, 3, built(), decisions["cli_core"], "").endswith(
        "cached (built in an earlier run) (bucket cache)"
    )


def test_the_metadata_of_a_binary_per_platform():
    source = {"commit": "c" * 40, "toolchain": "go1.24.11"}
    builds = [built("amd64", reused_from="dev|v1.0.0-alpha.1"), built("arm64")]
    meta = binary_metadata(
        CORE,
        source,
        builds,
        {"amd64": LOCAL, "arm64": BUILT},
        {"amd64": "dev|v1.0.0-alpha.1", "arm64": "dev|v1.0.0-alpha.2"},
    )
    assert meta == {
        "commit": "c" * 40,
        "toolchain": "go1.24.11",
        "kind": "ms",
        "sha256_amd64": SHA,
        "size_amd64": 1234,
        "path_amd64": "bin_amd64/ms/ms_core",
        "content_key_amd64": KEY,
        "built_in_amd64": "dev|v1.0.0-alpha.1",
        "build_amd64": "local cache",
        "sha256_arm64": SHA,
        "size_arm64": 1234,
        "path_arm64": "bin_arm64/ms/ms_core",
        "content_key_arm64": KEY,
        "built_in_arm64": "dev|v1.0.0-alpha.2",
        "build_arm64": "built",
        "reused_from": "dev|v1.0.0-alpha.1",
    }
    assert (
        binary_metadata(CORE, source, [built("arm64")], {"arm64": BUILT}, {})["reused_from"] == ""
    )
