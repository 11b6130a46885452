"""The source mirror against hostile trees and stuck neighbours: links out of the tree, a
held mirror lock, a remote that never answers. Real git, real processes, no mocks."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy_assets.resources.git import GitError, GitSourceResource


@pytest.fixture
def source(monorepo, tmp_path) -> GitSourceResource:
    return GitSourceResource(remote=str(monorepo.bare), cache_dir=str(tmp_path / "cache"))


@pytest.mark.parametrize("target", ["/etc", "../../../outside", "../../../../../../../../tmp"])
def test_an_export_refuses_a_symlink_out_of_the_tree_and_writes_nothing(
    monorepo, source, tmp_path, target
):
    (tmp_path / "outside").mkdir()
    link = monorepo.clone / "cmd" / "ms" / "evil"
    link.symlink_to(target)
    commit = monorepo.commit("a link out of the tree")
    source.fetch()
    dest = tmp_path / "work" / "src"

    with pytest.raises(
        GitError,
        match=rf"archive of {commit} has a link cmd/ms/evil -> {target} that points "
        "outside the source tree",
    ):
        source.export(commit, dest)

    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no half-extracted temporary tree left behind
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_symlink_inside_the_tree_is_kept(monorepo, source, tmp_path):
    (monorepo.clone / "cmd" / "ms" / "readme").symlink_to("../../README.md")
    commit = monorepo.commit("a link inside the tree")
    source.fetch()
    dest = source.export(commit, tmp_path / "work" / "src")
    assert os.readlink(dest / "cmd" / "ms" / "readme") == "../../README.md"
    assert (dest / "cmd" / "ms" / "readme").read_text() == (
        monorepo.clone / "README.md"
    ).read_text()


def test_a_held_mirror_lock_fails_the_fetch_within_its_deadline_naming_the_file_and_holder(
    monorepo, tmp_path
):
    source = GitSourceResource(
        remote=str(monorepo.bare), cache_dir=str(tmp_path / "cache"), lock_timeout=1.5
    )
    lock_file = source.mirror_path.with_name(f"{source.mirror_path.name}.flock")
    lock_file.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)",
            str(lock_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(
            GitError,
            match=rf"lock {lock_file} is still held after 1.5s by pid {holder.pid} \(.*python",
        ):
            source.fetch()
        assert 1.4 < time.monotonic() - started < 5
        assert not (source.mirror_path / "HEAD").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (source.fetch() / "HEAD").exists()  # the kernel dropped the dead holder's lock


def test_a_remote_that_never_answers_times_out_and_leaves_no_git_behind(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections into the backlog and never says a word
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/monorepo.git"
    source = GitSourceResource(remote=url, cache_dir=str(tmp_path / "cache"), git_timeout=2)
    try:
        started = time.monotonic()
        with pytest.raises(
            GitError, match=rf"git clone --mirror timed out after 2s \(source remote {url}\)"
        ):
            source.fetch()
        assert time.monotonic() - started < 10
        time.sleep(0.2)
        left = [
            pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline(pid).find(url) >= 0
        ]
        assert left == [], "git or git-remote-http outlived its timeout"
    finally:
        silent.close()


def _cmdline(pid: str) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def test_an_export_of_some_folders_holds_them_alone_and_a_wider_one_replaces_it(
    monorepo, source, tmp_path
):
    monorepo.write("docs/manual.md", "# a big manual\n")
    commit = monorepo.commit("docs beside the module")
    source.fetch()
    dest = tmp_path / "work" / "src"
    tree = source.export(commit, dest, ["cmd/ms", "internal"])
    assert sorted(p.name for p in tree.iterdir()) == [".deploy-assets-commit", "cmd", "internal"]
    assert sorted(p.name for p in (tree / "cmd").iterdir()) == ["ms"]
    assert (tree / "cmd" / "ms" / "ms_core" / "main.go").read_bytes() == (
        monorepo.clone / "cmd" / "ms" / "ms_core" / "main.go"
    ).read_bytes()
    # Same commit, other paths: the marker tells them apart, so the tree is exported again.
    assert (source.export(commit, dest) / "docs" / "manual.md").is_file()
    assert (dest / ".deploy-assets-commit").read_text() == commit


def test_the_replace_parser_agrees_with_go_mod_edit(tmp_path):
    """local_replaces reads go.mod as the go command does (its own JSON view is the reference)."""
    from deploy_assets.assets.source_export import local_replaces
    from deploy_assets_tests.unit.test_source_export import GO_MOD

    (tmp_path / "go.mod").write_text(GO_MOD)
    from deploy_assets.resources.go import default_go_binary

    out = subprocess.run(
        [default_go_binary(), "mod", "edit", "-json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""},
    )
    replaces = json.loads(out.stdout)["Replace"]
    local = [(r["Old"]["Path"], r["New"]["Path"]) for r in replaces if "Version" not in r["New"]]
    assert local_replaces(GO_MOD) == local and len(local) == 4
