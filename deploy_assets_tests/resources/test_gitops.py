"""GitOps git mode against real bare repos: each layout, no-op bumps, push races, escapes."""

import json
from pathlib import Path

import pytest
import yaml

from deploy_assets.config import ConfigError, GitOpsLayout, load_pipeline_config
from deploy_assets.resources.git import run_git
from deploy_assets.resources.gitops import (
    GitOpsError,
    GitOpsResource,
    bump_edit,
    read_version,
)

REPO = "gitops-staging"
REGISTRY = "registry.example:5000"
IMAGES = {"ms_core": f"{REGISTRY}/ms_core", "ms_chat": f"{REGISTRY}/ms_chat"}


@pytest.fixture
def gitops(git_root) -> GitOpsResource:
    return GitOpsResource(root=str(git_root))


def clone(git_root: Path, dest: Path, repo: str = REPO) -> Path:
    run_git(["clone", "--quiet", str(git_root / f"{repo}.git"), str(dest)])
    return dest


def commit_all(work: Path, message: str, push: bool = True) -> str:
    run_git(["add", "-A"], cwd=work)
    run_git(["commit", "--quiet", "-m", message], cwd=work)
    if push:
        run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=work)
    return run_git(["rev-parse", "HEAD"], cwd=work).decode().strip()


def log(git_root: Path, repo: str = REPO) -> list[str]:
    """Subjects of the repo's main branch, newest first."""
    return (
        run_git(["log", "--format=%s", "main"], cwd=git_root / f"{repo}.git").decode().splitlines()
    )


def show(git_root: Path, path: str, repo: str = REPO) -> str:
    return run_git(["show", f"main:{path}"], cwd=git_root / f"{repo}.git").decode()


def test_kustomize_layout_sets_new_tag_and_routes(gitops, git_root):
    layout = GitOpsLayout()  # kustomize, apps/{project}/kustomization.yaml
    routes = {"ms_core": [{"method": "GET", "path": "/core/health"}]}

    result = gitops.commit_and_push(
        REPO, bump_edit(layout, "staging", IMAGES, "v1.2.0-rc.1", routes), "bump 1"
    )

    assert result.changed and result.attempts == 1
    assert log(git_root)[0] == "bump 1"
    doc = yaml.safe_load(show(git_root, "apps/ms_core/kustomization.yaml"))
    assert doc["kind"] == "Kustomization"
    assert doc["images"] == [
        {"name": "ms_core", "newName": f"{REGISTRY}/ms_core", "newTag": "v1.2.0-rc.1"}
    ]
    assert json.loads(show(git_root, "apps/ms_core/routes.json")) == routes["ms_core"]
    assert json.loads(show(git_root, "apps/ms_chat/routes.json")) == []
    assert (
        read_version(
            layout, "staging", "ms_chat", show(git_root, "apps/ms_chat/kustomization.yaml")
        )
        == "v1.2.0-rc.1"
    )


def test_kustomize_layout_keeps_other_entries_of_an_existing_file(gitops, git_root, tmp_path):
    work = clone(git_root, tmp_path / "seed")
    (work / "apps/ms_core").mkdir(parents=True)
    (work / "apps/ms_core/kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": ["deployment.yaml"],
                "images": [
                    {"name": "redis", "newTag": "7"},
                    {"name": "ms_core", "newTag": "v0.9.0"},
                ],
            }
        )
    )
    commit_all(work, "seed")

    gitops.commit_and_push(
        REPO,
        bump_edit(GitOpsLayout(), "staging", {"ms_core": IMAGES["ms_core"]}, "v1.0.0", None),
        "bump",
    )

    doc = yaml.safe_load(show(git_root, "apps/ms_core/kustomization.yaml"))
    assert doc["resources"] == ["deployment.yaml"]
    assert doc["images"] == [
        {"name": "redis", "newTag": "7"},
        {"name": "ms_core", "newTag": "v1.0.0", "newName": f"{REGISTRY}/ms_core"},
    ]


def test_image_ref_layout_updates_the_reference_in_place(gitops, git_root, tmp_path):
    layout = GitOpsLayout(layout="image_ref", path_template="apps/{project}/envs/{env}/version.yml")
    work = clone(git_root, tmp_path / "seed")
    manifest = work / "apps/ms_core/envs/staging/version.yml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        "replicas: 2\n# pinned by deploy-assets\nimage: registry.example:5000/ms_core:old\n"
        'sidecar:\n  image: "registry.example:5000/ms_core_proxy:3.1"\n'
    )
    commit_all(work, "seed")

    result = gitops.commit_and_push(
        REPO,
        bump_edit(layout, "staging", {"ms_core": IMAGES["ms_core"]}, "v1.2.0-rc.2", None),
        "bump",
    )

    assert result.changed
    assert show(git_root, "apps/ms_core/envs/staging/version.yml") == (
        "replicas: 2\n# pinned by deploy-assets\nimage: registry.example:5000/ms_core:v1.2.0-rc.2\n"
        'sidecar:\n  image: "registry.example:5000/ms_core_proxy:3.1"\n'
    )
    assert (
        read_version(
            layout, "staging", "ms_core", show(git_root, "apps/ms_core/envs/staging/version.yml")
        )
        == "v1.2.0-rc.2"
    )


