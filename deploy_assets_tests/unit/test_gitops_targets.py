"""GitOps targets, decided without git: config refusals, the planning of a bump over several
targets (on in-memory files), name mapping, image matching, and which history is ours."""

import pytest
import yaml

from deploy_assets.config import ConfigError, EnvRule, load_pipeline_config
from deploy_assets.gitops_config import GitOpsTarget
from deploy_assets.records.status import Deployment, ours, version_stack
from deploy_assets.resources.gitops_layouts import GitOpsError
from deploy_assets.resources.gitops_targets import by_repo, combined, plan_targets, target_versions
from deploy_assets_tests.gitops_targets_examples import (
    ENV_KUSTOMIZATION,
    PER_APP_KUSTOMIZE,
    PROD_TARGETS,
    with_envs,
)

PUSHED = "127.0.0.1:5000"
IMAGES = {p: f"{PUSHED}/{p}" for p in ("ms_chat", "ms_core")}
SHARED = """\
# one file for the env
images:
  - name: registry.example.com/team/ms_core   # ours
    newTag: "v0.0.1"
  - {name: 'registry.example.com/team/ms_chat', newTag: v0.0.1}
  - name: registry.example.com/other/billing  # theirs
    newTag: '4.2'
"""


def reader(repos: dict[str, dict[str, str]]):
    """(repo, paths) -> texts, the way GitOpsResource.read_files answers, from a dict."""
    return lambda repo, paths: {p: repos.get(repo, {}).get(p) for p in paths}


def target(**fields) -> GitOpsTarget:
    return GitOpsTarget.model_validate({"name": "eu", "repo": "gitops-production", **fields})


def test_every_worked_example_loads_and_the_older_form_is_one_target(tmp_path):
    per_app = with_envs(
        tmp_path,
        PER_APP_KUSTOMIZE
        + "prod: "
        + yaml.safe_dump(yaml.safe_load(ENV_KUSTOMIZATION)["prod"], default_flow_style=True),
    )
    (one,) = per_app.envs["dev"].targets
    assert (one.name, one.repo, one.path_template, one.create_missing) == (
        "gitops-development",
        "gitops-development",
        "apps/{project}/kustomization.yaml",
        True,
    )
    prod = with_envs(tmp_path, PROD_TARGETS).envs["prod"]
    assert [t.name for t in prod.targets] == ["prod-eu", "prod-us"] and prod.gitops_repos == [
        "gitops-production"
    ]
    assert prod.targets[1].image_match("ms_core") == "registry.example.com/team/core"
    assert load_pipeline_config().envs["prod"].gitops_repos == [
        "gitops-production"
    ]  # the shipped file


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"gitops_targets": [{"name": "eu", "repo": "a"}, {"name": "eu", "repo": "b"}]},
            "two gitops_targets are named 'eu'",
        ),
        (
            {"gitops_targets": [{"name": "eu", "repo": "a"}, {"name": "us", "repo": "a"}]},
            "gitops_targets 'eu' and 'us' both write 'apps/{project}/kustomization.yaml' in repo 'a'",
        ),
        (
            {
                "gitops_targets": [
                    {"name": "eu", "repo": "a", "path_template": "../{project}/v.yml"}
                ]
            },
            "path template '../{project}/v.yml' escapes the GitOps repo",
        ),
        (
            {
                "gitops_targets": [
                    {
                        "name": "eu",
                        "repo": "a",
                        "layout": "version_file",
                        "path_template": "env/VERSION",
                        "projects": {"ms_core": "core", "ms_chat": "chat"},
                    }
                ]
            },
            "path template 'env/VERSION' has no {project}",
        ),
        (
            {
                "gitops_targets": [
                    {"name": "eu", "repo": "a", "image_name": "registry.example.com/team/x"}
                ]
            },
            "image_name 'registry.example.com/team/x' must use {project} or {service}",
        ),
        (
            {
                "gitops_targets": [
                    {"name": "eu", "repo": "a", "image_name": "evil.io/{project}:latest"}
                ]
            },
            "image_name 'evil.io/{project}:latest' is not a safe image repository",
        ),
        (
            {
                "gitops_targets": [
                    {"name": "eu", "repo": "a", "image_name": "r/{project.__class__}"}
                ]
            },
            "image_name",
        ),
        (
            {
                "gitops_targets": [
                    {"name": "eu", "repo": "a", "projects": {"ms_core": "core", "ms_chat": "core"}}
                ]
            },
            "ms_chat and ms_core both map to 'core'",
        ),
        (
            {"gitops_targets": [{"name": "eu", "repo": "a", "projects": {"ms_core": "../core"}}]},
            "'../core' is not a safe name",
        ),
        ({"gitops_targets": [{"name": "eu", "repo": "../a"}]}, "repo '../a' is not a repo name"),
        ({"gitops_targets": [{"name": "eu", "repo": "a"}], "gitops_repo": "b"}, "not both"),
        ({"gitops_targets": [{"name": "eu", "repo": "a", "branch": "x"}]}, "branch"),
        ({"gitops_targets": []}, "gitops_targets is empty"),
    ],
)
def test_a_bad_target_is_refused_at_load_naming_the_value(tmp_path, change, named):
    rule = {"build": ["ms"], "images": ["ms"], "upload": ["ms"], **change}
    if "gitops_repo" not in change:
        rule["gitops_repo"] = None
    with pytest.raises(ConfigError) as err:
        with_envs(
            tmp_path, yaml.safe_dump({"dev": {k: v for k, v in rule.items() if v is not None}})
        )
    assert named in str(err.value) and "envs.dev" in str(err.value)


