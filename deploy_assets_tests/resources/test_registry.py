"""RegistryResource: manifest calls against a real distribution registry, ECR calls against moto's ECR API."""

import base64
import gzip
import hashlib
import io
import json
import tarfile
import uuid

import boto3
import pytest
import requests

from deploy_assets.local import stack as local_stack
from deploy_assets.resources.registry import RegistryError, RegistryResource

ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _upload_blob(host: str, name: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = requests.post(f"http://{host}/v2/{name}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    location = location if location.startswith("http") else f"http://{host}{location}"
    done = requests.put(
        location,
        params={"digest": digest},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert done.status_code == 201, done.text
    return digest


def push_image(host: str, name: str, tag: str, arch: str = "arm64") -> str:
    """Push a one-layer OCI image through the registry's HTTP API; returns the manifest digest."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        payload = f"{name} {uuid.uuid4()}".encode()  # unique bytes: a distinct image each call
        info = tarfile.TarInfo("service")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    layer = gzip.compress(tar_bytes.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes.getvalue()).hexdigest()],
            },
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _upload_blob(host, name, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _upload_blob(host, name, layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    put = requests.put(
        f"http://{host}/v2/{name}/manifests/{tag}",
        data=manifest,
        headers={"Content-Type": OCI_MANIFEST},
        timeout=10,
    )
    assert put.status_code == 201, put.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_retag_points_the_new_tag_at_the_same_manifest(registry):
    name = f"ms_core_{uuid.uuid4().hex[:8]}"
    digest = push_image(registry, name, "v0.1.0-rc.1")
    other = push_image(registry, name, "v0.0.9")
    reg = RegistryResource(host=registry)

    assert reg.manifest_digest(name, "v0.1.0-rc.1") == digest
    assert reg.manifest_digest(name, "v0.1.0") is None
    assert reg.manifest_digest(f"never_pushed_{uuid.uuid4().hex[:6]}", "v0.1.0") is None

    assert reg.retag(name, "v0.1.0-rc.1", "v0.1.0") == digest
    assert reg.manifest_digest(name, "v0.1.0") == digest
    assert reg.manifest_digest(name, "v0.1.0-rc.1") == digest
    assert reg.manifest_digest(name, "v0.0.9") == other != digest
    assert reg.manifest_platform(name, "v0.1.0") == "linux/arm64"

    # By digest, as the images asset does when it promotes a recorded build.
    assert reg.retag(name, other, "v0.0.9-copy") == other
    assert reg.manifest_digest(name, "v0.0.9-copy") == other


def test_retag_of_a_missing_source_names_it(registry):
    name = f"ms_core_{uuid.uuid4().hex[:8]}"
    push_image(registry, name, "v1.0.0-rc.1")
    with pytest.raises(RegistryError, match=rf"{name}@v1\.0\.0-rc\.2 not found \(HTTP 404\)"):
        RegistryResource(host=registry).retag(name, "v1.0.0-rc.2", "v1.0.0")
    assert RegistryResource(host=registry).manifest_digest(name, "v1.0.0") is None


def test_an_unreachable_registry_is_named():
    host = f"127.0.0.1:{local_stack.free_port()}"
    with pytest.raises(RegistryError, match=rf"registry {host} unreachable \(GET \)"):
        RegistryResource(host=host, retries=1, timeout_s=2).ping()


@pytest.fixture
def ecr(s3_server) -> RegistryResource:
    """moto serves every AWS API on one port: its ECR API stands behind the ECR host name."""
    return RegistryResource(host=ECR_HOST, ecr_endpoint_url=s3_server)


def test_ecr_host_is_recognised_and_logs_in_with_get_authorization_token(ecr, registry):
    assert ecr.is_ecr and ecr.ecr_region == "eu-west-1"
    assert not RegistryResource(host=registry).is_ecr
    assert RegistryResource(host=registry).docker_auth() is None

    user, password = ecr.ecr_credentials()

    token = boto3.client(
        "ecr", region_name="eu-west-1", endpoint_url=ecr.ecr_endpoint_url
    ).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert (user, password) == tuple(base64.b64decode(token).decode().split(":", 1))
    assert user == "AWS" and password
    assert ecr.docker_auth() == {"username": "AWS", "password": password}


def test_ecr_missing_repository_is_a_clear_error_unless_creation_is_asked(ecr, s3_server):
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=s3_server)
    with pytest.raises(RegistryError) as err:
        ecr.ensure_repository("ms_x")
    assert str(err.value) == "repository ms_x not found in ECR eu-west-1"

    name = f"ms_new_{uuid.uuid4().hex[:8]}"
    creating = RegistryResource(host=ECR_HOST, ecr_endpoint_url=s3_server, ecr_create_missing=True)
    creating.ensure_repository(name)
    creating.ensure_repository(name)  # exists now: no second create, no error
    ecr.ensure_repository(name)

    [repo] = client.describe_repositories(repositoryNames=[name])["repositories"]
    assert repo["repositoryName"] == name and repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["repositoryUri"] == f"{ECR_HOST}/{name}"
    with pytest.raises(client.exceptions.RepositoryNotFoundException):
        client.describe_repositories(repositoryNames=["ms_x"])


def test_ensure_repository_is_a_no_op_outside_ecr(registry):
    RegistryResource(host=registry, ecr_endpoint_url="http://127.0.0.1:9").ensure_repository("ms_x")


def _layer(files: dict[str, bytes]) -> bytes:
    """A gzip'd layer tar of files (a b'' value under a `.wh.` name is a whiteout)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def push_layers(host: str, name: str, tag: str, layers: list[dict[str, bytes]]) -> str:
    """Push an image of these layers (bottom first) through the HTTP API; returns its digest."""
    blobs = [_layer(files) for files in layers]
    config = json.dumps({"architecture": "arm64", "os": "linux", "config": {}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _upload_blob(host, name, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _upload_blob(host, name, blob),
                    "size": len(blob),
                }
                for blob in blobs
            ],
        }
    ).encode()
    put = requests.put(
        f"http://{host}/v2/{name}/manifests/{tag}",
        data=manifest,
        headers={"Content-Type": OCI_MANIFEST},
        timeout=10,
    )
    assert put.status_code == 201, put.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_file_sha256_reads_the_binary_from_the_topmost_layer_that_has_it(registry):
    name = f"ms_core_{uuid.uuid4().hex[:8]}"
    binary, forged = b"\x7fELF the real binary " + uuid.uuid4().bytes, b"\x7fELF other bytes"
    reg = RegistryResource(host=registry)
    sha = hashlib.sha256(binary).hexdigest()

    one = push_layers(registry, name, "one", [{"service": binary}])
    served, layer, got = reg.file_sha256(name, "one", "/service")
    assert (served, got) == (one, sha)
    assert layer == "sha256:" + hashlib.sha256(_layer({"service": binary})).hexdigest()

    # A layer above replaces the file: what runs is the top one's bytes, not the label's claim.
    over = push_layers(
        registry, name, "over", [{"service": binary}, {"etc/x": b"x", "./service": forged}]
    )
    assert reg.file_sha256(name, over, "service")[2] == hashlib.sha256(forged).hexdigest()
    # A whiteout above deletes it; a path no layer has is absent.
    gone = push_layers(registry, name, "gone", [{"service": binary}, {".wh.service": b""}])
    assert reg.file_sha256(name, gone, "/service") == (gone, "", "")
    assert reg.file_sha256(name, "one", "/cli") == (one, "", "")

    with pytest.raises(RegistryError, match=rf"{name}@never not found \(HTTP 404\)"):
        reg.file_sha256(name, "never", "/service")
