"""A DAGSTER_HOME made before the local instance moved to deploy_assets/local/ keeps loading."""

from deploy_assets.cli.runner import follow_moved_storage_module
from deploy_assets.config import REPO_ROOT

LOCAL_YAML = REPO_ROOT / "misc" / "configs" / "dagster.local.yaml"


def test_an_old_dagster_yaml_is_pointed_at_the_moved_module_and_nothing_else_changes(tmp_path):
    current = LOCAL_YAML.read_text()
    old = current.replace(
        "module: deploy_assets.local.instance", "module: deploy_assets.local_instance"
    )
    assert old != current
    config = tmp_path / "dagster.yaml"
    config.write_text(old)
    assert follow_moved_storage_module(config) is True
    assert config.read_text() == current


def test_a_current_dagster_yaml_is_left_alone(tmp_path):
    config = tmp_path / "dagster.yaml"
    config.write_text(LOCAL_YAML.read_text())
    assert follow_moved_storage_module(config) is False
    assert config.read_text() == LOCAL_YAML.read_text()
