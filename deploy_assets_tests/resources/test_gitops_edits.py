"""GitOps edits as a reviewer of the env repo sees them: real bare repos, real pushes, and the
commit's own `git diff`. A bump changes the version lines and nothing else; entries are found by
the image name the manifests use; a file with nothing to update fails the whole bump, unpushed."""

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploy_assets.checks.gitops import deployed_versions
from deploy_assets.config import GitOpsLayout, load_pipeline_config
from deploy_assets.resources.git import run_git
from deploy_assets.resources.gitops import GitOpsError, GitOpsResource, bump_edit, read_version

REPO = "gitops-staging"
PUSHED = "registry.example:5000"  # where the release pushed its images
ENV_FILE = GitOpsLayout(layout="kustomize", path_template="env/{env}/kustomization.yaml")

# One kustomization for the whole env, written by hand: comments, newTag before name, kind after
# images, 4-space sequence indent, quoted tags, an entry per registry the manifests name.
SHARED = """\
# staging: every app of the env, one file
resources:
    - ../../base   # the manifests

images:
    # ours, pulled through the cluster's mirror
    -   newTag: "v0.9.0"   # bumped by deploy-assets
        name: registry.example.com/team/ms_core
    - name: registry.example.com/team/ms_core_proxy
      newTag: '3.1'
    - {name: ms_chat, newName: old-registry:5000/ms_chat, newTag: 'v0.9.0'}

    # another team's app, not released from this monorepo
    - name: redis
      newTag: "7.2"
kind: Kustomization
"""


@pytest.fixture
def gitops(git_root) -> GitOpsResource:
    return GitOpsResource(root=str(git_root))


def seed(git_root: Path, tmp_path: Path, files: dict[str, str]) -> str:
    """Commit files to the env repo's main as someone else would; returns the new head."""
    work = tmp_path / "seed"
    run_git(["clone", "--quiet", str(git_root / f"{REPO}.git"), str(work)])
    for relpath, text in files.items():
        (work / relpath).parent.mkdir(parents=True, exist_ok=True)
        (work / relpath).write_text(text)
    run_git(["add", "-A"], cwd=work)
    run_git(["commit", "--quiet", "-m", "seed"], cwd=work)
    run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=work)
    return head(git_root)


def head(git_root: Path) -> str:
    return run_git(["rev-parse", "main"], cwd=git_root / f"{REPO}.git").decode().strip()


def show(git_root: Path, relpath: str) -> str:
    return run_git(["show", f"main:{relpath}"], cwd=git_root / f"{REPO}.git").decode()


def changed_lines(git_root: Path) -> list[str]:
    """The -/+ lines of the last commit, as a reviewer reads its diff."""
    out = run_git(["diff", "-U0", "main~1", "main"], cwd=git_root / f"{REPO}.git").decode()
    return [
        line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]


def images(*projects: str) -> dict[str, str]:
    return {p: f"{PUSHED}/{p}" for p in projects}


def test_a_bump_of_a_shared_kustomization_changes_only_the_version_lines(
    gitops, git_root, tmp_path
):
    seed(git_root, tmp_path, {"env/staging/kustomization.yaml": SHARED})

    gitops.commit_and_push(
        REPO,
        bump_edit(ENV_FILE, "staging", images("ms_core", "ms_chat"), "v1.2.0-rc.1", None),
        "bump",
    )

    # ms_core is found by the name its manifests use (another registry than the one pushed to) and
    # keeps it; ms_chat's newName is what its deployment pulls, so it moves to where we pushed.
    # Quoting, comments, order and indentation stay; ms_core_proxy and redis are untouched.
    assert changed_lines(git_root) == [
        '-    -   newTag: "v0.9.0"   # bumped by deploy-assets',
        '+    -   newTag: "v1.2.0-rc.1"   # bumped by deploy-assets',
        "-    - {name: ms_chat, newName: old-registry:5000/ms_chat, newTag: 'v0.9.0'}",
        f"+    - {{name: ms_chat, newName: {PUSHED}/ms_chat, newTag: 'v1.2.0-rc.1'}}",
    ]
    text = show(git_root, "env/staging/kustomization.yaml")
    assert text == SHARED.replace('"v0.9.0"', '"v1.2.0-rc.1"').replace(
        "old-registry:5000/ms_chat, newTag: 'v0.9.0'", f"{PUSHED}/ms_chat, newTag: 'v1.2.0-rc.1'"
    )

    # The read-back (checks, status, rollback) reads those same entries from the remote.
    config = load_pipeline_config()
    config = config.model_copy(
        update={
            "envs": {
                **config.envs,
                "staging": config.envs["staging"].model_copy(
                    update={"gitops_repo": REPO, "gitops": ENV_FILE}
                ),
            }
        }
    )
    assert deployed_versions(
        gitops, config, "staging", ["ms_core", "ms_chat", "redis", "ms_core_proxy"]
    ) == {
        "ms_core": "v1.2.0-rc.1",
        "ms_chat": "v1.2.0-rc.1",
        "redis": "7.2",
        "ms_core_proxy": "3.1",
    }

    # Bumping again to the same version finds nothing to change: no second commit.
    again = gitops.commit_and_push(
        REPO,
        bump_edit(ENV_FILE, "staging", images("ms_core", "ms_chat"), "v1.2.0-rc.1", None),
        "bump again",
    )
    assert not again.changed and again.commit == head(git_root)


