"""What goes into a service's image besides its binary: the labels that tie an image to the
bytes it holds and the release that built it, and the tag a prebuild is left under.

Shared by the binaries step (which warms the engine's build cache while go still compiles) and
the images step (which builds and pushes): both must build with exactly the same inputs, or the
images step would miss the cache the binaries step filled.
"""

from __future__ import annotations

from deploy_assets.plan import Service

CONTENT_KEY_LABEL = "io.deploy-assets.content-key"
BUILT_IN_LABEL = "io.deploy-assets.built-in"  # the release (env|tag) whose run built the image


def image_labels(service: Service, content_key: str, commit: str, partition: str) -> dict[str, str]:
    return {"org.opencontainers.image.revision": commit, "org.opencontainers.image.title": service.name,
            CONTENT_KEY_LABEL: content_key, BUILT_IN_LABEL: partition}


def prebuild_tag(content_key: str) -> str:
    """Where a staging release leaves the image of a binary only prod ships (CLIs): content-
    addressed, so it never moves, and prod retags it instead of building it."""
    return f"ck-{content_key}"
