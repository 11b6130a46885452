"""One kustomization per env listing several images, ours and another team's, released
alpha -> rc -> final; and status/rollback on such a shared repo with another source's bumps in
between. Real git repos, real releases: what is asserted is what the env repo's reviewers see."""

import time

import pytest

from deploy_assets.checks.gitops import deployed_versions
from deploy_assets.records.rollback import plan_rollback, run_rollback
from deploy_assets.records.status import status
from deploy_assets.resources.gitops import GitOpsResource
from deploy_assets_tests.gitops_targets_examples import (
    ENV_KUSTOMIZATION,
    diff_lines,
    head,
    seed,
    show,
    with_envs,
)

pytestmark = pytest.mark.slow

MS = ["ms_chat", "ms_core", "ms_payments"]
TAGS = {"dev": "v3.0.0-alpha.1", "staging": "v3.0.0-rc.1", "prod": "v3.0.0"}
REPOS = {"dev": "gitops-development", "staging": "gitops-staging", "prod": "gitops-production"}
FILE = "env/{env}/kustomization.yaml"
# The platform team's file: comments, quoting styles, a flow entry, a near name, another team's app.
SHARED = """\
# {env}: every app of the env, one file (kept by the platform team)
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base   # the manifests
images:
  # ours, pulled through the cluster's mirror
  - name: registry.example.com/team/ms_core
    newTag: "v0.0.1"   # bumped by deploy-assets
  - {{name: 'registry.example.com/team/ms_chat', newTag: v0.0.1}}
  - name: "registry.example.com/team/ms_payments"
    newTag: 'v0.0.1'
  - name: registry.example.com/team/ms_core_proxy
    newTag: '3.1'

  # another team's app, not released from this monorepo
  - name: "registry.example.com/other/billing"   # theirs
    newTag: '4.2'
"""


def at(env: str, version: str, billing: str = "4.2") -> str:
    """SHARED with our three entries at version, each in its own quoting style."""
    return (
        SHARED.format(env=env)
        .replace('"v0.0.1"', f'"{version}"')
        .replace("newTag: v0.0.1}", f"newTag: {version}}}")
        .replace("'v0.0.1'", f"'{version}'")
        .replace("newTag: '4.2'", f"newTag: '{billing}'")
    )


def version_lines(old: str, new: str) -> list[str]:
    """The diff of a bump from old to new: two hunks (ms_core's and ms_chat's lines are adjacent)."""
    core, chat = (
        '    newTag: "{}"   # bumped by deploy-assets',
        "  - {{name: 'registry.example.com/team/ms_chat', newTag: {}}}",
    )
    return [
        "-" + core.format(old),
        "-" + chat.format(old),
        "+" + core.format(new),
        "+" + chat.format(new),
        f"-    newTag: '{old}'",
        f"+    newTag: '{new}'",
    ]


def seed_env_files(harness, tmp_path, envs) -> dict[str, str]:
    return {
        env: seed(
            harness.settings.git_root,
            REPOS[env],
            tmp_path / f"seed-{env}",
            {FILE.format(env=env): SHARED.format(env=env)},
            "platform: the env's images",
        )
        for env in envs
    }


