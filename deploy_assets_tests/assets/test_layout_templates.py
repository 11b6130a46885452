"""A monorepo laid out as `cmd/<name>`, a CLI among the services, released by name templates.

Real repos keep `cmd/auth` and `cmd/things` where the old system's images were `ms_auth`: the
`ms` kind includes `cmd/*` except `cmd/cli`, which the `cli` kind takes, and each kind's
`name_template` gives the prefix. The release goes alpha → rc → final, and the registry, the
bucket and the GitOps repos are asked which names they hold: the templated ones and no other.
"""

import shutil
import time

import pytest
import yaml

from deploy_assets.config import DEFAULT_CONFIG, load_pipeline_config
from deploy_assets.names import partition_key
from deploy_assets_tests.assets.test_promotion import registry_repositories, s3_keys, show

pytestmark = pytest.mark.slow

TAGS = {"dev": "v2.0.0-alpha.1", "staging": "v2.0.0-rc.1", "prod": "v2.0.0"}
MOVES = {
    "cmd/ms/ms_core": "cmd/auth",
    "cmd/ms/ms_chat": "cmd/things",
    "cmd/cli/cli_core": "cmd/cli",
    "cmd/lambdas/lambda_webhook_handler": "lambdas/webhook",
}
MS = ["ms_auth", "ms_things"]
# The README's worked example for this shape, loaded by the loader a deployment uses.
KINDS = """
ms:      {include: "cmd/*", exclude: ["cmd/cli"], name_template: "ms_{dir}", dockerfile: ms.Dockerfile}
lambdas: {include: "lambdas/*", name_template: "lambda_{dir}"}
cli:     {include: "cmd/cli", name_template: "cli_{dir}", dockerfile: cli.Dockerfile}
"""


def lay_out_as_cmd_name(monorepo) -> None:
    """cmd/<name> for services and the CLI, lambdas/<name>; the example's other mains go."""
    clone = monorepo.clone
    staged = clone / "moving"
    for old in MOVES:  # out first: cmd/cli/cli_core becomes cmd/cli itself
        shutil.move(clone / old, staged / old.replace("/", "_"))
    shutil.rmtree(clone / "cmd")
    for old, new in MOVES.items():
        (clone / new).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged / old.replace("/", "_"), clone / new)
    staged.rmdir()
    monorepo.commit("Services in cmd/<name>, the CLI in cmd/cli")


def templated_config(tmp_path):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["source"]["kinds"] = yaml.safe_load(KINDS)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_pipeline_config(path)


def test_cmd_name_layout_with_templates_goes_alpha_rc_final_under_the_templated_names(
    harness, tmp_path
):
    lay_out_as_cmd_name(harness.monorepo)
    harness.reload(templated_config(tmp_path))

    walls = {}
    for env, tag in TAGS.items():
        started = time.monotonic()
        outcome = harness.release(tag)
        walls[env] = time.monotonic() - started
        assert outcome.success, (tag, outcome.error)
    print(
        "\ncmd/<name> layout releases: "
        + ", ".join(f"{TAGS[e]} {s:.1f}s" for e, s in walls.items())
    )

    staging, prod = partition_key("staging", TAGS["staging"]), partition_key("prod", TAGS["prod"])
    assert harness.metadata("source", prod)["services"] == [*MS, "lambda_webhook", "cli_cli"]
    # The registry holds the templated names only: no `auth`, `things` or `cli` repository.
    assert sorted(registry_repositories(harness)) == ["cli_cli", *MS]
    for name in MS:
        dev_digest = harness.registry.manifest_digest(name, TAGS["dev"])
        rc_digest = harness.registry.manifest_digest(name, TAGS["staging"])
        assert (
            dev_digest
            and rc_digest
            and harness.registry.manifest_digest(name, TAGS["prod"]) == rc_digest
        ), name
        binary = harness.metadata(f"binary/{name}", prod)
        assert (
            binary["reused_from"] == staging
        )  # prod built nothing: the rc's bytes, under the same name
        # The image of ms_auth holds the binary built from cmd/auth, not another main of the batch.
        assert (
            harness.registry.file_sha256(name, TAGS["prod"], "/service")[2]
            == binary["sha256_arm64"]
        )
        assert (
            harness.s3.download_sha256(f"binaries/{TAGS['prod']}/{name}")[0]
            == binary["sha256_arm64"]
            == harness.metadata(f"s3/{name}", staging)["sha256_arm64"]
        )
    assert (
        harness.registry.manifest_digest("cli_cli", TAGS["prod"])
        == harness.metadata("image/cli_cli", prod)["digest"]
    )
    assert (
        harness.registry.file_sha256("cli_cli", TAGS["prod"], "/cli")[2]
        == harness.metadata("binary/cli_cli", prod)["sha256_arm64"]
    )

    for env, tag in TAGS.items():
        expected = {
            f"binaries/{tag}/{n}" for n in MS + (["lambda_webhook"] if env == "prod" else [])
        }
        binaries = {
            k
            for k in s3_keys(harness, f"binaries/{tag}/")
            if k.rsplit("/", 1)[1]
            in {
                "ms_auth",
                "ms_things",
                "lambda_webhook",
                "cli_cli",
                "auth",
                "things",
                "webhook",
                "cli",
            }
        }
        assert binaries == expected, env

    for env, repo in (
        ("dev", "gitops-development"),
        ("staging", "gitops-staging"),
        ("prod", "gitops-production"),
    ):
        tag = TAGS[env]
        assert harness.gitops_log(repo)[0].endswith(f" deploy({env}): {' '.join(MS)} -> {tag}"), (
            repo
        )
        for name in MS:
            kustomization = yaml.safe_load(show(harness, repo, f"apps/{name}/kustomization.yaml"))
            assert {
                "newTag": tag,
                "newName": f"{harness.settings.registry}/{name}",
            }.items() <= kustomization["images"][0].items(), (repo, name)
    tfvars = yaml.safe_load(
        show(harness, "terraform-apps-production", "api_gateway/routes.auto.tfvars.json")
    )
    assert {"service": "ms_auth", "method": "GET", "path": "/healthz"} in tfvars["routes"]
