"""Pipeline configuration (misc/configs/pipeline.yaml) and deployment settings (env vars).

Two kinds of input live here on purpose: the *pipeline* config says what a release of this
monorepo is (layout, platforms, which kinds each env gets) and is reviewed like code; the
*settings* say where things go (registry, bucket, repos) and differ per machine, so they come
from the environment with the old system's variable names where it had them. The settings'
code is in resources/deployment_settings.py; this module re-exports it, so imports stay here.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deploy_assets.gitops_config import GitOpsLayout, GitOpsTarget
from deploy_assets.resources.deployment_settings import (  # noqa: F401 (re-exported)
    LOCAL_DIR,
    REPO_ROOT,
    Settings,
    apply_env_file,
)

DOCKERFILES_DIR = REPO_ROOT / "misc" / "dockerfiles"
DEFAULT_CONFIG = REPO_ROOT / "misc" / "configs" / "pipeline.yaml"

Kind = Literal["ms", "lambdas", "cli"]
Env = Literal["dev", "staging", "prod"]
Platform = Literal["arm64", "amd64"]
ENVS: tuple[Env, ...] = ("dev", "staging", "prod")
KINDS: tuple[Kind, ...] = ("ms", "lambdas", "cli")


_ALLOWED_BUILD_FLAGS = {
    "-trimpath",
    "-buildvcs",
    "-tags",
    "-ldflags",
    "-race",
    "-a",
    "-v",
    "-mod",
    "-buildmode",
}


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# What image repositories, S3 keys, git paths and asset keys all accept: lowercase letters and
# digits with single `.`, `_` or `-` between them (no leading dot or dash, no path separator).
SAFE_NAME = re.compile(r"[a-z0-9]+(?:[_.-][a-z0-9]+)*", re.ASCII)
MAX_NAME = 128


class KindLayout(_Strict):
    """Where services of one kind live, what they are called and how their image is built.

    `include`/`exclude` are globs of service directories (one or a list; a plain path is a glob
    matching itself), each part matching one directory level, so `cmd/*` with `exclude: cmd/cli`
    leaves the CLI to another kind. `name_template` turns a directory into the service name that
    binaries, images, S3 objects and GitOps projects carry: real repos keep `cmd/auth` where the
    old system's images were `ms_auth`. The older `glob: X` means `include: X`, so existing
    configs load unchanged.
    """

    include: tuple[str, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()
    name_template: str = "{dir}"
    dockerfile: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _glob_means_include(cls, data):
        if isinstance(data, dict) and "glob" in data:
            if "include" in data:
                raise ValueError(
                    f"give glob ({data['glob']!r}) or include ({data['include']!r}), not both"
                )
            data = {("include" if k == "glob" else k): v for k, v in data.items()}
        return data

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _one_or_a_list(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("include", "exclude")
    @classmethod
    def _relative_globs(cls, globs: tuple[str, ...]) -> tuple[str, ...]:
        # Matched part by part against paths inside the module: anything that could not match
        # such a path is a mistake to report now, not a kind that silently finds nothing.
        for glob in globs:
            parts = glob.split("/")
            if not glob.strip() or glob.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise ValueError(
                    f"glob {glob!r} must be a relative path inside the Go module "
                    "(no leading /, no empty, . or .. parts)"
                )
            if any("**" in p for p in parts):
                raise ValueError(
                    f"glob {glob!r}: ** is not supported; each part matches one directory "
                    "level (use cmd/* or list the levels, e.g. [cmd/*, cmd/*/*])"
                )
        return globs

    @field_validator("name_template")
    @classmethod
    def _template_makes_safe_names(cls, value: str) -> str:
        try:
            fields = [
                (name, spec, conv)
                for _, name, spec, conv in string.Formatter().parse(value)
                if name is not None
            ]
        except ValueError as exc:
            raise ValueError(f"name template {value!r} is not a valid template ({exc})") from None
        unknown = sorted({"{" + name + "}" for name, _, _ in fields if name != "dir"})
        if unknown:
            raise ValueError(
                f"name template {value!r} uses {', '.join(unknown)}; only {{dir}} (the "
                "directory's base name) exists"
            )
        if not fields:
            raise ValueError(
                f"name template {value!r} has no {{dir}}: every directory would get the same name"
            )
        if any(spec or conv for _, spec, conv in fields):
            raise ValueError(
                f"name template {value!r}: write {{dir}} without a format spec or conversion"
            )
        probe = render_name(value, "a")
        if not SAFE_NAME.fullmatch(probe) or len(probe) > MAX_NAME:
            raise ValueError(
                f"name template {value!r} makes unsafe names (e.g. {probe!r}): image, S3 and git "
                f"names take at most {MAX_NAME} lowercase letters, digits and single . _ - "
                "between them, no / and no leading dot or dash"
            )
        return value

    def service_name(self, directory: str) -> str:
        """The service name of a service directory (relative to the module), by the template."""
        return render_name(self.name_template, directory.rsplit("/", 1)[-1])

    @property
    def glob(self) -> str:
        """The include globs as one string, for messages (and readers written for one glob)."""
        return self.include[0] if len(self.include) == 1 else " ".join(self.include)

    @field_validator("dockerfile")
    @classmethod
    def _dockerfile_inside_templates(cls, value: str | None) -> str | None:
        # Templates come from misc/dockerfiles/ only: a path elsewhere could pull arbitrary
        # files of the host into an image build context.
        if value is None:
            return value
        resolved = (DOCKERFILES_DIR / value).resolve()
        if not resolved.is_relative_to(DOCKERFILES_DIR.resolve()):
            raise ValueError(f"dockerfile template {value!r} is outside misc/dockerfiles/")
        return value

    @property
    def dockerfile_path(self) -> Path | None:
        return (DOCKERFILES_DIR / self.dockerfile).resolve() if self.dockerfile else None


def render_name(template: str, directory_name: str) -> str:
    return template.replace("{dir}", directory_name)


class SourceLayout(_Strict):
    module_root: str = "."
    vendored: bool = False
    kinds: dict[Kind, KindLayout]


class EnvRule(_Strict):
    """What one environment's release builds, pushes, uploads and bumps (the old matrix)."""

    build: list[Kind]
    images: list[Kind]
    upload: list[Kind]
    deploy: list[Kind] = Field(default_factory=lambda: ["ms"])  # projects in the GitOps bump
    gitops_repo: str | None = Field(
        None, description="the env's one GitOps repo (or gitops_targets)"
    )
    updates_routes: bool = True
    api_gateway_repo: str | None = None
    gitops_mode: Literal["git", "dispatch"] = "git"
    gitops: GitOpsLayout = GitOpsLayout()
    gitops_targets: tuple[GitOpsTarget, ...] | None = Field(
        None, description="instead of gitops_repo"
    )

    @model_validator(mode="after")
    def _one_way_to_name_targets(self):
        if self.gitops_targets is not None:
            if self.gitops_repo is not None or "gitops" in self.model_fields_set:
                raise ValueError(
                    f"give gitops_repo (with gitops) or gitops_targets, not both "
                    f"(gitops_repo {self.gitops_repo!r})"
                )
            if self.gitops_mode == "dispatch":  # the old workflow takes one repo
                raise ValueError(
                    "gitops_targets are written in git mode; dispatch mode takes gitops_repo"
                )
            GitOpsTarget.refuse_clashes(self.gitops_targets)  # and an empty list
        elif self.gitops_repo is None:
            raise ValueError("give gitops_repo (the env's GitOps repo) or gitops_targets")
        return self

    @property
    def targets(self) -> tuple[GitOpsTarget, ...]:
        """Every GitOps target the env's bump writes, in config order (one for gitops_repo)."""
        return GitOpsTarget.of_env(self.gitops_repo, self.gitops, self.gitops_targets)

    @property
    def gitops_repos(self) -> list[str]:
        """The targets' distinct repos, in config order (one commit each per bump)."""
        return list(dict.fromkeys(t.repo for t in self.targets))


