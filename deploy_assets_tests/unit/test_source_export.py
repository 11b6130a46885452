"""Which folders a release exports: the module and its local replaces, from the commit's go.mod.

Pure: go.mod text and a file list in, folders out; the end-to-end proof that such an export
builds and promotes is deploy_assets_tests/assets/test_layout_examples_subfolder.py."""

import pytest

from deploy_assets.assets.source_export import ExportError, ExportPlan, export_plan, local_replaces
from deploy_assets.plan import PlanError

GO_MOD = """module example.com/mono/go

go 1.24

require example.com/other v1.2.0 // indirect

replace example.com/shared => ../shared // the team's library beside the module

replace (
\texample.com/proto v0.0.0 => "../gen/proto"
\texample.com/fork => github.com/us/fork v1.0.1
\texample.com/inner => ./third_party/inner
\t"example.com/raw" v1.0.0 => ../raw
)
"""
FILES = [
    "go/go.mod",
    "go/go.sum",
    "go/cmd/ms/core/main.go",
    "go/third_party/inner/go.mod",
    "shared/go.mod",
    "shared/lib.go",
    "gen/proto/go.mod",
    "gen/proto/a.pb.go",
    "raw/go.mod",
    "docs/big.pdf",
    "web/package.json",
    "README.md",
]


def test_local_replaces_are_read_from_single_lines_and_blocks_quoted_or_not():
    assert local_replaces(GO_MOD) == [
        ("example.com/shared", "../shared"),
        ("example.com/proto", "../gen/proto"),
        ("example.com/inner", "./third_party/inner"),
        ("example.com/raw", "../raw"),
    ]


def test_a_module_in_a_subfolder_exports_it_and_the_folders_its_replaces_point_at():
    plan = export_plan("go", GO_MOD, FILES)
    assert plan.paths == ("gen/proto", "go", "raw", "shared")  # not docs/, web/, README.md
    assert plan.reason == "module go and its local replaces gen/proto, raw, shared"
    assert not plan.whole_tree


def test_a_vendored_module_exports_its_folder_alone_as_vendor_holds_its_replaces():
    """`go mod vendor` copies replaced folders into vendor/ and -mod=vendor builds from there
    (tried with go1.24: built with ../shared moved away), so even an absolute replace is fine."""
    go_mod = GO_MOD + "replace example.com/local => /home/dev/local\n"
    assert export_plan("go", go_mod, FILES, vendored=True) == ExportPlan(
        ("go",), "module go, vendored (its replaces are in go/vendor)"
    )


def test_a_module_without_local_replaces_exports_its_folder_alone():
    plan = export_plan(
        "./services/backend/",
        "module m\n\ngo 1.24\n",
        ["services/backend/go.mod", "services/backend/main.go", "docs/a.md"],
    )
    assert plan == ExportPlan(("services/backend",), "module services/backend")


def test_the_module_at_the_top_or_a_go_work_above_it_exports_the_whole_tree():
    assert export_plan(".", "module m\n", ["go.mod", "docs/a.md"]).whole_tree
    plan = export_plan("go", "module m\n", ["go.work", "go/go.mod", "tools/go.mod"])
    assert plan == ExportPlan((".",), "go.work may use modules go.mod does not name")


def test_a_replace_of_the_repo_top_covers_everything():
    plan = export_plan(
        "go", "module m\nreplace example.com/top => ../\n", ["go.mod", "go/go.mod", "x/y"]
    )
    assert plan.whole_tree


@pytest.mark.parametrize("target", ["../../outside", "/home/dev/shared", "../go/../../x"])
def test_a_replace_out_of_the_repo_is_refused_naming_it(target):
    go_mod = f"module m\n\nreplace example.com/shared => {target}\n"
    with pytest.raises(
        ExportError,
        match=rf"go/go.mod: replace example.com/shared => {target} points "
        "outside the monorepo",
    ):
        export_plan("go", go_mod, ["go/go.mod"])


def test_a_replace_of_a_folder_the_commit_lacks_is_refused_naming_it():
    with pytest.raises(
        ExportError,
        match=r"replace example.com/shared => ../shared: the commit has no "
        r"shared/go.mod",
    ):
        export_plan(
            "go",
            "module m\nreplace example.com/shared => ../shared\n",
            ["go/go.mod", "shared/x.go"],
        )


def test_a_module_root_without_go_mod_or_outside_the_repo_is_refused_as_a_plan_error():
    with pytest.raises(
        PlanError, match=r"the commit has no backend/go.mod \(source.module_root is 'backend'\)"
    ):
        export_plan("backend", None, ["go.mod"])
    with pytest.raises(
        PlanError, match=r"source.module_root '../elsewhere' is outside the monorepo"
    ):
        export_plan("../elsewhere", "module m\n", ["go.mod"])
