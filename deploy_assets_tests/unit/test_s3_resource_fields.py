"""Every setting of the resources the UI shows (S3, the source repo, the Docker engine) carries
the description Dagster displays beside it, and only s3*.py reaches into the S3 client."""

import ast
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.resources.docker import DockerResource
from deploy_assets.resources.git import GitSourceResource
from deploy_assets.resources.s3 import S3Resource

PACKAGE = Path(__file__).resolve().parents[2] / "deploy_assets"


@pytest.mark.parametrize("resource", [S3Resource, GitSourceResource, DockerResource])
def test_every_field_has_the_description_the_ui_shows(resource: type[dg.ConfigurableResource]):
    fields = resource.to_config_schema().as_field().config_type.fields
    assert fields, resource
    missing = sorted(
        name for name, field in fields.items() if not (field.description or "").strip()
    )
    assert missing == [], f"{resource.__name__} fields without a description: {missing}"


def test_s3_settings_keep_their_defaults():
    s3 = S3Resource(bucket="b")
    assert (s3.path, s3.region, s3.endpoint_url, s3.max_attempts) == (
        "binaries",
        "eu-west-1",
        "",
        4,
    )
    assert (s3.verify_reads_back, s3.copy_part_threshold) == (True, 5 * 1024**3)
    assert s3.key("v1.0.0", "ms_core") == "binaries/v1.0.0/ms_core"


def _client_calls_on_others(path: Path) -> list[str]:
    """`x._client()` where x is not self: a reach into another object's private client."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_client"
            and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "self")
        ):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_no_module_uses_the_private_s3_client_of_another_object():
    offenders = [
        hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _client_calls_on_others(path)
    ]
    assert offenders == [], "use S3Resource's public methods (stream, list_prefix, ...) instead"
