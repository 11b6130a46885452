"""The GitOps side of the pipeline config: how an env's bump is written, into which repos.

An env names one repo (`gitops_repo` + `gitops`, the older form, still loaded unchanged) or a
list of `gitops_targets`, each a repo + layout + path template of its own: prod-eu and prod-us
version files, or one kustomization per env listing every image. A target can map our project
names to the names its repo uses (`projects: {ms_core: core}`, the `{project}` of its paths)
and say how its manifests name our images (`image_name`, often another registry than the one
pushed to). Everything that can be refused without the repo's files is refused here, at load:
the planning of the bump itself (resources/gitops.py, gitops_targets.py) refuses the rest.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TEMPLATE_FIELDS = ("project", "env", "version")
IMAGE_FIELDS = ("project", "service")
# A repository name without tag or digest, as docker reads it: an optional registry host[:port],
# then lowercase path components joined by single . _ __ or -.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REPOSITORY = re.compile(
    rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*", re.ASCII
)
NAME = re.compile(r"[a-z0-9]+(?:[_.-][a-z0-9]+)*", re.ASCII)
REPO = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)*", re.ASCII)


def _fields(template: str, what: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{what} {template!r} is not a valid template ({exc})") from None


class GitOpsLayout(BaseModel):
    """How a version bump is written into one GitOps repo (git mode)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: Literal["kustomize", "image_ref", "version_file"] = Field(
        "kustomize",
        description="kustomize: images[] newTag; image_ref: `image: <name>:TAG` "
        "lines; version_file: a file holding the version alone",
    )
    path_template: str = Field(
        "apps/{project}/kustomization.yaml",
        description=(
            "the file to edit, relative to the repo; {project} (the repo's name for the project), "
            "{env}, {version}"
        ),
    )
    routes_path_template: str = Field(
        "apps/{project}/routes.json",
        description=("where the project's routes are written when the env updates routes"),
    )
    image_name: str | None = Field(
        None,
        description=(
            "how the manifests name the image, e.g. registry.example.com/team/{project} ({project}: "
            "the repo's name, {service}: ours); entries are matched by it exactly and only their tag "
            "changes. Default: entries named like the pushed image (ms_core or .../ms_core)"
        ),
    )
    create_missing: bool = Field(
        True,
        description=(
            "a missing file is created (kustomize: an entry per project; version_file: the version) "
            "instead of refused; targets default to false"
        ),
    )
    projects: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "our project name -> the name this repo uses ({project} of its paths); default identity"
        ),
    )

    @field_validator("path_template", "routes_path_template")
    @classmethod
    def _stays_inside_repo(cls, value: str) -> str:
        fields = _fields(value, "path template")
        if fields - set(TEMPLATE_FIELDS):
            unknown = ", ".join("{" + f + "}" for f in sorted(fields - set(TEMPLATE_FIELDS)))
            raise ValueError(
                f"path template {value!r} uses {unknown}; only {{project}}, {{env}}, {{version}} exist"
            )
        probe = value.replace("{project}", "p").replace("{env}", "e").replace("{version}", "v")
        if probe.startswith("/") or ".." in Path(probe).parts:
            raise ValueError(f"path template {value!r} escapes the GitOps repo")
        return value

    @field_validator("image_name")
    @classmethod
    def _image_name_is_a_repository(cls, value: str | None) -> str | None:
        if value is None:
            return value
        fields = _fields(value, "image_name")
        if fields - set(IMAGE_FIELDS) or not fields:
            raise ValueError(
                f"image_name {value!r} must use {{project}} or {{service}} (and nothing else): "
                "each project's entries are found by their own image name"
            )
        probe = value.replace("{project}", "p").replace("{service}", "s")
        if not IMAGE_REPOSITORY.fullmatch(probe) or len(probe) > 255:
            raise ValueError(
                f"image_name {value!r} is not a safe image repository (e.g. {probe!r}): "
                "write [host[:port]/]path/{project} in lowercase, without tag or digest"
            )
        return value

    @field_validator("projects")
    @classmethod
    def _one_name_each(cls, mapping: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for ours, theirs in mapping.items():
            for name in (ours, theirs):
                if not NAME.fullmatch(name):
                    raise ValueError(
                        f"projects: {name!r} is not a safe name (lowercase letters, digits "
                        "and single . _ - between them)"
                    )
            if theirs in seen:
                raise ValueError(
                    f"projects: {seen[theirs]} and {ours} both map to {theirs!r}; "
                    "one name in the GitOps repo is one project"
                )
            seen[theirs] = ours
        return mapping

    @model_validator(mode="after")
    def _one_file_per_version(self):
        if (
            self.layout == "version_file"
            and "project" not in _fields(self.path_template, "")
            and len(self.projects) > 1
        ):
            raise ValueError(
                f"path template {self.path_template!r} has no {{project}}: the version_file "
                f"layout holds one version, and {', '.join(self.projects)} would share it"
            )
        return self

    def repo_name(self, project: str) -> str:
        """The name this repo uses for one of our projects (the `{project}` of its paths)."""
        return self.projects.get(project, project)

    def image_match(self, project: str) -> str | None:
        """The exact image name entries of project are matched by (None: today's matching)."""
        if self.image_name is None:
            return None
        return self.image_name.replace("{project}", self.repo_name(project)).replace(
            "{service}", project
        )


class GitOpsTarget(GitOpsLayout):
    """One repo an env's bump writes: a name (for messages and metadata), the repo, its layout."""

    name: str = Field(description="the target's name, e.g. prod-eu; unique in the env")
    create_missing: bool = Field(
        False,
        description=(
            "create a missing file instead of refusing the release (default: refuse, naming it)"
        ),
    )
    repo: str = Field(description="the GitOps repo, at {DEPLOY_ASSETS_GITOPS_ROOT}/{repo}.git")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(
                f"target name {value!r} is not a safe name (lowercase letters, digits and "
                "single . _ - between them)"
            )
        return value

    @field_validator("repo")
    @classmethod
    def _safe_repo(cls, value: str) -> str:
        if not REPO.fullmatch(value) or ".." in value.split("/") or value.endswith(".git"):
            raise ValueError(
                f"repo {value!r} is not a repo name (letters, digits, . _ - and / between "
                "parts, no .. and no .git suffix)"
            )
        return value

    @staticmethod
    def refuse_clashes(targets: tuple[GitOpsTarget, ...]) -> None:
        """Two targets with one name, or writing one file of one repo, are a config mistake: the
        second would overwrite the first's edit (or its metadata), so the config does not load."""
        if not targets:
            raise ValueError(
                "gitops_targets is empty: list at least one target (or give gitops_repo)"
            )
        names: set[str] = set()
        files: dict[tuple[str, str], str] = {}
        for target in targets:
            if target.name in names:
                raise ValueError(
                    f"two gitops_targets are named {target.name!r}; give each its own name"
                )
            names.add(target.name)
            key = (target.repo, target.path_template)
            if key in files:
                raise ValueError(
                    f"gitops_targets {files[key]!r} and {target.name!r} both write "
                    f"{target.path_template!r} in repo {target.repo!r}; one file, one target"
                )
            files[key] = target.name

    @classmethod
    def of_env(
        cls,
        gitops_repo: str | None,
        gitops: GitOpsLayout,
        gitops_targets: tuple[GitOpsTarget, ...] | None,
    ) -> tuple[GitOpsTarget, ...]:
        """The env's targets: the listed ones, or its one repo + layout as a target named after it."""
        if gitops_targets:
            return gitops_targets
        if gitops_repo is None:
            return ()
        # Built without validation: the older keys were validated as they loaded, and a repo name
        # they accepted keeps working.
        return (cls.model_construct(name=gitops_repo, repo=gitops_repo, **dict(gitops)),)
