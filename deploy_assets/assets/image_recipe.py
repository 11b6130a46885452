"""What goes into a service's image besides its binary: the labels that tie an image to the
bytes it holds and the release that built it, and the content-addressed tag it is first pushed under.

Shared by the binaries step (which builds and pushes each image under its content-key tag while go
still compiles) and the images step (which puts the release tag on it, or builds it itself): an
image is only ever retagged when its content-key label matches the binary the release built.
"""

from __future__ import annotations

from deploy_assets.plan import Service

CONTENT_KEY_LABEL = "io.deploy-assets.content-key"
BUILT_IN_LABEL = "io.deploy-assets.built-in"  # the release (env|tag) whose run built the image


def image_labels(service: Service, content_key: str, commit: str, partition: str) -> dict[str, str]:
    return {"org.opencontainers.image.revision": commit, "org.opencontainers.image.title": service.name,
            CONTENT_KEY_LABEL: content_key, BUILT_IN_LABEL: partition}


def prebuild_tag(content_key: str) -> str:
    """Where an image waits for its release tag: pushed during the build, or left by staging for
    a binary only prod ships (CLIs). Content-addressed, so it never moves."""
    return f"ck-{content_key}"
