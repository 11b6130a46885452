"""The toolchain check reads the Go version a real binary embeds, as `go version` does."""

import subprocess
from pathlib import Path

from deploy_assets.checks.toolchain import embedded_go_version
from deploy_assets.resources.go import GoResource, default_go_binary


def test_go_version_is_read_from_the_binary_itself(tmp_path):
    (tmp_path / "go.mod").write_text("module example.com/probe\n\ngo 1.24\n")
    (tmp_path / "main.go").write_text("package main\n\nfunc main() {}\n")
    go = GoResource(cache_dir=str(tmp_path / "cache"))
    go.build(tmp_path, ["."], tmp_path / "out", "arm64", ["-trimpath", "-buildvcs=false"])
    binary = next((tmp_path / "out").iterdir())
    reported = subprocess.run(
        [default_go_binary(), "version", str(binary)], capture_output=True, text=True, check=True
    )
    assert (
        embedded_go_version(binary.read_bytes())
        == reported.stdout.split(": ", 1)[1].strip()
        == go.version()
    )
    assert embedded_go_version(b"\x7fELF not a go binary") is None
    assert embedded_go_version(Path(binary).read_bytes()[:1024]) is None
