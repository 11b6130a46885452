"""What a bump writes into one GitOps file, and what the read-back finds there, per layout.

Edits are splices: ruamel.yaml composes the file (with the position and quoting style of every
scalar) and only the version scalars are replaced, in the style they were written in. Comments,
key order, quoting, indentation and blank lines stay byte for byte, so the GitOps repo's reviewers
see a one-line change per image. The read-back (checks, status, rollback) walks the very same
entries as the edit, so it can never report a version the edit did not write.

A file that exists but has nothing to update is an error naming what it has: appending a new
`images[]` entry that no manifest uses would leave the deployment on its old tag while the
read-back reports the new one.
"""

from __future__ import annotations

import json
import re
from io import StringIO

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


class GitOpsError(RuntimeError):
    pass


def _compose(text: str) -> Node | None:
    try:
        return YAML().compose(text)
    except YAMLError as exc:
        raise GitOpsError(f"not valid YAML ({' '.join(str(exc).split())})") from None


def _get(mapping: Node, key: str) -> Node | None:
    if not isinstance(mapping, MappingNode):
        return None
    return next((v for k, v in mapping.value if isinstance(k, ScalarNode) and k.value == key), None)


def image_matches(name: str, project: str) -> bool:
    """The entry names the image the manifests use: `ms_core`, or `<any registry/path>/ms_core`
    (often another registry than the one pushed to); `ms_core_proxy` never matches ms_core."""
    return name == project or name.endswith(f"/{project}")


def _entries(root: Node | None) -> list[MappingNode]:
    images = _get(root, "images") if root is not None else None
    if images is None:
        return []
    if not isinstance(images, SequenceNode):
        raise GitOpsError("`images` is not a list")
    return [e for e in images.value if isinstance(e, MappingNode)]


def _name(entry: MappingNode) -> str:
    name = _get(entry, "name")
    return name.value if isinstance(name, ScalarNode) else ""


def kustomize_entries(
    text: str, project: str, exact: str | None = None
) -> tuple[list[MappingNode], list[str]]:
    """(entries of images[] that match project, the names of all entries). With `exact` (the
    target's image_name) only an entry named exactly that matches."""
    entries = _entries(_compose(text))
    matches = (lambda name: name == exact) if exact else (lambda name: image_matches(name, project))
    return [e for e in entries if matches(_name(e))], [_name(e) for e in entries]