def test_one_kustomization_per_env_gets_only_our_version_lines_alpha_rc_final(harness, tmp_path):
    harness.reload(with_envs(tmp_path, ENV_KUSTOMIZATION))
    seeded = seed_env_files(harness, tmp_path, TAGS)

    walls = {}
    for env, tag in TAGS.items():
        started = time.monotonic()
        outcome = harness.release(tag)
        walls[env] = time.monotonic() - started
        assert outcome.success, (tag, outcome.error)
    print(
        "\none kustomization per env: " + ", ".join(f"{TAGS[e]} {s:.1f}s" for e, s in walls.items())
    )

    root = harness.settings.git_root
    for env, tag in TAGS.items():
        repo, path = REPOS[env], FILE.format(env=env)
        # One commit per release; its diff is our three version lines, nothing else (the near
        # name ms_core_proxy and the other team's billing stay byte for byte).
        log = harness.gitops_log(repo)
        assert len(log) == 3 and log[0].endswith(f" deploy({env}): {' '.join(MS)} -> {tag}"), log
        assert diff_lines(root, repo, seeded[env]) == version_lines("v0.0.1", tag), env
        assert show(root, repo, path) == at(env, tag)
        bump = harness.metadata("gitops_bump", f"{env}|{tag}")
        assert bump["targets"] == [
            {
                "name": env,
                "repo": repo,
                "layout": "kustomize",
                "files": [path],
                "commit": head(root, repo),
            }
        ]
        assert bump["gitops_commit"] == head(root, repo)
    # Prod deployed the rc's bytes: the images it names carry the rc's digests.
    for name in MS:
        rc = harness.registry.manifest_digest(name, TAGS["staging"])
        assert rc and harness.registry.manifest_digest(name, TAGS["prod"]) == rc, name


def test_status_and_rollback_leave_another_sources_bumps_alone(harness, tmp_path):
    """Between our two dev releases another code location bumps its own app in the shared file
    and commits to another app's folder, with trailers like ours. Status reports ours only, the
    default rollback target is our previous version (not theirs), and the rollback moves our
    entries alone: their commits and their entry stay."""
    harness.reload(with_envs(tmp_path, ENV_KUSTOMIZATION))
    seed_env_files(harness, tmp_path, ["dev"])
    root, repo, path = harness.settings.git_root, REPOS["dev"], FILE.format(env="dev")
    first, second = "v3.1.0-alpha.1", "v3.1.0-alpha.2"
    assert harness.release(first).success
    assert harness.release(second).success
    theirs = at("dev", second, billing="4.3")
    foreign = seed(
        root,
        repo,
        tmp_path / "other-source",
        {path: theirs},
        "deploy(dev): billing -> 4.3",
        "Release-Tag: 4.3\nSource-Commit: " + "c" * 40 + "\nDagster-Run: their-run",
    )
    foreign_app = seed(
        root,
        repo,
        tmp_path / "other-app",
        {"apps/billing/config.yaml": "replicas: 3\n"},
        "deploy(dev): billing -> 4.3.1",
        "Release-Tag: 4.3.1\nDagster-Run: their-run-2",
    )

    gitops = GitOpsResource(root=root)
    dev = status(harness.instance, gitops, harness.config)["dev"]
    assert {p: row["version"] for p, row in dev["projects"].items()} == dict.fromkeys(MS, second)
    assert dev["version"] == second and [d["tag"] for d in dev["history"]] == [first, second]
    assert plan_rollback(harness.instance, gitops, harness.config, "dev", None).to_version == first

    rolled = run_rollback(harness.defs, harness.instance, "dev", None, "alice")

    assert rolled.success, rolled.error
    log = harness.gitops_log(repo)
    assert log[0].split(" ", 1)[1] == f"rollback(dev): {' '.join(MS)} -> {first} (from {second})"
    assert [line.split()[0] for line in log[1:3]] == [foreign_app, foreign]  # still in place
    assert show(root, repo, path) == at(
        "dev", first, billing="4.3"
    )  # their entry kept at their version
    assert diff_lines(root, repo, foreign_app) == version_lines(second, first)
    assert show(root, repo, "apps/billing/config.yaml") == "replicas: 3\n"
    assert deployed_versions(gitops, harness.config, "dev", MS) == dict.fromkeys(MS, first)
    after = status(harness.instance, gitops, harness.config)["dev"]
    assert {p: row["via"] for p, row in after["projects"].items()} == dict.fromkeys(
        MS, f"rollback from {second} by alice"
    )
    # The next default target is not theirs either: nothing earlier of ours to go back to.
    with pytest.raises(
        Exception, match=rf"no earlier version to roll back to \(versions run: {first}\)"
    ):
        plan_rollback(harness.instance, gitops, harness.config, "dev", None)
