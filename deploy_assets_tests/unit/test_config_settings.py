"""Deployment settings live in resources/deployment_settings.py; config re-exports them, so
every `from deploy_assets.config import Settings` keeps working and reads the same values."""

import os
from pathlib import Path

from deploy_assets import config
from deploy_assets.resources import deployment_settings


def test_config_re_exports_the_settings_module():
    assert config.Settings is deployment_settings.Settings
    assert config.apply_env_file is deployment_settings.apply_env_file
    assert config.REPO_ROOT == Path(config.__file__).resolve().parent.parent
    assert config.DEFAULT_CONFIG == config.REPO_ROOT / "misc" / "configs" / "pipeline.yaml"


def test_settings_read_the_old_systems_variables_and_default_to_the_local_stack(tmp_path):
    settings = config.Settings.from_env(
        {
            "DEPLOY_ASSETS_LOCAL_DIR": str(tmp_path),
            "APP_ARCHIVER_BUCKET": "prod-artifacts",
            "APP_ARCHIVER_PATH": "bins",
            "DEPLOY_ASSETS_S3_ENDPOINT": "",
            "DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING": "Yes",
            "DEPLOY_ASSETS_GO_COMPILE_CACHE": "/shared/cache/",
        }
    )
    assert (settings.bucket, settings.s3_path, settings.s3_endpoint) == (
        "prod-artifacts",
        "bins",
        None,
    )
    assert settings.registry == "127.0.0.1:5000" and settings.aws_region == "eu-west-1"
    assert settings.source_repo == str(tmp_path / "git" / "monorepo.git")
    assert (settings.work_dir, settings.cache_dir) == (tmp_path / "work", tmp_path / "cache")
    assert settings.allow_prod_without_staging is True
    assert settings.go_compile_cache == "shared/cache"
    assert config.Settings.from_env({}).allow_prod_without_staging is False


def test_an_env_file_fills_only_the_keys_not_set(tmp_path, monkeypatch):
    env_file = tmp_path / "local.env"
    env_file.write_text("# a comment\nS3_TEST_SET=from-file\nS3_TEST_NEW = new\nnot a pair\n")
    monkeypatch.setenv("S3_TEST_SET", "from-env")
    monkeypatch.setenv("S3_TEST_NEW", "")  # so the undo removes what the file adds
    monkeypatch.delenv("S3_TEST_NEW")
    config.apply_env_file(env_file)
    assert (os.environ["S3_TEST_SET"], os.environ["S3_TEST_NEW"]) == ("from-env", "new")
