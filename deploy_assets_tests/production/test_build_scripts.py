"""The image scripts work on a machine that never ran them (no earlier code-location image).

misc/scripts/build-code-location-image.sh drops the tags of earlier builds after a build; on a
fresh machine there are none, and a `grep` finding nothing under `set -o pipefail` used to make
the script exit 1 after a successful build. Its clean-up (drop_earlier_images) runs here on its
own, sourced from the script, against real images of a repository unique to the test: the image
build itself takes minutes and is covered by test_docker_run_launcher.py.
"""

import io
import subprocess
import tarfile
import uuid
from collections.abc import Iterator

import docker
import pytest

from deploy_assets.config import REPO_ROOT

SCRIPT = REPO_ROOT / "misc" / "scripts" / "build-code-location-image.sh"


def drop_earlier_images(repository: str, keep: str) -> subprocess.CompletedProcess:
    """The script's clean-up as a build runs it: sourced, strict mode on, then the function."""
    return subprocess.run(
        [
            "bash",
            "-c",
            'set -euo pipefail; source "$1"; drop_earlier_images "$2" "$3"; echo done',
            "bash",
            str(SCRIPT),
            repository,
            keep,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def repository(docker_engine) -> Iterator[tuple[docker.DockerClient, str]]:
    """A repository name no one else uses; every tag made in it is removed afterwards."""
    client = docker.from_env(timeout=120)
    name = f"local/test-cleanup-{uuid.uuid4().hex[:12]}"
    try:
        yield client, name
    finally:
        for image in client.images.list(name=name):
            for tag in image.tags:
                client.images.remove(tag, force=True)
        client.close()


def _tiny_image(client: docker.DockerClient, repository: str, tags: list[str]) -> None:
    """One small imported image (a single file), tagged `repository:tag` for each tag."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        payload = repository.encode()
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    client.api.import_image_from_data(data.getvalue(), repository=repository, tag=tags[0])
    for tag in tags[1:]:
        client.images.get(f"{repository}:{tags[0]}").tag(repository, tag)


def _tags(client: docker.DockerClient, repository: str) -> set[str]:
    return {tag for image in client.images.list(name=repository) for tag in image.tags}


def test_cleanup_succeeds_when_the_repository_has_no_image_at_all(repository):
    client, name = repository
    done = drop_earlier_images(name, f"{name}:0123456789abcdef")
    assert (done.returncode, done.stdout.strip()) == (0, "done"), done.stderr
    assert _tags(client, name) == set()


def test_cleanup_succeeds_when_the_new_build_is_the_only_image(repository):
    """A fresh machine right after its first build: the new image and :latest, nothing older."""
    client, name = repository
    new = f"{name}:{'a' * 16}"
    _tiny_image(client, name, ["a" * 16, "latest"])
    done = drop_earlier_images(name, new)
    assert (done.returncode, done.stdout.strip()) == (0, "done"), done.stderr
    assert _tags(client, name) == {new, f"{name}:latest"}


def test_cleanup_drops_earlier_content_hash_tags_only(repository):
    client, name = repository
    new, older = "a" * 16, ["b" * 16, "0123456789abcdef"]
    _tiny_image(client, name, [new, "latest", "v1.2.3", *older])
    done = drop_earlier_images(name, f"{name}:{new}")
    assert (done.returncode, done.stdout.strip()) == (0, "done"), done.stderr
    assert _tags(client, name) == {f"{name}:{new}", f"{name}:latest", f"{name}:v1.2.3"}