def test_an_entry_without_a_tag_gets_one_in_its_own_indentation(gitops, git_root, tmp_path):
    seed(
        git_root,
        tmp_path,
        {
            "apps/ms_core/kustomization.yaml": "images:\n  - name: ms_core  # ours\n",
            "apps/ms_chat/kustomization.yaml": "images: [{name: team/ms_chat}]\n",
        },
    )

    gitops.commit_and_push(
        REPO,
        bump_edit(GitOpsLayout(), "staging", images("ms_core", "ms_chat"), "v1.0.0", None),
        "bump",
    )

    # A bare name pulls from no registry: it is pointed at the pushed image, as before.
    assert show(git_root, "apps/ms_core/kustomization.yaml") == (
        f"images:\n  - name: ms_core  # ours\n    newTag: v1.0.0\n    newName: {PUSHED}/ms_core\n"
    )
    assert (
        show(git_root, "apps/ms_chat/kustomization.yaml")
        == "images: [{name: team/ms_chat, newTag: v1.0.0}]\n"
    )


def test_a_crlf_file_keeps_its_line_endings(gitops, git_root, tmp_path):
    seed(
        git_root,
        tmp_path,
        {"apps/ms_core/kustomization.yaml": "images:\r\n- name: ms_core\r\n  newTag: v0.9.0\r\n"},
    )

    gitops.commit_and_push(
        REPO, bump_edit(GitOpsLayout(), "staging", images("ms_core"), "v1.0.0", None), "bump"
    )

    assert show(git_root, "apps/ms_core/kustomization.yaml") == (
        f"images:\r\n- name: ms_core\r\n  newTag: v1.0.0\r\n  newName: {PUSHED}/ms_core\r\n"
    )


def test_a_file_with_no_matching_entry_fails_the_whole_bump_unpushed(gitops, git_root, tmp_path):
    chat = "images:\n- name: registry.example.com/team/ms_chat_v2\n  newTag: v0.9.0\n- name: redis\n  newTag: '7'\n"
    core = "images:\n- name: ms_core\n  newTag: v0.9.0\n"
    before = seed(
        git_root,
        tmp_path,
        {
            "apps/ms_chat/kustomization.yaml": chat,
            "apps/ms_core/kustomization.yaml": core,
            "apps/ms_pay/kustomization.yaml": "resources: [deployment.yaml]\n",
        },
    )

    with pytest.raises(GitOpsError) as err:
        gitops.commit_and_push(
            REPO,
            bump_edit(
                GitOpsLayout(), "staging", images("ms_chat", "ms_core", "ms_pay"), "v1.0.0", None
            ),
            "bump",
        )

    message = str(err.value)
    assert message.startswith(
        "apps/ms_chat/kustomization.yaml: no images[] entry for ms_chat (an entry matches "
        "when its name is ms_chat or ends with /ms_chat); its entries: "
        "registry.example.com/team/ms_chat_v2, redis."
    )
    assert "; apps/ms_pay/kustomization.yaml: no images[] entry for ms_pay" in message
    assert "its entries: none" in message
    # Nothing appended, nothing pushed: not even ms_core, whose file had its entry.
    assert head(git_root) == before
    assert show(git_root, "apps/ms_chat/kustomization.yaml") == chat
    assert show(git_root, "apps/ms_core/kustomization.yaml") == core


