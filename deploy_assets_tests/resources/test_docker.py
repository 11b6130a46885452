"""Service images from the engine's two builders: BuildKit (the default) must give the image the
classic builder gives (same layer bytes, platform, entrypoint, ports, labels), and fail as
clearly, leaving no image under the tag."""

import hashlib
import io
import tarfile
import uuid
from pathlib import Path

import docker
import pytest

from deploy_assets.config import DOCKERFILES_DIR
from deploy_assets.resources.docker import DockerEngineError, DockerResource, buildkit_refusal

LABELS = {
    "org.opencontainers.image.title": "ms_core",
    "io.deploy-assets.content-key": "k" * 64,
    "with space": "a b=c",
}


@pytest.fixture
def binary(tmp_path) -> Path:
    """Bytes that stand for a service binary; read-only, as the build cache keeps them."""
    path = tmp_path / "ms_core"
    path.write_bytes(uuid.uuid4().bytes * 50_000)  # 800 kB, unique per test: no builder cache hit
    path.chmod(0o444)
    return path


def _layer_files(engine: docker.DockerClient, ref: str) -> dict[str, tuple[int, str]]:
    """name: (mode, sha256) of every file in the image's one layer, read back from the engine."""
    saved = io.BytesIO(b"".join(engine.images.get(ref).save()))
    with tarfile.open(fileobj=saved) as image:
        layers = [m for m in image.getmembers() if m.name.endswith("layer.tar")]
        assert len(layers) == 1, [m.name for m in image.getmembers()]
        with tarfile.open(fileobj=image.extractfile(layers[0])) as layer:
            return {
                m.name: (m.mode & 0o7777, hashlib.sha256(layer.extractfile(m).read()).hexdigest())
                for m in layer.getmembers()
                if m.isfile()
            }


def test_buildkit_builds_the_image_the_classic_builder_builds(docker_engine, binary):
    engine = docker.from_env()
    run = uuid.uuid4().hex[:8]
    refs = {}
    for builder in ("buildkit", "classic"):
        refs[builder] = f"deploy-assets-test/builders:{builder}-{run}"
        image_id = DockerResource(builder=builder).build_image(
            binary, DOCKERFILES_DIR / "ms.Dockerfile", "arm64", refs[builder], LABELS
        )
        assert engine.images.get(refs[builder]).id == image_id
    try:
        attrs = {b: engine.images.get(ref).attrs for b, ref in refs.items()}
        for builder, image in attrs.items():
            assert (image["Os"], image["Architecture"]) == ("linux", "arm64"), builder
            assert image["Config"]["Entrypoint"] == ["/service"], builder
            assert image["Config"]["ExposedPorts"] == {"8080/tcp": {}}, builder
            assert image["Config"]["Labels"] == LABELS, builder
        # One layer, the same bytes: a registry holding either stores one blob.
        assert attrs["buildkit"]["RootFS"] == attrs["classic"]["RootFS"]
        expected = hashlib.sha256(binary.read_bytes()).hexdigest()
        assert _layer_files(engine, refs["buildkit"]) == {"service": (0o755, expected)}
    finally:
        for ref in refs.values():
            engine.images.remove(ref, force=True)


@pytest.mark.parametrize(
    "template, cause",
    [
        ("FROM scratch\nCOPY not-in-context /x\n", '"/not-in-context" not found'),
        ("FROM scratch\nCOPY service /service\nFROBNICATE 1\n", "unknown instruction: FROBNICATE"),
    ],
)
def test_buildkit_failure_names_the_image_and_the_cause_and_tags_nothing(
    docker_engine, binary, tmp_path, template, cause
):
    dockerfile = tmp_path / "broken.Dockerfile"
    dockerfile.write_text(template)
    ref = f"deploy-assets-test/broken:{uuid.uuid4().hex[:8]}"

    with pytest.raises(DockerEngineError) as failure:
        DockerResource().build_image(binary, dockerfile, "arm64", ref, LABELS)

    assert str(failure.value).startswith(f"docker build of {ref} failed: ")
    assert cause in str(failure.value)
    with pytest.raises(docker.errors.ImageNotFound):
        docker.from_env().images.get(ref)


def test_missing_template_is_refused_before_the_engine_is_asked(binary, tmp_path):
    # No engine at this address: the template is checked first.
    resource = DockerResource(base_url=f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(
        DockerEngineError, match=r"Dockerfile template .*gone.Dockerfile does not exist"
    ):
        resource.build_image(binary, tmp_path / "gone.Dockerfile", "arm64", "x/y:z", {})


def test_engine_that_cannot_run_buildkit_is_named_with_the_way_out(docker_engine):
    assert DockerResource().ping()  # this engine can: no refusal
    assert buildkit_refusal(docker.from_env().version()) is None
    # What older or Windows engines answer on /version (their fields, not a stand-in engine).
    assert buildkit_refusal({"ApiVersion": "1.38", "Os": "linux"}) == (
        "speaks API 1.38, BuildKit builds need 1.39 (Docker 18.09) or later"
    )
    assert buildkit_refusal({"ApiVersion": "1.41", "Os": "windows"}) == (
        "runs on windows, BuildKit builds need a Linux engine"
    )
    assert buildkit_refusal({"ApiVersion": "1.40", "Os": "linux"}) is None