def test_an_env_without_any_repo_is_refused():
    with pytest.raises(ValueError, match="give gitops_repo .* or gitops_targets"):
        EnvRule(build=["ms"], images=["ms"], upload=["ms"])


def test_planning_maps_names_and_matches_the_manifests_image_name():
    eu = target(
        layout="version_file",
        path_template="apps/{project}/envs/eu/version.yml",
        projects={"ms_core": "core", "ms_chat": "chat"},
    )
    us = target(
        name="us",
        layout="image_ref",
        path_template="apps/{project}/envs/us/values.yml",
        image_name="mirror.example/team/{project}",
        projects={"ms_core": "core", "ms_chat": "chat"},
    )
    files = {
        "apps/core/envs/eu/version.yml": "v0.1.0\n",
        "apps/chat/envs/eu/version.yml": "'v0.1.0'  # pinned\n",
        "apps/core/envs/us/values.yml": "image: mirror.example/team/core:v0.1.0\nother: ms_core:v0.1.0\n",
        "apps/chat/envs/us/values.yml": 'image: "mirror.example/team/chat:v0.1.0"\n',
    }
    planned = plan_targets([eu, us], "prod", IMAGES, "v1.0.0", reader({"gitops-production": files}))
    assert planned == {
        "eu": {
            "apps/core/envs/eu/version.yml": "v1.0.0\n",
            "apps/chat/envs/eu/version.yml": "'v1.0.0'  # pinned\n",
        },
        # the name the manifests use stays; a reference to another image is not ours to move
        "us": {
            "apps/core/envs/us/values.yml": "image: mirror.example/team/core:v1.0.0\nother: ms_core:v0.1.0\n",
            "apps/chat/envs/us/values.yml": 'image: "mirror.example/team/chat:v1.0.0"\n',
        },
    }
    done = {**files, **planned["eu"], **planned["us"]}
    versions = target_versions(
        [eu, us], "prod", ["ms_chat", "ms_core"], reader({"gitops-production": done})
    )
    assert versions == {
        "eu": {"ms_chat": "v1.0.0", "ms_core": "v1.0.0"},
        "us": {"ms_chat": "v1.0.0", "ms_core": "v1.0.0"},
    }
    assert combined(versions) == {"ms_chat": "v1.0.0", "ms_core": "v1.0.0"}
    assert combined({"eu": {"ms_core": "v1"}, "us": {"ms_core": None}}) == {
        "ms_core": "eu=v1 / us=none"
    }