def test_image_ref_layout_without_the_reference_names_the_file(gitops, git_root, tmp_path):
    layout = GitOpsLayout(layout="image_ref", path_template="apps/{project}/envs/{env}/version.yml")
    work = clone(git_root, tmp_path / "seed")
    manifest = work / "apps/ms_core/envs/staging/version.yml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("image: registry.example:5000/ms_other:1.0\n")
    commit_all(work, "seed")
    before = log(git_root)

    with pytest.raises(GitOpsError) as no_ref:
        gitops.commit_and_push(
            REPO, bump_edit(layout, "staging", {"ms_core": IMAGES["ms_core"]}, "v1.0.0", None), "x"
        )
    with pytest.raises(GitOpsError) as no_file:
        gitops.commit_and_push(
            REPO, bump_edit(layout, "staging", {"ms_chat": IMAGES["ms_chat"]}, "v1.0.0", None), "x"
        )

    assert str(no_ref.value) == (
        "apps/ms_core/envs/staging/version.yml: no 'image: .../ms_core:TAG' reference to update"
    )
    assert str(no_file.value).startswith("apps/ms_chat/envs/staging/version.yml: file not found")
    assert log(git_root) == before


def test_version_file_layout_writes_the_version(gitops, git_root):
    layout = GitOpsLayout(layout="version_file", path_template="versions/{env}/{project}")

    gitops.commit_and_push(REPO, bump_edit(layout, "prod", IMAGES, "v2.0.0", None), "bump")

    assert show(git_root, "versions/prod/ms_core") == "v2.0.0\n"
    assert show(git_root, "versions/prod/ms_chat") == "v2.0.0\n"


def test_nothing_to_change_means_no_commit(gitops, git_root):
    edit = bump_edit(GitOpsLayout(), "staging", IMAGES, "v1.0.0", {"ms_core": []})
    first = gitops.commit_and_push(REPO, edit, "bump")
    second = gitops.commit_and_push(REPO, edit, "bump again")

    assert first.changed and not second.changed
    assert second.commit == first.commit == gitops.head(REPO)
    assert log(git_root) == ["bump", f"Initialise {REPO}"]


def test_push_rejected_by_a_concurrent_push_is_reapplied_on_the_new_head(
    gitops, git_root, tmp_path
):
    other = clone(git_root, tmp_path / "other")
    bump = bump_edit(GitOpsLayout(), "staging", IMAGES, "v1.0.0", None)
    calls = []

    def edit_while_someone_pushes(repo: Path) -> None:
        calls.append(repo)
        if len(calls) == 1:  # someone else pushes after our clone, before our push
            (other / "NOTES.md").write_text("maintenance window on Friday\n")
            commit_all(other, "someone else's commit")
        bump(repo)

    messages = []
    result = gitops.commit_and_push(REPO, edit_while_someone_pushes, "bump", log=messages.append)

    assert result.changed and result.attempts == 2 and len(calls) == 2
    assert log(git_root) == ["bump", "someone else's commit", f"Initialise {REPO}"]
    assert show(git_root, "NOTES.md") == "maintenance window on Friday\n"
    assert (
        yaml.safe_load(show(git_root, "apps/ms_core/kustomization.yaml"))["images"][0]["newTag"]
        == "v1.0.0"
    )
    assert result.commit == gitops.head(REPO)
    assert any("push rejected" in m for m in messages)


def test_a_branch_that_keeps_moving_gives_up_with_a_clear_error(git_root, tmp_path):
    gitops = GitOpsResource(root=str(git_root), max_push_attempts=3)
    other = clone(git_root, tmp_path / "other")
    bump = bump_edit(GitOpsLayout(), "staging", IMAGES, "v1.0.0", None)

    def edit_always_racing(repo: Path) -> None:
        (other / "counter").write_text(str(len(log(git_root))))
        commit_all(other, "racer")
        bump(repo)

    with pytest.raises(GitOpsError, match=r"still rejected after 3 attempts"):
        gitops.commit_and_push(REPO, edit_always_racing, "bump")
    assert log(git_root) == ["racer"] * 3 + [f"Initialise {REPO}"]


def test_a_refused_push_that_is_not_a_race_fails_at_once(gitops, git_root):
    hook = git_root / f"{REPO}.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: open a pull request' >&2\nexit 1\n")
    hook.chmod(0o755)
    calls = []

    def edit(repo: Path) -> None:
        calls.append(repo)
        bump_edit(GitOpsLayout(), "staging", IMAGES, "v1.0.0", None)(repo)

    with pytest.raises(GitOpsError) as err:
        gitops.commit_and_push(REPO, edit, "bump")

    assert (
        "refused" in str(err.value)
        and "main is protected" in str(err.value)
        and REPO in str(err.value)
    )
    assert len(calls) == 1
    assert log(git_root) == [f"Initialise {REPO}"]


