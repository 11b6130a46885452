"""The Go toolchain's memory setting: faster builds of the very same bytes."""

import hashlib

import pytest
import yaml

from deploy_assets.config import DEFAULT_CONFIG, ConfigError, load_pipeline_config
from deploy_assets.resources.go import GoResource

FLAGS = ["-trimpath", "-buildvcs=false"]


def _probe_module(root):
    (root / "go.mod").write_text("module example.com/probe\n\ngo 1.24\n")
    (root / "main.go").write_text('package main\n\nimport (\n\t"os"\n\t"strconv"\n)\n\n'
                                  'func main() { os.Stdout.WriteString(strconv.Itoa(len(os.Args))) }\n')


def test_gc_off_below_a_memory_limit_builds_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.delenv("DEPLOY_ASSETS_GOCACHE", raising=False)  # not the suite's shared, warm cache
    _probe_module(tmp_path)
    digests = {}
    for limit in ("", "600MiB"):  # separate caches: every package is compiled under each setting
        go = GoResource(cache_dir=str(tmp_path / f"cache-{limit or 'default'}"), memory_limit=limit)
        out = tmp_path / f"out-{limit or 'default'}"
        go.build(tmp_path, ["."], out, "arm64", FLAGS)
        digests[limit] = hashlib.sha256((out / "probe").read_bytes()).hexdigest()

    assert digests[""] == digests["600MiB"]
    assert GoResource(cache_dir=str(tmp_path), memory_limit="600MiB").env("arm64")["GOMEMLIMIT"] == "600MiB"
    assert GoResource(cache_dir=str(tmp_path), memory_limit="600MiB").env("arm64")["GOGC"] == "off"
    assert "GOMEMLIMIT" not in GoResource(cache_dir=str(tmp_path)).env("arm64")


def test_the_memory_limit_is_configured_and_checked(tmp_path):
    assert load_pipeline_config().go_memory_limit == "600MiB"
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["go_memory_limit"] = "lots"
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(raw))

    with pytest.raises(ConfigError, match=r"go_memory_limit: .*got 'lots'"):
        load_pipeline_config(tmp_path / "pipeline.yaml")