def test_an_exact_image_name_matches_that_entry_only_and_leaves_the_others_byte_for_byte():
    shared = target(
        path_template="env/{env}/kustomization.yaml",
        image_name="registry.example.com/team/{service}",
    )
    planned = plan_targets(
        [shared],
        "prod",
        IMAGES,
        "v1.0.0",
        reader({"gitops-production": {"env/prod/kustomization.yaml": SHARED}}),
    )
    assert planned["eu"]["env/prod/kustomization.yaml"] == SHARED.replace(
        '"v0.0.1"', '"v1.0.0"'
    ).replace("newTag: v0.0.1}", "newTag: v1.0.0}")


@pytest.mark.parametrize(
    ("files", "named"),
    [
        (
            {},
            "GitOps repo gitops-production (target eu): apps/ms_chat/kustomization.yaml: file not found in the "
            "GitOps repo (kustomize layout updates an existing file for ms_chat; create it there first)",
        ),
        (
            {"apps/ms_chat/kustomization.yaml": SHARED, "apps/ms_core/kustomization.yaml": SHARED},
            "(target eu): apps/ms_chat/kustomization.yaml: no images[] entry for ms_chat (an entry matches when its "
            "name is mirror/ms_chat (the target's image_name))",
        ),
    ],
)
def test_a_missing_file_or_entry_is_refused_naming_repo_target_file_and_project(files, named):
    with pytest.raises(GitOpsError) as err:
        plan_targets(
            [target(image_name="mirror/{service}" if files else None)],
            "prod",
            IMAGES,
            "v1.0.0",
            reader({"gitops-production": files}),
        )
    assert named in str(err.value)


def test_a_mapping_to_a_project_the_release_does_not_deploy_is_refused():
    with pytest.raises(
        GitOpsError,
        match=r"gitops target eu: projects maps 'ms_pay', which is not a project "
        r"this release deploys \(ms_chat, ms_core\)",
    ):
        plan_targets([target(projects={"ms_pay": "pay"})], "prod", IMAGES, "v1.0.0", reader({}))


def test_two_projects_under_one_name_or_one_version_file_are_refused():
    with pytest.raises(
        GitOpsError, match="projects ms_chat and ms_core both have the name 'ms_chat'"
    ):
        plan_targets([target(projects={"ms_core": "ms_chat"})], "prod", IMAGES, "v1", reader({}))
    with pytest.raises(
        GitOpsError, match="version_file layout holds one version, and ms_chat, ms_core would share"
    ):
        plan_targets(
            [target(layout="version_file", path_template="VERSION", create_missing=True)],
            "prod",
            IMAGES,
            "v1",
            reader({}),
        )


def test_targets_of_one_repo_go_together_in_config_order():
    a, b, c = (
        target(name="a", repo="r1"),
        target(name="b", repo="r2"),
        target(name="c", repo="r1", path_template="x/{project}"),
    )
    assert {repo: [t.name for t in group] for repo, group in by_repo([a, b, c]).items()} == {
        "r1": ["a", "c"],
        "r2": ["b"],
    }


def deployment(tag: str, *projects: str, rollback_from: str = "") -> Deployment:
    return Deployment(
        commit=tag,
        date="",
        tag=tag,
        run_id="",
        source_commit="",
        projects=projects,
        rollback_from=rollback_from,
    )


def test_another_sources_bump_is_neither_ours_nor_a_rollback_target():
    history = [
        deployment("v1.0.0", "ms_core", "ms_chat"),
        deployment("v1.1.0", "ms_core", "ms_chat"),
        deployment("4.3", "billing"),
    ]  # another code location bumped its app in between
    mine = ours(history, ["ms_chat", "ms_core"])
    assert [d.tag for d in mine] == ["v1.0.0", "v1.1.0"]
    assert version_stack(mine)[-2] == "v1.0.0"  # the default rollback target
    assert version_stack(history)[-2] == "v1.1.0"  # what taking theirs for ours would pick
