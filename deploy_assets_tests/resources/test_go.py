"""The Go toolchain: faster builds of the very same bytes, and content keys computed once per file."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import yaml

from deploy_assets.config import DEFAULT_CONFIG, REPO_ROOT, ConfigError, load_pipeline_config
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


def test_content_keys_hash_each_shared_file_once_and_equal_keys_hashed_alone(tmp_path):
    module = tmp_path / "monorepo"
    shutil.copytree(REPO_ROOT / "misc" / "example-monorepo", module)
    go = GoResource(cache_dir=str(tmp_path / "cache"))
    packages = go.list_packages(module, ["./cmd/..."], "arm64")
    mains = [p for p in packages.values() if p.name == "main"]
    assert len(mains) >= 3

    shared: dict[str, bytes] = {}
    together = {m.import_path: go.content_key(m, packages, module, "go1.24", "arm64", FLAGS, shared)
                for m in mains}
    alone = {m.import_path: go.content_key(m, packages, module, "go1.24", "arm64", FLAGS) for m in mains}

    assert together == alone
    assert len(set(together.values())) == len(mains)  # every service its own key
    module_files = {os.path.join(p.dir, f) for p in packages.values() if not p.standard for f in p.files}
    assert set(shared) == module_files  # each file of the module hashed once, for all services
    assert all(shared[path] == hashlib.sha256(Path(path).read_bytes()).digest() for path in shared)
