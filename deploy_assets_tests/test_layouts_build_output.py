"""A service's build output is the file `go build` really writes (real Go; the layout rules
themselves are pure and live in unit/test_layouts.py)."""

from deploy_assets.plan import Service
from deploy_assets.resources.go import GoResource


def test_build_output_is_the_file_go_build_writes(tmp_path):
    module = tmp_path / "m"
    for directory in ("cmd/auth", "cmd/billing/v2"):
        (module / directory).mkdir(parents=True)
        (module / directory / "main.go").write_text("package main\n\nfunc main() {}\n")
    (module / "go.mod").write_text("module example.com/m\n\ngo 1.24\n")
    out = tmp_path / "out"
    out.mkdir()
    GoResource(cache_dir=str(tmp_path / "cache")).build(
        module, ["./cmd/auth", "./cmd/billing/v2"], out, "amd64", []
    )
    built = sorted(p.name for p in out.iterdir())
    assert built == sorted(
        Service(f"ms_{d}", "ms", d).build_output for d in ("cmd/auth", "cmd/billing/v2")
    )
    assert built == ["auth", "billing"]
