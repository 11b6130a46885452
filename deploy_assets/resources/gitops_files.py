"""What a bump writes into each file of one GitOps layout, worked out before anything is
written: which file holds which project (`layout_path`, by the layout's name mapping), each
file's new text (`planned_files`), and the version a file sets now (`read_version`). No git
here: resources/gitops.py applies the plan to a clone, the splices are gitops_layouts.py's.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

from deploy_assets.gitops_config import TEMPLATE_FIELDS, GitOpsLayout
from deploy_assets.resources.gitops_layouts import (
    GitOpsError,
    new_kustomization,
    read_image_ref,
    read_kustomize_tag,
    read_version_file,
    set_image_ref,
    set_kustomize_tag,
    set_version_file,
)


def layout_path(
    layout: GitOpsLayout, project: str, env: str, template: str | None = None, version: str = ""
) -> str:
    """The repo-relative file a template names for one of our projects ({project}: the name the
    repo uses for it, by the layout's `projects` mapping); never a path outside the repo."""
    template = template or layout.path_template
    unknown = [
        f
        for _, f, _, _ in string.Formatter().parse(template)
        if f is not None and f not in TEMPLATE_FIELDS
    ]
    if unknown:
        raise GitOpsError(
            f"path template {template!r} uses {{{unknown[0]}}}; "
            f"only {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)} are known"
        )
    path = template.format(project=layout.repo_name(project), env=env, version=version)
    if path.startswith("/") or ".." in Path(path).parts:
        raise GitOpsError(f"path {path!r} (template {template!r}) escapes the GitOps repo")
    return path


def _file_text(
    layout: GitOpsLayout, images: dict[str, str], version: str, old: str | None, problems: list[str]
) -> str | None:
    """The new text of one file for the projects its path maps there; what cannot be updated
    goes to problems (every project checked, so one error lists them all)."""
    if old is None and (layout.layout == "image_ref" or not layout.create_missing):
        # a manifest someone wrote: inventing one would deploy half a config (or nothing)
        problems.append(
            f"file not found in the GitOps repo ({layout.layout} layout updates an existing "
            f"file for {', '.join(sorted(images))}; create it there first)"
        )
        return None
    if layout.layout == "version_file":
        if len(images) > 1:
            problems.append(
                f"the version_file layout holds one version, and {', '.join(sorted(images))} would "
                "share this file; put {project} in the path template"
            )
            return None
        return set_version_file(old, version)
    if old is None:  # a new app's file: its entries name the projects
        return new_kustomization(images, version, {p: layout.image_match(p) for p in images})
    for project, image in sorted(images.items()):
        edit = set_kustomize_tag if layout.layout == "kustomize" else set_image_ref
        try:
            old = edit(old, project, image, version, layout.image_match(project))
        except GitOpsError as exc:
            problems.append(str(exc))
    return old


def planned_files(
    layout: GitOpsLayout,
    env: str,
    images: dict[str, str],
    version: str,
    read: Callable[[str], str | None],
) -> dict[str, str]:
    """relpath -> new text of every file the bump sets, or one error naming each file and
    project that has nothing to update: computed before anything is written, so a bump that
    cannot move every project moves none (several projects may share one file)."""
    by_path: dict[str, dict[str, str]] = {}
    refuse_shared_names(layout, images)
    for project, image in sorted(images.items()):
        by_path.setdefault(layout_path(layout, project, env, version=version), {})[project] = image
    planned, problems = {}, []
    for relpath, file_images in by_path.items():
        found: list[str] = []
        try:
            text = _file_text(layout, file_images, version, read(relpath), found)
        except GitOpsError as exc:
            found.append(str(exc))
        problems += [f"{relpath}: {problem}" for problem in found]
        if not found:
            planned[relpath] = text
    if problems:
        raise GitOpsError("; ".join(problems))
    return planned


def refuse_shared_names(layout: GitOpsLayout, images: dict[str, str]) -> None:
    """Two of our projects under one name in the repo (a mapping onto another's name) would be
    one file or one entry for two versions' worth of images: refused, naming both."""
    owners: dict[str, str] = {}
    for project in sorted(images):
        other = owners.setdefault(layout.repo_name(project), project)
        if other != project:
            raise GitOpsError(
                f"projects {other} and {project} both have the name {layout.repo_name(project)!r} "
                "in the GitOps repo (projects mapping); map them to different names"
            )


def read_version(layout: GitOpsLayout, env: str, project: str, text: str) -> str | None:
    """What the file sets project to, read from the entries a bump writes (gitops_layouts)."""
    try:
        if layout.layout == "kustomize":
            return read_kustomize_tag(text, project, layout.image_match(project))
        if layout.layout == "image_ref":
            return read_image_ref(text, project, layout.image_match(project))
        return read_version_file(text)
    except GitOpsError as exc:
        raise GitOpsError(f"{layout_path(layout, project, env)}: {exc}") from None
