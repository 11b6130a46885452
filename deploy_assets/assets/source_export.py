"""What of the monorepo a release's build needs, worked out from the commit's go.mod.

A Go module in a subfolder of a big monorepo (`go/` beside `docs/`, `web/`, other languages)
compiles from that folder alone, plus the local folders its go.mod's `replace` directives point
at (`replace example.com/shared => ../shared`); a vendored build (`source.vendored`) reads
those from the module's vendor/ too (`go mod vendor` copies replaced folders). So
`source` exports those folders (git archive with pathspecs), not the whole tree: less to
extract, hash and keep per release.

Only the main module's go.mod counts: Go ignores the `replace` directives of the modules it
replaces. A go.work above or at the module would pull in modules we cannot see from go.mod, so
then the whole tree is exported, as before. A replace that leaves the repo (an absolute path,
too many `..`) could only build on the machine it was written on: it is refused, naming it.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.plan import PlanError

WHOLE_TREE = "."
# go.mod tokens as Go's modfile lexer has them: a quoted string, a comment, `=>`, a paren, a word
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|//.*|=>|[()]|[^\s"()]+')


class ExportError(PlanError):
    """The module's go.mod asks for a folder the export cannot hold."""


@dataclass(frozen=True)
class ExportPlan:
    """Repo-relative folders to export (("."): the whole tree) and why, for the metadata."""

    paths: tuple[str, ...]
    reason: str

    @property
    def whole_tree(self) -> bool:
        return self.paths == (WHOLE_TREE,)


def _unquote(token: str) -> str:
    if token[:1] == '"':
        return token[1:-1].encode().decode("unicode_escape")
    return token


def local_replaces(go_mod: str) -> list[tuple[str, str]]:
    """(module path, local directory) of each replace whose target is a directory, in order.

    A target is a directory as Go's modfile has it: it starts with ./ or ../ or /, or is . or ..;
    anything else is a module path with a version and needs no file of the monorepo."""
    found, in_block = [], False
    for line in go_mod.splitlines():
        tokens = [t for t in _TOKEN.findall(line) if not t.startswith("//")]
        if not tokens:
            continue
        if in_block:
            if tokens == [")"]:
                in_block = False
                continue
        elif tokens[0] == "replace":
            if tokens[1:] == ["("]:
                in_block = True
                continue
            tokens = tokens[1:]
        else:
            continue
        if "=>" not in tokens or tokens.index("=>") + 1 >= len(tokens):
            continue
        target = _unquote(tokens[tokens.index("=>") + 1])
        if target in (".", "..") or target.startswith(("./", "../", "/")):
            found.append((_unquote(tokens[0]), target))
    return found


def module_folder(module_root: str) -> str:
    """source.module_root as a repo-relative folder ("." for the top); one outside is refused."""
    folder = posixpath.normpath(module_root.strip() or WHOLE_TREE)
    if folder.startswith("/") or folder == ".." or folder.startswith("../"):
        raise ExportError(
            f"source.module_root {module_root!r} is outside the monorepo; give the "
            "folder of go.mod relative to the repo's top, e.g. go or "
            "services/backend"
        )
    return folder


def _go_work(folder: str, files: set[str]) -> str | None:
    """The go.work Go would find from the module folder upwards inside the repo, if any."""
    while True:
        candidate = "go.work" if folder == WHOLE_TREE else f"{folder}/go.work"
        if candidate in files:
            return candidate
        if folder == WHOLE_TREE:
            return None
        folder = posixpath.dirname(folder) or WHOLE_TREE


def _replace_folder(folder: str, module: str, target: str, files: set[str]) -> str:
    """The repo folder a local replace points at, checked to be in the repo and a module."""
    written = f"{posixpath.join(folder, 'go.mod')}: replace {module} => {target}"
    joined = posixpath.normpath(posixpath.join(folder, target))
    if target.startswith("/") or joined == ".." or joined.startswith("../"):
        raise ExportError(
            f"{written} points outside the monorepo, so no other machine can "
            "build it; vendor the module, or move it into the repo and point the "
            "replace at it"
        )
    mod = "go.mod" if joined == WHOLE_TREE else f"{joined}/go.mod"
    if mod not in files:
        raise ExportError(f"{written}: the commit has no {mod}; fix the replace or add the module")
    return joined


def _covering(paths: list[str]) -> tuple[str, ...]:
    """The folders without those inside another one of them ("." covers everything)."""
    if WHOLE_TREE in paths:
        return (WHOLE_TREE,)
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not any(path.startswith(f"{k}/") for k in kept):
            kept.append(path)
    return tuple(kept)


def export_plan(
    module_root: str, go_mod: str | None, files: list[str], vendored: bool = False
) -> ExportPlan:
    """The folders a build of the module at `module_root` needs, from the commit's go.mod
    (None: no go.mod there) and its file list. A vendored build (-mod=vendor) reads every
    dependency, replaced ones too, from the module's vendor/: the module's folder is enough."""
    folder, present = module_folder(module_root), set(files)
    mod = "go.mod" if folder == WHOLE_TREE else f"{folder}/go.mod"
    if go_mod is None or mod not in present:
        raise ExportError(
            f"the commit has no {mod} (source.module_root is {module_root!r}); set "
            "module_root to the folder of the Go module's go.mod"
        )
    if folder == WHOLE_TREE:
        return ExportPlan((WHOLE_TREE,), "the module is the whole repo")
    work = _go_work(folder, present)
    if work is not None:
        return ExportPlan((WHOLE_TREE,), f"{work} may use modules go.mod does not name")
    if vendored:
        return ExportPlan(
            (folder,), f"module {folder}, vendored (its replaces are in {folder}/vendor)"
        )
    replaced = [_replace_folder(folder, m, t, present) for m, t in local_replaces(go_mod)]
    paths = _covering([folder, *replaced])
    outside = [p for p in paths if p != folder]
    return ExportPlan(
        paths,
        f"module {folder}" + (f" and its local replaces {', '.join(outside)}" if outside else ""),
    )


def tree_size(root: Path, skip: str = ".deploy-assets-commit") -> tuple[int, int]:
    """(files, bytes) of an exported tree, for the metadata of what a release holds."""
    files = size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name != skip:
                files += 1
                size += os.lstat(os.path.join(folder, name)).st_size
    return files, size
