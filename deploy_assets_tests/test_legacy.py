"""The old Makefile vocabulary (`deploy-assets legacy <target>`) on a copy of the example monorepo."""

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy_assets.cli import commands as cli
from deploy_assets.cli.demo import EXAMPLE_MONOREPO
from deploy_assets.resources.git import run_git
from deploy_assets.resources.registry import RegistryResource

MS = ["ms_chat", "ms_core", "ms_payments"]
LAMBDAS = ["lambda_auth_handler", "lambda_webhook_handler"]


@pytest.fixture
def tree(tmp_path, monkeypatch) -> Path:
    """A working tree of the example monorepo, as a team has it checked out."""
    monkeypatch.setenv(
        "DEPLOY_ASSETS_ENV_FILE", str(tmp_path / "no.env")
    )  # keep local.env out of os.environ
    monkeypatch.setenv("DEPLOY_ASSETS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DEPLOY_ASSETS_CONFIG", raising=False)
    root = tmp_path / "monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, root)
    return root


def legacy(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["legacy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def elf_arm64(path: Path) -> bool:
    data = path.read_bytes()
    return data[:4] == b"\x7fELF" and data[18] == 0xB7  # EM_AARCH64


def test_names_are_printed_space_separated(tree, capsys):
    assert legacy(capsys, "get-ms-names", "--source", str(tree)) == (
        0,
        "ms_chat ms_core ms_payments\n",
        "",
    )
    assert legacy(capsys, "get-cli-names", "--source", str(tree)) == (0, "cli_core\n", "")


def test_names_default_to_the_current_directory(tree, capsys, monkeypatch):
    monkeypatch.chdir(tree / "cmd")
    code, _, err = legacy(capsys, "get-ms-names")
    assert code == 2 and f"{tree / 'cmd'} has no go.mod" in err
    monkeypatch.chdir(tree)
    assert legacy(capsys, "get-ms-names")[1] == "ms_chat ms_core ms_payments\n"


def test_parse_ms_routes_writes_the_pipelines_routes_table(tree, capsys):
    code, out, _ = legacy(capsys, "parse-ms-routes", "--source", str(tree))

    assert code == 0 and out == f"{tree / 'routes.json'}: 12 routes of 3 microservices\n"
    routes = json.loads((tree / "routes.json").read_text())
    assert [r for r in routes if r["service"] == "ms_payments"] == [  # sorted by path, then method
        {"service": "ms_payments", "method": "GET", "path": "/payments"},
        {"service": "ms_payments", "method": "POST", "path": "/payments"},
        {"service": "ms_payments", "method": "DELETE", "path": "/payments/{id}"},
        {"service": "ms_payments", "method": "GET", "path": "/payments/{id}"},
    ]
    assert {"service": "ms_core", "method": "GET", "path": "/healthz"} in routes
    assert {r["service"] for r in routes} == set(MS)


def test_build_targets_fill_bin_arm64_per_kind(tree, capsys):
    code, out, _ = legacy(capsys, "build-pipeline-ms", "--source", str(tree))
    assert code == 0, out
    assert sorted(p.name for p in (tree / "bin_arm64").iterdir()) == ["ms"]
    assert sorted(p.name for p in (tree / "bin_arm64/ms").iterdir()) == MS
    assert out.splitlines()[0] == "built bin_arm64/ms/ms_chat (cmd/ms/ms_chat, linux/arm64)"

    assert legacy(capsys, "build-pipeline-lambdas", "--source", str(tree))[0] == 0
    assert sorted(p.name for p in (tree / "bin_arm64/lambdas").iterdir()) == LAMBDAS

    assert legacy(capsys, "build-pipeline", "--source", str(tree))[0] == 0
    built = sorted(str(p.relative_to(tree)) for p in (tree / "bin_arm64").rglob("*") if p.is_file())
    assert built == sorted(
        [f"bin_arm64/ms/{n}" for n in MS]
        + [f"bin_arm64/lambdas/{n}" for n in LAMBDAS]
        + ["bin_arm64/cli/cli_core"]
    )
    for relpath in built:
        binary = (tree / relpath).read_bytes()
        assert elf_arm64(tree / relpath), relpath
        # The pipeline's flags (-trimpath): no path of this machine inside the bytes.
        assert str(tree).encode() not in binary, relpath


def test_a_broken_service_is_named(tree, capsys):
    main = tree / "cmd/ms/ms_chat/main.go"
    main.write_text(main.read_text() + "\nfunc broken() { undefinedThing() }\n")
    code, _, err = legacy(capsys, "build-pipeline-ms", "--source", str(tree))
    assert code == 1
    assert "ms_chat (cmd/ms/ms_chat)" in err and "undefinedThing" in err
    assert not (tree / "bin_arm64/ms/ms_core").exists()


def test_push_targets_build_and_push_with_git_describe_as_the_tag(
    tree, capsys, registry, docker_engine
):
    version = f"v0.{random.randrange(10**6)}.0"  # the registry is shared by the session
    run_git(["init", "--quiet", "--initial-branch=main"], cwd=tree)
    run_git(["add", "-A"], cwd=tree)
    run_git(["commit", "--quiet", "-m", "import"], cwd=tree)
    run_git(["tag", version], cwd=tree)
    head = run_git(["rev-parse", "HEAD"], cwd=tree).decode().strip()
    reg = RegistryResource(host=registry)

    code, out, err = legacy(
        capsys, "push-ms-dockers", "--source", str(tree), "--registry", registry
    )

    assert code == 0, err
    assert sorted(
        line.split("@")[0] for line in out.splitlines() if line.startswith("pushed ")
    ) == [f"pushed {registry}/{name}:{version}" for name in MS]
    for name in MS:
        digest = reg.manifest_digest(name, version)
        assert digest and f"pushed {registry}/{name}:{version}@{digest}" in out
        assert reg.manifest_platform(name, version) == "linux/arm64"
        assert elf_arm64(tree / f"bin_arm64/ms/{name}")
    config = _image_config(reg, "ms_core", version)
    assert config["config"]["Labels"]["org.opencontainers.image.revision"] == head
    assert config["config"]["Entrypoint"] == ["/service"]

    # Tags are immutable: a second push of the same version is refused before anything is pushed.
    code, _, err = legacy(capsys, "push-ms-dockers", "--source", str(tree), "--registry", registry)
    assert code == 2 and f"{registry}/ms_chat:{version} already exists" in err

    code, out, err = legacy(
        capsys,
        "push-cli-dockers",
        "--source",
        str(tree),
        "--registry",
        registry,
        "--version",
        f"{version}-cli",
    )
    assert code == 0, err
    assert reg.manifest_digest("cli_core", f"{version}-cli")
    assert _image_config(reg, "cli_core", f"{version}-cli")["config"]["Entrypoint"] == ["/cli"]


def test_push_without_registry_or_version_is_refused(tree, capsys):
    code, _, err = legacy(capsys, "push-ms-dockers", "--source", str(tree), "--registry", "")
    assert code == 2 and "--registry is required" in err
    code, _, err = legacy(
        capsys, "push-cli-dockers", "--source", str(tree), "--registry", "127.0.0.1:1"
    )
    assert code == 2 and "no --version given and `git describe --tags`" in err
    code, _, err = legacy(
        capsys,
        "push-cli-dockers",
        "--source",
        str(tree),
        "--registry",
        "127.0.0.1:1",
        "--version",
        "v1;rm -rf",
    )
    assert code == 2 and "'v1;rm -rf' is not a valid image tag" in err


def _image_config(reg: RegistryResource, name: str, tag: str) -> dict:
    import requests

    from deploy_assets.resources.registry import MANIFEST_TYPES

    base = f"http://{reg.host}/v2/{name}"
    manifest = requests.get(
        f"{base}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}, timeout=10
    ).json()
    return requests.get(f"{base}/blobs/{manifest['config']['digest']}", timeout=10).json()


@pytest.mark.parametrize(
    "target, kinds", [("build-pipeline-ms", ["ms"]), ("build-pipeline-lambdas", ["lambdas"])]
)
def test_the_makefile_targets_build_only_their_kind(tree, target, kinds):
    """The Makefile itself, not only the CLI: it once passed --source twice and built every kind."""
    repo_root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off"}
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(repo_root), target, f"SOURCE={tree}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (tree / "bin_arm64").iterdir()) == kinds
