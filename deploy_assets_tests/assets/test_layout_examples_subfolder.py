"""The README's worked example of a Go module in a subfolder, released alpha → rc → final.

The monorepo keeps its Go module in `go/` beside a large unrelated `docs/` and other languages'
folders, and a shared Go module in `shared/payments` that go.mod replaces locally. `source`
exports `go/` and `shared/payments` only: the tree every step builds from lacks docs/ and web/,
the release still builds, and prod carries the rc's bytes. A step alone on an empty work folder
(a fresh worker) exports the same folders again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from deploy_assets.names import partition_key
from deploy_assets_tests.assets.run_events import run_subset
from deploy_assets_tests.assets.test_layout_examples import (
    TAGS,
    assert_released_as,
    config_with,
    release_alpha_rc_final,
)
from deploy_assets_tests.assets.test_promotion import registry_repositories, s3_keys

pytestmark = pytest.mark.slow

# The module in go/ (its services in go/cmd/<kind>/*), a local replace to ../shared/payments.
MODULE_IN_A_SUBFOLDER = """
source:
  module_root: go           # the folder of go.mod; kinds' globs are relative to it
  kinds:
    ms:      {include: "cmd/ms/*", dockerfile: ms.Dockerfile}
    lambdas: {include: "cmd/lambdas/*"}
    cli:     {include: "cmd/cli/*", dockerfile: cli.Dockerfile}
"""
GO_MOD = """module example.com/monorepo

go 1.24

require example.com/payments v0.0.0

replace example.com/payments => ../shared/payments
"""
DOCS_MB = 6


def move_module_into_go(monorepo) -> None:
    """go.mod, cmd/ and internal/ into go/; internal/payments becomes the module shared/payments;
    a docs/ folder of DOCS_MB and web/, python/ folders the Go build never reads."""
    clone = monorepo.clone
    for removed in ("cmd/ms/ms_chat", "cmd/lambdas/lambda_auth_handler"):
        shutil.rmtree(clone / removed)
    (clone / "go").mkdir()
    for part in ("go.mod", "cmd", "internal"):
        shutil.move(clone / part, clone / "go" / part)
    (clone / "shared").mkdir()
    shutil.move(clone / "go" / "internal" / "payments", clone / "shared" / "payments")
    monorepo.write("shared/payments/go.mod", "module example.com/payments\n\ngo 1.24\n")
    monorepo.write("go/go.mod", GO_MOD)
    for main in ("go/cmd/ms/ms_payments/main.go", "go/cmd/lambdas/lambda_webhook_handler/main.go"):
        text = (clone / main).read_text()
        monorepo.write(
            main, text.replace('"example.com/monorepo/internal/payments"', '"example.com/payments"')
        )
    (clone / "docs").mkdir()
    (clone / "docs" / "architecture.pdf").write_bytes(os.urandom(DOCS_MB << 20))
    monorepo.write("web/package.json", '{"name": "web", "private": true}\n')
    monorepo.write("python/tool.py", "print('not Go')\n")
    monorepo.commit(
        "The Go module in go/, a shared module in shared/payments, docs and other languages"
    )


def committed_files(monorepo, *folders: str) -> int:
    return sum(1 for folder in folders for p in (monorepo.clone / folder).rglob("*") if p.is_file())


def test_a_module_in_a_subfolder_exports_what_it_needs_and_goes_alpha_rc_final(harness, tmp_path):
    move_module_into_go(harness.monorepo)
    harness.reload(config_with(tmp_path, MODULE_IN_A_SUBFOLDER))
    release_alpha_rc_final(harness, "module in go/ (exported: go, shared/payments)")
    assert_released_as(
        harness, ms=["ms_core", "ms_payments"], lambdas=["lambda_webhook_handler"], cli=["cli_core"]
    )

    expected_files = committed_files(harness.monorepo, "go", "shared/payments")
    for env, tag in TAGS.items():
        source = harness.metadata("source", partition_key(env, tag))
        assert source["export_paths"] == ["go", "shared/payments"], env
        assert source["export_reason"] == "module go and its local replaces shared/payments"
        assert source["export_files"] == expected_files
        assert 0 < source["export_bytes"] < 1 << 20  # the 6 MB of docs/ stayed in git
        src = Path(harness.settings.work_dir) / env / tag / "src"
        assert sorted(p.name for p in src.iterdir()) == [".deploy-assets-commit", "go", "shared"], (
            env
        )
        assert sorted(p.name for p in (src / "shared").iterdir()) == ["payments"]

    # A fresh worker: the work folder gone, `routes` alone exports the same folders again.
    dev = Path(harness.settings.work_dir) / "dev" / TAGS["dev"]
    shutil.rmtree(harness.settings.work_dir)
    result = run_subset(harness, {"routes"}, TAGS["dev"])
    assert result.success
    assert sorted(p.name for p in (dev / "src").iterdir()) == [
        ".deploy-assets-commit",
        "go",
        "shared",
    ]
    assert (dev / "src" / "shared" / "payments" / "go.mod").is_file() and not (
        dev / "src" / "docs"
    ).exists()


def test_a_replace_out_of_the_repo_fails_source_naming_it_and_publishes_nothing(harness, tmp_path):
    move_module_into_go(harness.monorepo)
    harness.monorepo.write("go/go.mod", GO_MOD.replace("../shared/payments", "../../payments"))
    harness.monorepo.commit("A replace that only builds on its author's machine")
    harness.reload(config_with(tmp_path, MODULE_IN_A_SUBFOLDER))

    outcome = harness.release(TAGS["dev"])

    assert not outcome.success
    assert (
        "go/go.mod: replace example.com/payments => ../../payments points outside the monorepo"
        in str(outcome.error)
    )
    assert registry_repositories(harness) == []
    assert s3_keys(harness, f"binaries/{TAGS['dev']}/") == []
    assert len(harness.gitops_log("gitops-development")) == 1  # the repo's first commit alone
    assert not (
        Path(harness.settings.work_dir) / "dev" / TAGS["dev"] / "src"
    ).exists()  # nothing exported
