"""A monorepo laid out as `cmd/<name>`, a CLI among the services, released by name templates.

Real repos keep `cmd/auth` and `cmd/things` where the old system's images were `ms_auth`: the
`ms` kind includes `cmd/*` except `cmd/cli`, which the `cli` kind takes, and each kind's
`name_template` gives the prefix. The release goes alpha → rc → final through the layout
examples' helpers, which ask the registry, the bucket and the GitOps repos which names they hold:
the templated ones and no other.
"""

import pytest
import yaml

from deploy_assets.names import partition_key
from deploy_assets_tests.assets.test_layout_examples import (
    TAGS,
    assert_released_as,
    config_with,
    rearrange,
    release_alpha_rc_final,
)
from deploy_assets_tests.assets.test_promotion import show

pytestmark = pytest.mark.slow

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


def test_cmd_name_layout_with_templates_goes_alpha_rc_final_under_the_templated_names(
    harness, tmp_path
):
    rearrange(harness.monorepo, MOVES, "Services in cmd/<name>, the CLI in cmd/cli")
    kinds = "".join(f"    {line}\n" for line in KINDS.strip().splitlines())
    harness.reload(config_with(tmp_path, f"source:\n  kinds:\n{kinds}"))
    release_alpha_rc_final(harness, "cmd/<name> layout")

    # Registry, bucket and GitOps repos hold the templated names alone (no `auth`, `things` or
    # `cli`), prod carrying the rc's bytes; the image of ms_auth holds the binary of cmd/auth.
    assert_released_as(harness, MS, ["lambda_webhook"], ["cli_cli"])
    prod = partition_key("prod", TAGS["prod"])
    assert harness.metadata("source", prod)["services"] == [*MS, "lambda_webhook", "cli_cli"]
    assert all(harness.registry.manifest_digest(name, TAGS["dev"]) for name in MS)
    assert (
        harness.registry.manifest_digest("cli_cli", TAGS["prod"])
        == harness.metadata("image/cli_cli", prod)["digest"]
    )
    tfvars = yaml.safe_load(
        show(harness, "terraform-apps-production", "api_gateway/routes.auto.tfvars.json")
    )
    assert {"service": "ms_auth", "method": "GET", "path": "/healthz"} in tfvars["routes"]
