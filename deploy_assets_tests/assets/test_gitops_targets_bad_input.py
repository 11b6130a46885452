"""A GitOps target that cannot take the bump is refused at source, naming repo, target, file and
project, before anything is built or published: the registry and the bucket hold nothing for
the tag, and neither of the env's repos moves (not even the one whose file was fine)."""

from pathlib import Path

import pytest

from deploy_assets.config import ConfigError
from deploy_assets.local.stack import init_bare_repos
from deploy_assets_tests.assets.test_bad_input import failed_at
from deploy_assets_tests.gitops_targets_examples import head, seed, with_envs

pytestmark = pytest.mark.slow

MS = ["ms_chat", "ms_core", "ms_payments"]
TAG = "v0.9.0-alpha.7"
FILE = "env/dev/kustomization.yaml"
OURS = "images:\n" + "".join(
    f"  - name: registry.example.com/team/{p}\n    newTag: v0.0.1\n" for p in MS
)
# dev bumps its cluster's file and a second region's, in another repo.
TWO_REPOS = """
dev:
  build: [ms]
  images: [ms]
  upload: [ms]
  updates_routes: false
  gitops_targets:
    - {name: dev, repo: gitops-development, path_template: "env/{env}/kustomization.yaml"}
    - name: dev-eu
      repo: gitops-dev-eu
      path_template: "env/{env}/kustomization.yaml"
      image_name: "registry.example.com/team/{project}"
"""


def assert_nothing_published(harness, heads: dict[str, str]) -> None:
    for name in MS:
        assert harness.registry.manifest_digest(name, TAG) is None, name
        assert harness.s3.head(f"binaries/{TAG}/{name}") is None, name
    assert harness.s3.head(f"binaries/{TAG}/manifest.json") is None
    assert not (harness.settings.work_dir / "dev" / TAG / "out").exists()  # nothing built
    for repo, before in heads.items():
        assert head(harness.settings.git_root, repo) == before, repo


@pytest.mark.parametrize(
    ("eu_files", "mapping", "named"),
    [
        (
            {},
            None,
            "GitOps repo {root}/gitops-dev-eu.git (target dev-eu): env/dev/kustomization.yaml: file not "
            "found in the GitOps repo (kustomize layout updates an existing file for ms_chat, ms_core, "
            "ms_payments; create it there first)",
        ),
        (
            {FILE: "images:\n  - name: registry.example.com/team/core\n    newTag: v0.0.1\n"},
            None,
            "GitOps repo {root}/gitops-dev-eu.git (target dev-eu): env/dev/kustomization.yaml: no images[] entry for "
            "ms_chat (an entry matches when its name is registry.example.com/team/ms_chat (the target's "
            "image_name)); its entries: registry.example.com/team/core.",
        ),
        (
            {FILE: OURS},
            {"ms_pay": "pay"},
            "gitops target dev-eu: projects maps 'ms_pay', which is not a project "
            "this release deploys (ms_chat, ms_core, ms_payments)",
        ),
    ],
    ids=["missing-file", "no-matching-entry", "unknown-project"],
)
def test_a_target_that_cannot_take_the_bump_is_refused_before_anything_is_published(
    harness, tmp_path, eu_files, mapping, named
):
    root = harness.settings.git_root
    init_bare_repos(Path(root), ["gitops-dev-eu"])
    config = with_envs(tmp_path, TWO_REPOS)
    if mapping:
        eu = config.envs["dev"].gitops_targets[1].model_copy(update={"projects": mapping})
        config = config.model_copy(
            update={
                "envs": {
                    **config.envs,
                    "dev": config.envs["dev"].model_copy(
                        update={"gitops_targets": (config.envs["dev"].gitops_targets[0], eu)}
                    ),
                }
            }
        )
    harness.reload(config)
    heads = {"gitops-development": seed(root, "gitops-development", tmp_path / "s1", {FILE: OURS})}
    heads["gitops-dev-eu"] = (
        seed(root, "gitops-dev-eu", tmp_path / "s2", eu_files)
        if eu_files
        else head(root, "gitops-dev-eu")
    )

    error = failed_at(harness, harness.release(TAG), "source")

    assert f"the GitOps bump of {TAG} cannot be made" in error
    assert named.format(root=root) in error, error
    assert_nothing_published(harness, heads)


def test_clashing_targets_do_not_load(tmp_path):
    clash = TWO_REPOS.replace("repo: gitops-dev-eu", "repo: gitops-development")
    with pytest.raises(
        ConfigError,
        match=r"envs\.dev: .*gitops_targets 'dev' and 'dev-eu' both write "
        r"'env/\{env\}/kustomization.yaml' in repo 'gitops-development'",
    ):
        with_envs(tmp_path, clash)
    with pytest.raises(ConfigError, match=r"two gitops_targets are named 'dev'"):
        with_envs(tmp_path, TWO_REPOS.replace("name: dev-eu", "name: dev"))
