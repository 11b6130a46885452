"""The Go toolchain: faster builds of the very same bytes, and content keys computed once per file."""

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from deploy_assets.config import DEFAULT_CONFIG, REPO_ROOT, ConfigError, load_pipeline_config
from deploy_assets.resources.go import GoResource, GoTimeout

FLAGS = ["-trimpath", "-buildvcs=false"]


def _probe_module(root):
    (root / "go.mod").write_text("module example.com/probe\n\ngo 1.24\n")
    (root / "main.go").write_text(
        'package main\n\nimport (\n\t"os"\n\t"strconv"\n)\n\n'
        "func main() { os.Stdout.WriteString(strconv.Itoa(len(os.Args))) }\n"
    )


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
    assert (
        GoResource(cache_dir=str(tmp_path), memory_limit="600MiB").env("arm64")["GOMEMLIMIT"]
        == "600MiB"
    )
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
    together = {
        m.import_path: go.content_key(m, packages, module, "go1.24", "arm64", FLAGS, shared)
        for m in mains
    }
    alone = {
        m.import_path: go.content_key(m, packages, module, "go1.24", "arm64", FLAGS) for m in mains
    }

    assert together == alone
    assert len(set(together.values())) == len(mains)  # every service its own key
    module_files = {
        os.path.join(p.dir, f) for p in packages.values() if not p.standard for f in p.files
    }
    assert set(shared) == module_files  # each file of the module hashed once, for all services
    assert all(shared[path] == hashlib.sha256(Path(path).read_bytes()).digest() for path in shared)


def _tagged_module(root, special: str):
    """A main with one file behind `//go:build special` that changes what the binary prints."""
    _probe_module(root)
    (root / "special.go").write_text(
        '//go:build special\n\npackage main\n\nimport "os"\n\n'
        f'func init() {{ os.Stdout.WriteString("{special}\\n") }}\n'
    )


def test_go_list_sees_the_build_tags_so_a_tagged_file_is_in_the_content_key(tmp_path):
    go = GoResource(cache_dir=str(tmp_path / "cache"))
    flags = [*FLAGS, "-tags=special"]
    keys = {}
    for special in ("special-1", "special-2"):
        _tagged_module(tmp_path, special)
        packages = go.list_packages(tmp_path, ["."], "arm64", flags)
        [main] = [p for p in packages.values() if p.name == "main"]
        assert "special.go" in main.files
        keys[special] = go.content_key(main, packages, tmp_path, "go1.24", "arm64", flags)
        out = tmp_path / f"out-{special}"
        go.build(tmp_path, ["."], out, "arm64", flags)
        assert special.encode() in (out / "probe").read_bytes()  # the tagged file is in the bytes

    assert keys["special-1"] != keys["special-2"]
    # Without the tag the file is not compiled, and not in the key: changing it rebuilds nothing.
    untagged = go.list_packages(tmp_path, ["."], "arm64", FLAGS)
    [main] = [p for p in untagged.values() if p.name == "main"]
    assert "special.go" not in main.files


HANGING_GO = """#!/bin/sh
# A go that never answers, with a child of its own, as a stuck compiler would be.
sleep 300 &
echo $! >> "$HANGING_GO_PIDS"
echo $$ >> "$HANGING_GO_PIDS"
wait
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has stopped running; init reaps it


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda go, d: go.version(), "version_timeout_s"),
        (lambda go, d: go.list_packages(d, ["./..."], "arm64", FLAGS), "list_timeout_s"),
        (
            lambda go, d: go.build(d, ["."], d / "out", "arm64", FLAGS, on_binary=lambda p: None),
            "build_timeout_s",
        ),
    ],
)
def test_a_hanging_go_fails_within_its_timeout_and_leaves_no_process(
    tmp_path, monkeypatch, call, field
):
    fake = tmp_path / "bin" / "go"
    fake.parent.mkdir()
    fake.write_text(HANGING_GO)
    fake.chmod(0o755)
    pids = tmp_path / "pids"
    monkeypatch.setenv("HANGING_GO_PIDS", str(pids))
    _probe_module(tmp_path)
    go = GoResource(go_binary=str(fake), cache_dir=str(tmp_path / "cache"), **{field: 1.5})

    started = time.monotonic()
    with pytest.raises(GoTimeout) as err:
        call(go, tmp_path)
    took = time.monotonic() - started

    assert took < 1.5 + 2, took
    assert str(err.value).startswith(f"`{fake} ")
    assert (
        f"did not finish within 1.5 s (GoResource.{field}); it and the processes it started were killed"
        in str(err.value)
    )
    started_pids = [int(line) for line in pids.read_text().split()]
    assert len(started_pids) == 2
    deadline = time.monotonic() + 2  # SIGKILL is delivered at once; allow the kernel a moment
    while any(_alive(pid) for pid in started_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in started_pids if _alive(pid)]