class PromotionRule(_Strict):
    require_staging: bool = True
    same_commit: bool = True


class PipelineConfig(_Strict):
    source: SourceLayout
    platforms: list[Platform] = Field(default_factory=lambda: ["arm64"])
    go_version: str = "1.24"
    build_flags: list[str] = Field(default_factory=lambda: ["-trimpath", "-buildvcs=false"])
    # The compiler's and linker's own garbage collector runs only near this much memory per
    # process (GOGC=off, GOMEMLIMIT): cold builds take ~15 % less CPU for ~100 MB more in the
    # largest process, and the bytes built are the same. "" keeps Go's default (GOGC=100).
    go_memory_limit: str = Field(default="600MiB", pattern=r"^([1-9][0-9]*(B|KiB|MiB|GiB))?$")
    # The engine's builder for service images: BuildKit applies EXPOSE/ENTRYPOINT/labels to the
    # image config where the classic builder commits a container per instruction (a copy of the
    # image each, on storage without copy-on-write). "classic" for engines without BuildKit.
    image_builder: Literal["buildkit", "classic"] = "buildkit"
    envs: dict[Env, EnvRule]
    promotion: PromotionRule = PromotionRule()

    @field_validator("build_flags")
    @classmethod
    def _no_version_stamping(cls, flags: list[str]) -> list[str]:
        # Build once, promote the same bytes: a version stamped into the binary would make the
        # rc and prod binaries differ.
        # Flags that run programs (-toolexec) or redirect sources/outputs (-overlay, -modfile, -o)
        # would let a config file execute or substitute code: only an allowlist passes.
        for flag in flags:
            name = flag.split("=", 1)[0]
            if name not in _ALLOWED_BUILD_FLAGS or not re.fullmatch(r"-[a-z][a-z0-9=.,_-]*", flag):
                raise ValueError(
                    f"build flag {flag!r} is not allowed (allowed: {', '.join(sorted(_ALLOWED_BUILD_FLAGS))})"
                )
        return flags


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    path = Path(path or os.environ.get("DEPLOY_ASSETS_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"pipeline config {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"pipeline config {path} is not valid YAML: {exc}") from None
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"pipeline config {path}: {problems}") from None
