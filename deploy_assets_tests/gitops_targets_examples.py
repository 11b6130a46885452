"""The README's worked GitOps examples, as the tests load them: one `envs:` block per shape.

Each constant is the exact YAML a test puts in pipeline.yaml (`with_envs`) and releases alpha ->
rc -> final end to end (deploy_assets_tests/assets/test_gitops_targets*.py), so the README can
copy them and they stay true.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from deploy_assets.config import DEFAULT_CONFIG, PipelineConfig, load_pipeline_config
from deploy_assets.resources.git import run_git

# Shape 1, per-app kustomize (the older one-repo form, what existing configs say): one
# apps/<project>/kustomization.yaml per app, created with an entry for a new app.
PER_APP_KUSTOMIZE = """
dev:
  build: [ms]
  images: [ms]
  upload: [ms]
  updates_routes: true
  gitops_repo: gitops-development
  gitops: {layout: kustomize, path_template: "apps/{project}/kustomization.yaml"}
staging:
  build: [ms]
  images: [ms]
  upload: [ms]
  updates_routes: true
  gitops_repo: gitops-staging
  gitops: {layout: kustomize, path_template: "apps/{project}/kustomization.yaml"}
"""

# Shape 2, one kustomization per env listing several images (ours and other teams'): entries
# are found by the image name the manifests use, here <registry>/team/<project>.
ENV_KUSTOMIZATION = """
dev:
  build: [ms]
  images: [ms]
  upload: [ms]
  updates_routes: false
  gitops_targets:
    - name: dev
      repo: gitops-development
      layout: kustomize
      path_template: "env/{env}/kustomization.yaml"
staging:
  build: [ms]
  images: [ms]
  upload: [ms]
  updates_routes: false
  gitops_targets:
    - name: staging
      repo: gitops-staging
      layout: kustomize
      path_template: "env/{env}/kustomization.yaml"
prod:
  build: [ms, lambdas, cli]
  images: [ms, cli]
  upload: [ms, lambdas]
  updates_routes: false
  api_gateway_repo: terraform-apps-production
  gitops_targets:
    - name: prod
      repo: gitops-production
      layout: kustomize
      path_template: "env/{env}/kustomization.yaml"
"""

# Shape 3, several targets per env: prod-eu pins a version file, prod-us an image reference in
# another registry than the one pushed to; both name the apps without our ms_ prefix. Both
# targets are in one repo, so each prod bump is one commit.
PROD_TARGETS = (
    PER_APP_KUSTOMIZE
    + """
prod:
  build: [ms, lambdas, cli]
  images: [ms, cli]
  upload: [ms, lambdas]
  updates_routes: false
  api_gateway_repo: terraform-apps-production
  gitops_targets:
    - name: prod-eu
      repo: gitops-production
      layout: version_file
      path_template: "apps/{project}/envs/prod-eu/version.yml"
      projects: {ms_chat: chat, ms_core: core, ms_payments: payments}
    - name: prod-us
      repo: gitops-production
      layout: image_ref
      path_template: "apps/{project}/envs/prod-us/version.yml"
      image_name: "registry.example.com/team/{project}"
      projects: {ms_chat: chat, ms_core: core, ms_payments: payments}
"""
)


def with_envs(tmp_path: Path, envs_yaml: str, **env_overrides) -> PipelineConfig:
    """The default pipeline.yaml with its `envs:` replaced, loaded as a deployment loads it."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["envs"] = yaml.safe_load(envs_yaml)
    for env, update in env_overrides.items():
        raw["envs"][env].update(update)
    path = tmp_path / "pipeline-gitops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_pipeline_config(path)


def seed(
    git_root: str | Path,
    repo: str,
    work: Path,
    files: dict[str, str],
    message: str = "seed",
    trailers: str = "",
) -> str:
    """Commit files to repo's main as another team (or source) would; returns the new head."""
    run_git(["clone", "--quiet", f"{git_root}/{repo}.git", str(work)])
    for relpath, text in files.items():
        (work / relpath).parent.mkdir(parents=True, exist_ok=True)
        (work / relpath).write_bytes(text.encode())
    run_git(["add", "-A"], cwd=work)
    run_git(
        ["commit", "--quiet", "-m", message + ("\n\n" + trailers if trailers else "")], cwd=work
    )
    run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=work)
    return head(git_root, repo)


def head(git_root: str | Path, repo: str) -> str:
    return run_git(["rev-parse", "main"], cwd=f"{git_root}/{repo}.git").decode().strip()


def show(git_root: str | Path, repo: str, relpath: str, ref: str = "main") -> str:
    return run_git(["show", f"{ref}:{relpath}"], cwd=f"{git_root}/{repo}.git").decode()


def diff_lines(git_root: str | Path, repo: str, old: str, new: str = "main") -> list[str]:
    """The -/+ lines between two commits, as a reviewer of the env repo reads them."""
    out = run_git(["diff", "-U0", old, new], cwd=f"{git_root}/{repo}.git").decode()
    return [
        line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
