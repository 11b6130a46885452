"""The README's worked examples of service layouts, each released alpha → rc → final end to end.

Each example rearranges the example monorepo into one shape real repos have, loads its kinds
`source:` section (a constant the README copies verbatim) with the loader a deployment uses, and asks the
registry, the bucket and the GitOps repos which names they hold: the example's and no other.
Two or three services each, to keep them cheap. `cmd/<name>` with a CLI among the services is
test_layout_templates.py; a module in a subfolder is test_layout_examples_subfolder.py.
"""

from __future__ import annotations

import shutil
import time

import pytest
import yaml

from deploy_assets.config import DEFAULT_CONFIG, load_pipeline_config
from deploy_assets.names import partition_key
from deploy_assets_tests.assets.test_promotion import registry_repositories, s3_keys, show

pytestmark = pytest.mark.slow

TAGS = {"dev": "v3.0.0-alpha.1", "staging": "v3.0.0-rc.1", "prod": "v3.0.0"}
ENV_REPOS = {"dev": "gitops-development", "staging": "gitops-staging", "prod": "gitops-production"}

# Services in cmd/<kind>/<name>, the kind's prefix added by its template: cmd/ms/core -> ms_core.
KIND_PREFIXES = """
source:
  kinds:
    ms:      {include: "cmd/ms/*", name_template: "ms_{dir}", dockerfile: ms.Dockerfile}
    lambdas: {include: "cmd/lambdas/*", name_template: "lambda_{dir}"}
    cli:     {include: "cmd/cli/*", name_template: "cli_{dir}", dockerfile: cli.Dockerfile}
"""
# Services in api/services/*, command-line tools in api/tooling/* (the cli kind).
API_SERVICES_AND_TOOLING = """
source:
  kinds:
    ms:      {include: "api/services/*", dockerfile: ms.Dockerfile}
    lambdas: {include: "api/lambdas/*"}
    cli:     {include: "api/tooling/*", dockerfile: cli.Dockerfile}
"""


def rearrange(monorepo, moves: dict[str, str], message: str) -> None:
    """Move the example's mains (old -> new directory); those not moved are removed."""
    clone = monorepo.clone
    staged = clone.parent / f"{clone.name}-moving"
    for old in moves:
        shutil.move(clone / old, staged / old.replace("/", "_"))
    shutil.rmtree(clone / "cmd")
    for old, new in moves.items():
        (clone / new).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged / old.replace("/", "_"), clone / new)
    staged.rmdir()
    monorepo.commit(message)


def config_with(tmp_path, source: str):
    """The default pipeline.yaml with this `source:` section's settings, as a file a deployment loads."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["source"].update(yaml.safe_load(source)["source"])
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_pipeline_config(path)


def release_alpha_rc_final(harness, label: str) -> dict[str, float]:
    walls = {}
    for env, tag in TAGS.items():
        started = time.monotonic()
        outcome = harness.release(tag)
        walls[env] = time.monotonic() - started
        assert outcome.success, (tag, outcome.error)
    print(f"\n{label} releases: " + ", ".join(f"{TAGS[e]} {s:.1f}s" for e, s in walls.items()))
    return walls


def assert_released_as(harness, ms: list[str], lambdas: list[str], cli: list[str]) -> None:
    """The registry, bucket and GitOps repos hold these names alone, prod carrying the rc's bytes."""
    staging, prod = partition_key("staging", TAGS["staging"]), partition_key("prod", TAGS["prod"])
    assert sorted(harness.metadata("source", prod)["services"]) == sorted([*ms, *lambdas, *cli])
    assert sorted(registry_repositories(harness)) == sorted([*ms, *cli])
    for name in ms:
        rc_digest = harness.registry.manifest_digest(name, TAGS["staging"])
        assert rc_digest and harness.registry.manifest_digest(name, TAGS["prod"]) == rc_digest, name
        binary = harness.metadata(f"binary/{name}", prod)
        assert binary["reused_from"] == staging  # prod built nothing: the rc's bytes
        assert (
            harness.registry.file_sha256(name, TAGS["prod"], "/service")[2]
            == binary["sha256_arm64"]
        )
        assert (
            harness.s3.download_sha256(f"binaries/{TAGS['prod']}/{name}")[0]
            == binary["sha256_arm64"]
            == harness.metadata(f"s3/{name}", staging)["sha256_arm64"]
        )
    for name in cli:
        assert (
            harness.registry.file_sha256(name, TAGS["prod"], "/cli")[2]
            == harness.metadata(f"binary/{name}", prod)["sha256_arm64"]
        )
    for env, tag in TAGS.items():
        uploaded = ms + (lambdas if env == "prod" else [])
        # the release's records (routes.json, checksums.txt, ...) have a suffix, these binaries none
        binaries = [
            k for k in s3_keys(harness, f"binaries/{tag}/") if "." not in k.rsplit("/", 1)[1]
        ]
        assert binaries == sorted(f"binaries/{tag}/{n}" for n in uploaded), env
        repo = ENV_REPOS[env]
        assert harness.gitops_log(repo)[0].endswith(
            f" deploy({env}): {' '.join(sorted(ms))} -> {tag}"
        ), repo
        for name in ms:
            kustomization = yaml.safe_load(show(harness, repo, f"apps/{name}/kustomization.yaml"))
            assert {
                "newTag": tag,
                "newName": f"{harness.settings.registry}/{name}",
            }.items() <= kustomization["images"][0].items(), (repo, name)


def test_cmd_kind_name_with_prefixes_by_template_goes_alpha_rc_final(harness, tmp_path):
    rearrange(
        harness.monorepo,
        {
            "cmd/ms/ms_core": "cmd/ms/core",
            "cmd/ms/ms_chat": "cmd/ms/chat",
            "cmd/lambdas/lambda_webhook_handler": "cmd/lambdas/webhook",
            "cmd/cli/cli_core": "cmd/cli/admin",
        },
        "cmd/<kind>/<name> without prefixes",
    )
    harness.reload(config_with(tmp_path, KIND_PREFIXES))
    release_alpha_rc_final(harness, "cmd/<kind>/<name> layout")
    assert_released_as(
        harness, ms=["ms_chat", "ms_core"], lambdas=["lambda_webhook"], cli=["cli_admin"]
    )


def test_api_services_and_tooling_go_alpha_rc_final(harness, tmp_path):
    rearrange(
        harness.monorepo,
        {
            "cmd/ms/ms_core": "api/services/accounts",
            "cmd/ms/ms_payments": "api/services/payments",
            "cmd/lambdas/lambda_auth_handler": "api/lambdas/authorizer",
            "cmd/cli/cli_core": "api/tooling/migrate",
        },
        "api/services and api/tooling",
    )
    harness.reload(config_with(tmp_path, API_SERVICES_AND_TOOLING))
    release_alpha_rc_final(harness, "api/services + api/tooling layout")
    assert_released_as(
        harness, ms=["accounts", "payments"], lambdas=["authorizer"], cli=["migrate"]
    )
