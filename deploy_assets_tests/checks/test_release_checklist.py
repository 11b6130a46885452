"""The deployment checklist runs inside a dev release on real components, the release record is
checkable with `sha256sum -c`, and artifacts broken after the release fail their checks when
the checklist is re-run."""

import hashlib
import json
import subprocess

from deploy_assets.checks.rerun import rerun_checks
from deploy_assets.records.release_rows import release_rows
from deploy_assets_tests.checks.evaluations import check_evaluations

TAG = "v0.3.0-alpha.1"
PARTITION = f"dev|{TAG}"
MS = ["ms_chat", "ms_core", "ms_payments", "ms_quiet"]
QUIET_MAIN = (
    'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("worker without routes") }\n'
)


def test_dev_release_runs_the_checklist_and_uploads_a_verifiable_record(harness, tmp_path):
    harness.monorepo.write("cmd/ms/ms_quiet/main.go", QUIET_MAIN)
    harness.monorepo.commit("ms_quiet: a worker without @Router annotations")
    outcome = harness.release(TAG)
    assert outcome.success, outcome.error

    results = check_evaluations(harness.instance, outcome.run_id)
    expected = (
        {f"binary/{n}:built_with_configured_go" for n in MS}
        | {f"image/{n}:served_with_recorded_digest" for n in MS}
        | {f"s3/{n}:objects_match_build" for n in MS}
        | {
            "s3/routes_json:objects_match_record",
            "s3/manifest_json:objects_match_record",
            "routes:every_ms_has_routes",
            "gitops_bump:repo_at_version",
        }
    )
    assert set(results) == expected  # no promotion checks in a dev release
    failed = {k: r.description for k, r in results.items() if not r.passed}
    assert failed == {"routes:every_ms_has_routes": f"no @Router route in ms_quiet ({PARTITION})"}
    assert results["routes:every_ms_has_routes"].severity.value == "WARN"
    for name in MS:
        assert (
            results[f"binary/{name}:built_with_configured_go"]
            .metadata["built_with_arm64"]
            .value.startswith("go1.24.")
        )
        digest = harness.registry.manifest_digest(name, TAG)
        assert (
            results[f"image/{name}:served_with_recorded_digest"].metadata["registry_digest"].value
            == digest
        )
        assert (
            results[f"image/{name}:served_with_recorded_digest"]
            .metadata["registry"]
            .value.endswith(f"/v2/{name}/manifests/{digest}")
        )
    assert results["gitops_bump:repo_at_version"].metadata["deployed"].value == {n: TAG for n in MS}
    assert {r.service: r.checks for r in release_rows(harness.instance, PARTITION, MS)} == {
        n: "3/3" for n in MS
    }

    manifest = json.loads(harness.s3.get_bytes(f"binaries/{TAG}/manifest.json"))
    assert (manifest["tag"], manifest["env"], manifest["commit"]) == (
        "v0.3.0-alpha.1",
        "dev",
        harness.monorepo.head(),
    )
    by_kind = {(a["artifact"], a["service"]): a for a in manifest["artifacts"]}
    for name in MS:
        binary = harness.metadata(f"binary/{name}", PARTITION)
        obj, image = by_kind[("s3_object", name)], by_kind[("image", name)]
        assert (obj["path"], obj["sha256"], obj["size"]) == (
            f"binaries/{TAG}/{name}",
            binary["sha256_arm64"],
            binary["size_arm64"],
        )
        assert (obj["kind"], obj["platform"], obj["toolchain"]) == (
            "ms",
            "linux/arm64",
            binary["toolchain"],
        )
        assert (
            image["image"]
            == f"{harness.settings.registry}/{name}:{TAG}@{harness.registry.manifest_digest(name, TAG)}"
        )
        assert image["commit"] == obj["commit"] == harness.monorepo.head()
    assert by_kind[("routes", "")]["path"] == f"binaries/{TAG}/routes.json"

    download = tmp_path / "download"
    download.mkdir()
    for name in ["checksums.txt"] + MS:
        (download / name).write_bytes(harness.s3.get_bytes(f"binaries/{TAG}/{name}"))
    verified = subprocess.run(
        ["sha256sum", "-c", "checksums.txt"], cwd=download, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert sorted(verified.stdout.splitlines()) == [f"{n}: OK" for n in MS]

    # Break two artifacts after the release: the re-run checklist names exactly those.
    core_digest = harness.registry.manifest_digest("ms_core", TAG)
    harness.registry.delete_tag_manifest("ms_core", core_digest)
    harness.s3.put_bytes(f"binaries/{TAG}/ms_chat", b"not the binary", "application/octet-stream")
    again = rerun_checks(harness.defs, harness.instance, TAG)
    assert not again.success  # blocking checks failed
    rerun = check_evaluations(harness.instance, again.run_id)
    assert set(rerun) == expected
    broken = {
        k: r.description for k, r in rerun.items() if not r.passed and r.severity.value == "ERROR"
    }
    chat_sha = harness.metadata("binary/ms_chat", PARTITION)["sha256_arm64"]
    garbage_sha = hashlib.sha256(b"not the binary").hexdigest()
    assert broken == {
        "image/ms_core:served_with_recorded_digest": f"{harness.settings.registry}/ms_core:{TAG} is not in the registry (recorded digest {core_digest})",
        "s3/ms_chat:objects_match_build": f"s3://{harness.settings.bucket}/binaries/{TAG}/ms_chat has sha256 "
        f"{garbage_sha}, not the expected {chat_sha}",
    }
    assert harness.instance.get_run_by_id(again.run_id).tags["deploy_assets/operation"] == "recheck"
    assert {r.service: r.checks for r in release_rows(harness.instance, PARTITION, MS)} == {
        "ms_chat": "2/3",
        "ms_core": "2/3",
        "ms_payments": "3/3",
        "ms_quiet": "3/3",
    }