def test_path_templates_that_escape_the_repo_are_refused(gitops, git_root, tmp_path):
    config = yaml.safe_load((Path(__file__).parents[2] / "misc/configs/pipeline.yaml").read_text())
    config["envs"]["staging"]["gitops"] = {
        "layout": "version_file",
        "path_template": "../{project}/VERSION",
    }
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(yaml.safe_dump(config))
    with pytest.raises(
        ConfigError, match=r"envs\.staging\.gitops\.path_template.*escapes the GitOps repo"
    ):
        load_pipeline_config(bad)

    # An unknown field is refused when the config loads, not after the pushes.
    with pytest.raises(
        ValueError, match=r"uses \{service\}; only \{project\}, \{env\}, \{version\} exist"
    ):
        GitOpsLayout(path_template="apps/{service}/VERSION")

    # A symlink committed into the repo must not lead the edit outside of the clone.
    outside = tmp_path / "outside"
    outside.mkdir()
    work = clone(git_root, tmp_path / "seed")
    (work / "apps").symlink_to(outside)
    commit_all(work, "apps is a symlink")
    with pytest.raises(
        GitOpsError, match=r"apps/ms_core/VERSION: apps is a symlink \(to .*outside\)"
    ):
        gitops.commit_and_push(
            REPO,
            bump_edit(
                GitOpsLayout(layout="version_file", path_template="apps/{project}/VERSION"),
                "staging",
                {"ms_core": IMAGES["ms_core"]},
                "v1.0.0",
                None,
            ),
            "bump",
        )
    assert list(outside.iterdir()) == []


def test_a_kustomization_symlinked_out_of_the_repo_is_never_read_nor_written(
    gitops, git_root, tmp_path
):
    """A hostile env repo whose apps/ms_core/kustomization.yaml links to a file of this machine:
    the read-back (what checks, status and rollback trust) refuses naming the path instead of
    reporting that file's content as deployed, and a bump refuses without writing through it."""
    secret = tmp_path / "outside" / "kustomization.yaml"
    secret.parent.mkdir()
    original = "images:\n- name: ms_core\n  newTag: v6.6.6\n"
    secret.write_text(original)
    work = clone(git_root, tmp_path / "seed")
    (work / "apps" / "ms_core").mkdir(parents=True)
    (work / "apps" / "ms_core" / "kustomization.yaml").symlink_to(secret)
    head = commit_all(work, "ms_core's kustomization is a symlink out of the repo")
    layout = GitOpsLayout(layout="kustomize", path_template="apps/{project}/kustomization.yaml")

    with pytest.raises(
        GitOpsError,
        match=r"gitops-staging\.git: apps/ms_core/kustomization\.yaml: "
        r"apps/ms_core/kustomization\.yaml is a symlink \(to .*outside",
    ):
        gitops.read_files(REPO, ["apps/ms_core/kustomization.yaml"])

    from deploy_assets.checks.gitops import deployed_versions

    config = load_pipeline_config()
    assert config.envs["staging"].gitops == layout  # the default layout
    with pytest.raises(GitOpsError, match=r"apps/ms_core/kustomization\.yaml is a symlink"):
        deployed_versions(gitops, config, "staging", ["ms_core"])

    with pytest.raises(GitOpsError, match=r"apps/ms_core/kustomization\.yaml is a symlink"):
        gitops.commit_and_push(
            REPO,
            bump_edit(layout, "staging", {"ms_core": IMAGES["ms_core"]}, "v1.0.0", None),
            "bump",
        )
    assert secret.read_text() == original
    assert run_git(["rev-parse", "main"], cwd=git_root / f"{REPO}.git").decode().strip() == head


def test_gitops_and_terraform_writes_share_one_pool_of_one_slot(tmp_path, monkeypatch):
    """Both writers run in pool "gitops"; the local instance gives each pool one slot, so two
    releases never push to the env repos at the same moment (the in-process executor claims
    pool slots too, so `deploy-assets release` is covered, not only daemon-launched runs)."""
    import shutil

    import dagster as dg

    from deploy_assets.assets.api_gateway import API_GATEWAY_KEY
    from deploy_assets.config import REPO_ROOT, Settings
    from deploy_assets.definitions import build_definitions
    from deploy_assets.plan import Service
    from deploy_assets.records.history import GITOPS_KEY

    defs = build_definitions(
        Settings.from_env({"DEPLOY_ASSETS_LOCAL_DIR": str(tmp_path)}),
        load_pipeline_config(),
        [Service("ms_core", "ms", "cmd/ms/ms_core")],
    )
    for key in (GITOPS_KEY, API_GATEWAY_KEY):
        assert defs.resolve_assets_def(key).node_def.pool == "gitops", key.to_user_string()

    shutil.copyfile(REPO_ROOT / "misc/configs/dagster.local.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.event_log_storage.supports_global_concurrency_limits