def scalar_text(value: str, style: str | None) -> str:
    """value as a YAML scalar in the old one's style; plain only where it reads back as that string."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style is None and re.fullmatch(r"[\w.+/:@-]+", value):
        safe = YAML(typ="safe", pure=True)
        if safe.load(f"k: {value}") == {"k": value} and safe.load(f"{{k: {value}}}") == {
            "k": value
        }:
            return value  # reads back as this string both in a block and in a {flow} mapping
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


def _value_splice(node: Node, value: str, what: str) -> tuple[int, int, str] | None:
    if not isinstance(node, ScalarNode) or node.style not in (None, "'", '"'):
        raise GitOpsError(
            f"{what} is not a plain or quoted string; write the tag plain or in quotes"
        )
    if node.value == value:
        return None
    return node.start_mark.index, node.end_mark.index, scalar_text(value, node.style)


def _insert_splice(text: str, entry: MappingNode, key: str, value: str) -> tuple[int, int, str]:
    """A `key: value` pair added as the entry's last one, in the entry's own indentation."""
    if entry.flow_style:
        at = entry.end_mark.index - 1  # the closing brace
        return at, at, f", {key}: {scalar_text(value, None)}"
    last = entry.value[-1][1]
    at = text.find("\n", last.end_mark.index)
    column = entry.value[0][0].start_mark.column
    eol = "\r\n" if "\r\n" in text else "\n"
    line = f"{' ' * column}{key}: {scalar_text(value, None)}{eol}"
    return (len(text), len(text), eol + line) if at < 0 else (at + 1, at + 1, line)


def set_kustomize_tag(
    text: str, project: str, image: str, version: str, exact: str | None = None
) -> str:
    """text with every matching entry's newTag set, and its newName where it has one or is named
    by the bare project; an entry named `<registry>/<project>` keeps that name (the cluster's way
    to the image, often not the registry pushed to). With `exact` (the target's image_name) the
    newTag alone moves. Nothing else in the file moves."""
    entries, names = kustomize_entries(text, project, exact)
    if not entries:
        rule = (
            f"its name is {exact} (the target's image_name)"
            if exact
            else f"its name is {project} or ends with /{project}"
        )
        raise GitOpsError(
            f"no images[] entry for {project} (an entry matches when {rule}); its entries: "
            f"{', '.join(names) or 'none'}. Add an entry named as the image the manifests "
            "use, or set the target's image_name to that name"
        )
    splices = []
    for entry in entries:
        label = f"images[{_name(entry)}]"
        tag, new_name = _get(entry, "newTag"), _get(entry, "newName")
        splices.append(
            _value_splice(tag, version, f"{label}.newTag")
            if tag is not None
            else _insert_splice(text, entry, "newTag", version)
        )
        if exact:  # the target says how its cluster names the image: only the tag is ours to set
            continue
        if new_name is not None:  # what the deployment pulls: the image we pushed
            splices.append(_value_splice(new_name, image, f"{label}.newName"))
        elif _name(entry) == project:  # a bare name pulls from no registry: point it at ours
            splices.append(_insert_splice(text, entry, "newName", image))
    # From the end backwards, so earlier offsets hold; two inserts at one place keep their order.
    for start, _, end, new in sorted(
        ((s[0], i, s[1], s[2]) for i, s in enumerate(splices) if s), reverse=True
    ):
        text = text[:start] + new + text[end:]
    if read_kustomize_tag(text, project, exact) != version:  # the splice must read back as written
        raise GitOpsError(
            f"editing the images[] entries of {project} did not yield newTag {version}"
        )
    return text


def new_kustomization(
    images: dict[str, str], version: str, exact: dict[str, str | None] | None = None
) -> str:
    """A file the bump creates (none was there): one entry per project, named after it (or by
    the image name the target's manifests use, which then keeps its tag only)."""
    exact = exact or {}
    doc = {
        **KUSTOMIZATION,
        "images": [
            {"name": exact[p], "newTag": version}
            if exact.get(p)
            else {"name": p, "newName": i, "newTag": version}
            for p, i in sorted(images.items())
        ],
    }
    out = StringIO()
    YAML().dump(doc, out)
    return out.getvalue()


def read_kustomize_tag(text: str, project: str, exact: str | None = None) -> str | None:
    """The newTag of the entries the edit sets; entries that disagree read as `a / b`."""
    tags = []
    for entry in kustomize_entries(text, project, exact)[0]:
        tag = _get(entry, "newTag")
        value = tag.value if isinstance(tag, ScalarNode) else None
        if value and value not in tags:
            tags.append(value)
    return " / ".join(tags) or None


def _version_node(text: str) -> ScalarNode | None:
    root = _compose(text)
    if root is not None and not isinstance(root, ScalarNode):
        raise GitOpsError(
            "holds more than a version (version_file layout: the version alone, comments allowed; "
            "for `image: .../<project>:TAG` use the image_ref layout)"
        )
    return root


def set_version_file(text: str | None, version: str) -> str:
    """The version scalar replaced in place (comments kept); a missing or empty file gets `version`."""
    node = _version_node(text) if text else None
    if node is None:
        return (text or "") + f"{version}\n"
    splice = _value_splice(node, version, "the version")
    return text if splice is None else text[: splice[0]] + splice[2] + text[splice[1] :]


def read_version_file(text: str) -> str | None:
    node = _version_node(text)
    return (node.value.strip() or None) if node is not None else None


def _image_ref_pattern(project: str, exact: str | None = None) -> re.Pattern[str]:
    # `image: [registry/path/]project:tag`, quoted or not; `other_project:tag` never matches.
    # With `exact` (the target's image_name): `image: <exact>:tag` only.
    name = rf"(?<![\w./-]){re.escape(exact)}" if exact else rf"(?:\S*/)?{re.escape(project)}"
    return re.compile(rf"(image:\s*[\"']?){name}:([\w.+-]+)")


def set_image_ref(
    text: str, project: str, image: str, version: str, exact: str | None = None
) -> str:
    """Every reference's tag set to version; without `exact` its name becomes the pushed image,
    with it the name stays as the manifests write it."""
    written = exact or image
    new, count = _image_ref_pattern(project, exact).subn(
        lambda m: f"{m.group(1)}{written}:{version}", text
    )
    if count == 0:
        raise GitOpsError(f"no 'image: {exact or '.../' + project}:TAG' reference to update")
    return new


def read_image_ref(text: str, project: str, exact: str | None = None) -> str | None:
    match = _image_ref_pattern(project, exact).search(text)
    return match.group(2) if match else None
