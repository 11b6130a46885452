"""Deployment settings: where releases go (registry, bucket, repos), from environment variables.

They differ per machine, so they come from the environment (with the old system's variable
names where it had them) and never from the reviewed pipeline config; deploy_assets.config
re-exports everything here, which is where callers import it from.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = Path(os.environ.get("DEPLOY_ASSETS_LOCAL_DIR", REPO_ROOT / ".local"))


def apply_env_file(path: str | Path | None = None) -> None:
    """Load KEY=VALUE lines (default misc/envs/local.env) for keys not already in the environment."""
    path = Path(
        path
        or os.environ.get("DEPLOY_ASSETS_ENV_FILE")
        or REPO_ROOT / "misc" / "envs" / "local.env"
    )
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            os.environ.setdefault(key.strip(), value.strip())


class Settings(BaseModel):
    """Where releases go. Defaults are the local stack (`make stack-up`)."""

    model_config = ConfigDict(frozen=True)

    source_repo: str
    registry: str
    s3_endpoint: str | None
    aws_region: str
    bucket: str
    s3_path: str
    git_root: str
    work_dir: Path
    cache_dir: Path
    github_api: str
    github_owner: str
    allow_prod_without_staging: bool = False
    # Key prefix of the shared Go compile cache in the artifact bucket (resources/go_cache.py);
    # "" turns it off (a machine that keeps its own GOCACHE between releases gains nothing).
    go_compile_cache: str = "go-build-cache"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        local = Path(env.get("DEPLOY_ASSETS_LOCAL_DIR", LOCAL_DIR))
        return cls(
            source_repo=env.get("DEPLOY_ASSETS_SOURCE_REPO", str(local / "git" / "monorepo.git")),
            registry=env.get("DEPLOY_ASSETS_REGISTRY", "127.0.0.1:5000"),
            s3_endpoint=env.get("DEPLOY_ASSETS_S3_ENDPOINT", "http://127.0.0.1:9000") or None,
            aws_region=env.get("APP_ARCHIVER_AWS_REGION", "eu-west-1"),
            bucket=env.get("APP_ARCHIVER_BUCKET", "app-artifacts"),
            s3_path=env.get("APP_ARCHIVER_PATH", "binaries"),
            git_root=env.get("DEPLOY_ASSETS_GITOPS_ROOT", str(local / "git")),
            work_dir=Path(env.get("DEPLOY_ASSETS_WORK_DIR", local / "work")),
            cache_dir=Path(env.get("DEPLOY_ASSETS_CACHE_DIR", local / "cache")),
            github_api=env.get("DEPLOY_ASSETS_GITHUB_API", "https://api.github.com"),
            github_owner=env.get("DEPLOY_ASSETS_GITHUB_OWNER", "example-org"),
            allow_prod_without_staging=env.get(
                "DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING", ""
            ).lower()
            in ("1", "true", "yes"),
            go_compile_cache=env.get("DEPLOY_ASSETS_GO_COMPILE_CACHE", "go-build-cache").strip("/"),
        )