def test_a_version_file_keeps_its_comments(gitops, git_root, tmp_path):
    layout = GitOpsLayout(
        layout="version_file", path_template="apps/{project}/envs/{env}/version.yml"
    )
    eu = "# prod-eu pins ms_core here\n# (reviewed by the platform team)\n'v0.9.0'   # last good\n"
    seed(git_root, tmp_path, {"apps/ms_core/envs/prod/version.yml": eu})

    gitops.commit_and_push(
        REPO, bump_edit(layout, "prod", images("ms_core", "ms_chat"), "v1.0.0", None), "bump"
    )

    assert changed_lines(git_root) == [
        "+v1.0.0",  # ms_chat's new file
        "-'v0.9.0'   # last good",
        "+'v1.0.0'   # last good",
    ]
    assert (
        show(git_root, "apps/ms_chat/envs/prod/version.yml") == "v1.0.0\n"
    )  # a new file: the version alone
    assert (
        read_version(
            layout, "prod", "ms_core", show(git_root, "apps/ms_core/envs/prod/version.yml")
        )
        == "v1.0.0"
    )

    # A version file that holds more than a version is named, not overwritten.
    seed(git_root, tmp_path / "again", {"apps/ms_core/envs/prod/version.yml": "version: v1.0.0\n"})
    with pytest.raises(
        GitOpsError, match=r"^apps/ms_core/envs/prod/version.yml: holds more than a version"
    ):
        gitops.commit_and_push(
            REPO, bump_edit(layout, "prod", images("ms_core"), "v1.1.0", None), "bump"
        )


def test_the_read_back_names_a_broken_file_and_shows_disagreeing_entries():
    two = (
        "images:\n- name: ms_core\n  newTag: v1.0.0\n- name: eu.example/ms_core\n  newTag: v0.9.0\n"
    )
    assert read_version(GitOpsLayout(), "prod", "ms_core", two) == "v1.0.0 / v0.9.0"
    with pytest.raises(GitOpsError, match=r"^apps/ms_core/kustomization.yaml: not valid YAML"):
        read_version(GitOpsLayout(), "prod", "ms_core", "images: [\n")


US = """\
images:
  - name: registry.example.com/team/ms_core   # ours, through the mirror
    newTag: v0.9.0
  - name: registry.example.com/team/ms_chat
    newName: registry.example.com/team/ms_chat
    newTag: v0.9.0
"""


def test_a_bump_over_two_repos_pushes_neither_when_the_second_cannot_take_it(
    gitops, git_root, tmp_path
):
    """The bump itself plans every target on its repo before the first push: a region whose
    file is missing (or lost its entry after source checked it) leaves the other region's repo
    unmoved too. Once it can take it, each repo gets its commit and the metadata says what."""
    from deploy_assets.assets.gitops import push_targets
    from deploy_assets.config import GitOpsTarget
    from deploy_assets.local.stack import init_bare_repos

    init_bare_repos(git_root, ["gitops-us"])
    eu = GitOpsTarget(
        name="eu", repo=REPO, layout="version_file", path_template="apps/{project}/eu.yml"
    )
    us = GitOpsTarget(
        name="us",
        repo="gitops-us",
        path_template="env/{env}/kustomization.yaml",
        image_name="registry.example.com/team/{service}",
    )
    before = seed(
        git_root, tmp_path, {"apps/ms_core/eu.yml": "v0.9.0\n", "apps/ms_chat/eu.yml": "v0.9.0\n"}
    )
    context = SimpleNamespace(log=logging.getLogger("test.push_targets"))
    bump = ((eu, us), "staging", "v1.0.0", images("ms_core", "ms_chat"), None, "bump")
    with pytest.raises(
        GitOpsError,
        match=r"gitops-us\.git \(target us\): env/staging/kustomization.yaml: file not found",
    ):
        push_targets(context, gitops, *bump)
    assert head(git_root) == before

    work = tmp_path / "us"
    run_git(["clone", "--quiet", str(git_root / "gitops-us.git"), str(work)])
    (work / "env/staging").mkdir(parents=True)
    (work / "env/staging/kustomization.yaml").write_text(US)
    run_git(["add", "-A"], cwd=work)
    run_git(["commit", "--quiet", "-m", "seed"], cwd=work)
    run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=work)
    written = push_targets(context, gitops, *bump)

    us_head = run_git(["rev-parse", "main"], cwd=git_root / "gitops-us.git").decode().strip()
    assert written["targets"] == [
        {
            "name": "eu",
            "repo": REPO,
            "layout": "version_file",
            "files": ["apps/ms_chat/eu.yml", "apps/ms_core/eu.yml"],
            "commit": head(git_root),
        },
        {
            "name": "us",
            "repo": "gitops-us",
            "layout": "kustomize",
            "files": ["env/staging/kustomization.yaml"],
            "commit": us_head,
        },
    ]
    assert written["gitops_commit"] == head(git_root) != before
    assert show(git_root, "apps/ms_core/eu.yml") == "v1.0.0\n"
    # Matched by the manifests' name, only the tags move: the mirror's newName stays.
    assert run_git(
        ["show", "main:env/staging/kustomization.yaml"], cwd=git_root / "gitops-us.git"
    ).decode() == US.replace("v0.9.0", "v1.0.0")
