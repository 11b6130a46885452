"""Several GitOps targets per env: prod-eu pins a version file, prod-us an image reference in
another registry than the one pushed to, both naming the apps without our ms_ prefix; dev and
staging keep per-app kustomizations (the older one-repo form). alpha -> rc -> final end to end:
one prod commit sets both regions, the read-back check and status read both."""

import time

import pytest

from deploy_assets.checks.gitops import versions_by_target
from deploy_assets.records.lineage import release_lineage
from deploy_assets.records.status import status
from deploy_assets.resources.gitops import GitOpsResource
from deploy_assets_tests.gitops_targets_examples import (
    PROD_TARGETS,
    diff_lines,
    head,
    seed,
    show,
    with_envs,
)

pytestmark = pytest.mark.slow

TAGS = {"dev": "v4.0.0-alpha.1", "staging": "v4.0.0-rc.1", "prod": "v4.0.0"}
APPS = {"ms_chat": "chat", "ms_core": "core", "ms_payments": "payments"}
MIRROR = "registry.example.com/team"  # what prod-us's manifests pull; the release pushes elsewhere


def eu_file(version: str) -> str:
    return f"# prod-eu: pinned by the release pipeline\n{version}\n"


def us_file(app: str, version: str) -> str:
    return f"replicas: 3\nimage: {MIRROR}/{app}:{version}   # through the mirror\nsidecar: envoy:1.29\n"


def region_files(version: str) -> dict[str, str]:
    files = {f"apps/{app}/envs/prod-eu/version.yml": eu_file(version) for app in APPS.values()}
    files.update(
        {f"apps/{app}/envs/prod-us/version.yml": us_file(app, version) for app in APPS.values()}
    )
    return files


def test_prod_eu_and_prod_us_move_together_in_one_commit_alpha_rc_final(harness, tmp_path):
    harness.reload(with_envs(tmp_path, PROD_TARGETS))
    root = harness.settings.git_root
    seeded = seed(
        root, "gitops-production", tmp_path / "seed", region_files("v0.0.1"), "platform: regions"
    )

    walls = {}
    for env, tag in TAGS.items():
        started = time.monotonic()
        outcome = harness.release(tag)
        walls[env] = time.monotonic() - started
        assert outcome.success, (tag, outcome.error)
    print(
        "\nprod-eu + prod-us targets: " + ", ".join(f"{TAGS[e]} {s:.1f}s" for e, s in walls.items())
    )

    # dev and staging: the per-app kustomize files, created under our names.
    for env, repo in (("dev", "gitops-development"), ("staging", "gitops-staging")):
        for name in APPS:
            assert f"newTag: {TAGS[env]}" in show(root, repo, f"apps/{name}/kustomization.yaml"), (
                env,
                name,
            )
    # prod: one commit for both targets of the repo; its diff is the version lines, the mirror's
    # image name kept, the sidecar (not ours) untouched.
    prod = TAGS["prod"]
    log = harness.gitops_log("gitops-production")
    assert len(log) == 3 and log[0].endswith(f" deploy(prod): {' '.join(APPS)} -> {prod}"), log
    for path, text in region_files(prod).items():
        assert show(root, "gitops-production", path) == text, path
    assert sorted(diff_lines(root, "gitops-production", seeded)) == sorted(
        [
            f"-{line}"
            for app in APPS.values()
            for line in ("v0.0.1", f"image: {MIRROR}/{app}:v0.0.1   # through the mirror")
        ]
        + [
            f"+{line}"
            for app in APPS.values()
            for line in (prod, f"image: {MIRROR}/{app}:{prod}   # through the mirror")
        ]
    )
    commit = head(root, "gitops-production")
    bump = harness.metadata("gitops_bump", f"prod|{prod}")
    assert bump["targets"] == [
        {
            "name": region,
            "repo": "gitops-production",
            "layout": layout,
            "commit": commit,
            "files": sorted(f"apps/{app}/envs/{region}/version.yml" for app in APPS.values()),
        }
        for region, layout in (("prod-eu", "version_file"), ("prod-us", "image_ref"))
    ]
    # The mirror's name is not where we pushed: the registry holds prod under our names, with
    # the rc's digests (build once, promote).
    assert not harness.settings.registry.startswith("registry.example.com")
    for name in APPS:
        rc = harness.registry.manifest_digest(name, TAGS["staging"])
        assert rc and harness.registry.manifest_digest(name, prod) == rc, name

    gitops = GitOpsResource(root=root)
    assert versions_by_target(gitops, harness.config, "prod", list(APPS)) == {
        "prod-eu": dict.fromkeys(APPS, prod),
        "prod-us": dict.fromkeys(APPS, prod),
    }
    shown = status(harness.instance, gitops, harness.config)["prod"]
    assert shown["version"] == prod and shown["targets"]["prod-us"] == dict.fromkeys(APPS, prod)
    assert {p: row["via"] for p, row in shown["projects"].items()} == dict.fromkeys(APPS, "release")

    # Lineage names what each target wrote, in the one commit.
    lineage = release_lineage(harness.instance, harness.registry, harness.s3, prod)
    assert [(t["name"], t["commit"]) for t in lineage["gitops"]["targets"]] == [
        ("prod-eu", commit),
        ("prod-us", commit),
    ]
    # A region moved back by hand shows as a disagreement, naming the targets, never as the tag.
    seed(
        root,
        "gitops-production",
        tmp_path / "by-hand",
        {"apps/core/envs/prod-us/version.yml": us_file("core", "v0.0.1")},
    )
    again = status(harness.instance, gitops, harness.config)["prod"]
    assert again["projects"]["ms_core"]["version"] == f"prod-eu={prod} / prod-us=v0.0.1"
    assert again["targets"]["prod-us"]["ms_core"] == "v0.0.1" and again["version"] == prod
