"""The dev flow end to end on real components: Go, Docker, registry, S3 API, git."""

import hashlib
import json

import yaml

from deploy_assets.resources.git import run_git

MS = ["ms_chat", "ms_core", "ms_payments"]
TAG = "v0.1.0-alpha.1"
PARTITION = f"dev|{TAG}"


def test_alpha_tag_becomes_a_dev_release(harness, tmp_path):
    outcome = harness.release(TAG)
    assert outcome.success, outcome.error
    commit = harness.monorepo.head()

    source = harness.metadata("source", PARTITION)
    assert source["commit"] == commit and source["go_mod_go"] == "1.24"
    assert sorted(source["services"]) == sorted(
        MS + ["lambda_auth_handler", "lambda_webhook_handler", "cli_core"]
    )

    for name in MS:
        binary = harness.metadata(f"binary/{name}", PARTITION)
        built = harness.settings.work_dir / "dev" / TAG / "out" / "bin_arm64" / "ms" / name
        assert hashlib.sha256(built.read_bytes()).hexdigest() == binary["sha256_arm64"]
        assert built.read_bytes()[:4] == b"\x7fELF" and built.read_bytes()[18] == 0xB7  # EM_AARCH64
        assert binary["toolchain"].startswith("go1.24")

        image = harness.metadata(f"image/{name}", PARTITION)
        assert image["ref"] == f"{harness.settings.registry}/{name}:{TAG}"
        assert harness.registry.manifest_digest(name, TAG) == image["digest"]
        assert harness.registry.manifest_platform(name, TAG) == "linux/arm64"

        s3 = harness.metadata(f"s3/{name}", PARTITION)
        assert s3["s3_key_arm64"] == f"binaries/{TAG}/{name}"
        assert harness.s3.download_sha256(s3["s3_key_arm64"])[0] == binary["sha256_arm64"]

    # dev builds microservices only
    assert (
        harness.instance.fetch_materializations(
            __import__("dagster").AssetKey(["binary", "cli_core"]), limit=1
        ).records
        == []
    )

    routes = json.loads(harness.s3.get_bytes(f"binaries/{TAG}/routes.json"))
    assert {"service": "ms_payments", "method": "GET", "path": "/payments/{id}"} in routes
    assert {r["service"] for r in routes} == set(MS)

    log = harness.gitops_log("gitops-development")
    assert len(log) == 2 and log[0].split(" ", 1)[1] == f"deploy(dev): {' '.join(MS)} -> {TAG}"
    bump = harness.metadata("gitops_bump", PARTITION)
    assert bump["gitops_commit"] == log[0].split()[0]
    clone = tmp_path / "check"
    run_git(
        ["clone", "--quiet", str(harness.settings.git_root) + "/gitops-development.git", str(clone)]
    )
    kustomization = yaml.safe_load((clone / "apps/ms_core/kustomization.yaml").read_text())
    assert kustomization["images"] == [
        {"name": "ms_core", "newName": f"{harness.settings.registry}/ms_core", "newTag": TAG}
    ]
    assert json.loads((clone / "apps/ms_core/routes.json").read_text())[0]["method"] in {
        "GET",
        "POST",
        "PUT",
    }

    # Re-running the same partition changes nothing outside Dagster's records.
    again = harness.release(TAG)
    assert again.success, again.error
    assert harness.gitops_log("gitops-development") == log
    for name in MS:
        assert harness.metadata(f"image/{name}", PARTITION)[
            "digest"
        ] == harness.registry.manifest_digest(name, TAG)
        assert harness.metadata(f"image/{name}", PARTITION)["action"] == "already pushed"
        assert harness.metadata(f"s3/{name}", PARTITION)["action_arm64"] == "already uploaded"


def test_one_changed_service_is_the_only_one_rebuilt(harness):
    assert harness.release("v0.2.0-alpha.1").success
    first = {n: harness.metadata(f"binary/{n}", "dev|v0.2.0-alpha.1") for n in MS}
    harness.monorepo.write(
        "cmd/ms/ms_chat/extra.go", 'package main\n\nconst motd = "hello"\n\nvar _ = motd\n'
    )
    harness.monorepo.commit("ms_chat: add a constant")
    outcome = harness.release("v0.2.0-alpha.2")
    assert outcome.success, outcome.error
    second = {n: harness.metadata(f"binary/{n}", "dev|v0.2.0-alpha.2") for n in MS}
    assert second["ms_chat"]["content_key_arm64"] != first["ms_chat"]["content_key_arm64"]
    assert second["ms_chat"]["reused_from"] == ""
    for name in ("ms_core", "ms_payments"):
        assert second[name]["sha256_arm64"] == first[name]["sha256_arm64"]
        assert second[name]["reused_from"] == "dev|v0.2.0-alpha.1"
        image = harness.metadata(f"image/{name}", "dev|v0.2.0-alpha.2")
        assert image["digest"] == harness.metadata(f"image/{name}", "dev|v0.2.0-alpha.1")["digest"]
        assert image["action"].startswith("retagged from")
