"""The bench's synthetic monorepo: the services it promises, deterministic, and it builds.

`make bench` compares release flows on this repo, so a repo that does not compile, or that
differs between two runs, would make every figure of the bench meaningless.
"""

import hashlib
import zlib
from pathlib import Path

import pytest

from deploy_assets.assets.routes import parse_routes
from deploy_assets.config import load_pipeline_config
from deploy_assets.plan import discover_services
from deploy_assets.resources.go import GoResource
from misc.bench import generator

EM_AARCH64 = 0xB7


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_names_services_of_every_kind():
    assert generator.layout(3) == generator.Layout(
        ms=["ms_accounts", "ms_billing", "ms_catalog"],
        lambdas=["lambda_auth_handler"],
        cli=["cli_core"],
    )
    big = generator.layout(41)
    assert len(big.ms) == len(set(big.ms)) == 41 and big.ms[40] == "ms_accounts1"
    assert len(big.lambdas) == 5 and len(big.cli) == 2
    with pytest.raises(ValueError, match="at least 1"):
        generator.layout(0)


def test_generation_is_deterministic_and_discovered_as_the_pipeline_expects(tmp_path):
    first = generator.generate(tmp_path / "a", 4, shared_records=2, service_records=2)
    generator.generate(tmp_path / "b", 4, shared_records=2, service_records=2)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")

    files = [str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*.go")]
    services = discover_services(files, load_pipeline_config().source)
    assert [(s.kind, s.name) for s in services] == first.all
    assert {s.path for s in services if s.kind == "ms"} == {f"cmd/ms/{n}" for n in first.ms}
    # Every shared package is used by some service, so a cold build compiles all of them.
    used = {pkg for i in range(4) for pkg in generator.optional_for(i)}
    assert used == set(generator.OPTIONAL)


def test_generated_monorepo_builds_for_linux_arm64_with_routes(tmp_path):
    plan = generator.generate(tmp_path / "repo", 2, shared_records=3, service_records=3)
    go = GoResource(cache_dir=str(tmp_path / "cache"))
    packages = go.list_packages(tmp_path / "repo", ["./cmd/..."], "arm64")
    errors = {p.import_path: p.error for p in packages.values() if p.error}
    assert errors == {}
    stdlib = {p.import_path for p in packages.values() if p.standard}
    assert {"net/http", "encoding/json", "crypto/tls", "database/sql", "html/template"} <= stdlib

    out = tmp_path / "out"
    go.build(tmp_path / "repo", ["./cmd/..."], out, "arm64", load_pipeline_config().build_flags)
    for _, name in plan.all:
        head = (out / name).read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and head[18] == EM_AARCH64, name

    for name in plan.ms:
        routes = parse_routes(tmp_path / "repo" / "cmd" / "ms" / name)
        base = name.removeprefix("ms_")
        assert {"method": "GET", "path": "/healthz"} in routes
        assert {"method": "PUT", "path": f"/{base}/items/{{id}}"} in routes
        assert len(routes) == 7, routes  # healthz, item get/put, score, three optional features


def test_binary_mb_makes_binaries_of_real_service_size_with_incompressible_deterministic_payloads(
    tmp_path,
):
    assert generator.parse_mb_range("25-45") == (25, 45) and generator.parse_mb_range("30") == (
        30,
        30,
    )
    for bad in ("45-25", "0-3", "big"):
        with pytest.raises(ValueError, match=f"binary size '{bad}'"):
            generator.parse_mb_range(bad)
    plan = generator.generate(
        tmp_path / "repo", 2, shared_records=3, service_records=3, binary_mb=(25, 45)
    )
    sizes = generator.binary_sizes(plan, (25, 45))
    assert sorted(sizes.values()) == [
        round(mb * generator.MB) for mb in (25, 25 + 20 / 3, 25 + 40 / 3, 45)
    ]
    assert (
        generator.payload("ms_accounts", 4096)
        == generator.payload("ms_accounts", 4096)
        != generator.payload("ms_billing", 4096)
    )
    sample = (tmp_path / "repo" / "cmd" / "ms" / "ms_accounts" / "payload.bin").read_bytes()[
        : 1 << 20
    ]
    assert len(zlib.compress(sample)) > len(sample)  # git and layer compression cannot shrink it

    out = tmp_path / "out"
    GoResource(cache_dir=str(tmp_path / "cache")).build(
        tmp_path / "repo", ["./cmd/..."], out, "arm64", load_pipeline_config().build_flags
    )
    for _, name in plan.all:
        size = (out / name).stat().st_size
        assert abs(size - sizes[name]) < 2 * generator.MB, (name, size, sizes[name])
