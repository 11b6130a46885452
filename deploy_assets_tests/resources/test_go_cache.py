"""The shared Go compile cache on the real S3 API (moto) and the real go: what a fresh worker's build
compiles after a restore (counted in `go build -x`), and each fault: a corrupted archive, a bucket
that cannot be reached, two workers saving at once, the size cap."""

import hashlib
import os
import re
import subprocess
import tarfile
import threading
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from deploy_assets.resources.go import GoResource, default_go_binary
from deploy_assets.resources.go_cache import (
    MB,
    SharedGoCache,
    cache_entries,
    compile_cache_key,
    marker,
)
from deploy_assets.resources.s3 import S3Resource
from deploy_assets_tests.stack_fixtures import S3_TEST_REGION

FLAGS = ["-trimpath", "-buildvcs=false"]
MAINS = ("alpha", "beta", "gamma")
COMPILE = re.compile(r"/compile -o \S+ .*?-p (\S+) ")
KEY = compile_cache_key("go1.24", "amd64", FLAGS, b"")


class Log:
    """What a step's context.log would have shown (after the lines' common 'go compile cache: ')."""

    def __init__(self):
        self.infos, self.warnings = [], []

    def info(self, text: str) -> None:
        self.infos.append(text.removeprefix("go compile cache: "))

    def warning(self, text: str) -> None:
        self.warnings.append(text.removeprefix("go compile cache: "))


def write_module(root: Path) -> Path:
    """Three mains over one shared package and a slice of the standard library."""
    (root / "shared").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/cachetest\n\ngo 1.24\n")
    (root / "shared" / "shared.go").write_text(
        'package shared\n\nimport (\n\t"encoding/json"\n\t"fmt"\n)\n\n'
        'func Render(name string) string { b, _ := json.Marshal(map[string]string{"n": name}); '
        'return fmt.Sprintf("%s %s", name, b) }\n'
    )
    for name in MAINS:
        write_main(root, name, name)
    return root


def write_main(root: Path, name: str, text: str) -> None:
    folder = root / "cmd" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.go").write_text(
        'package main\n\nimport (\n\t"os"\n\n\t"example.com/cachetest/shared"\n)\n\n'
        f'func main() {{ os.Stdout.WriteString(shared.Render("{text}")) }}\n'
    )


def build(module: Path, gocache: Path, out: Path) -> list[str]:
    """`go build -x` of every main with GoResource's environment: the packages go compiled."""
    go = GoResource(cache_dir=str(gocache.parent))
    assert go.gocache() == gocache
    proc = subprocess.run(
        [default_go_binary(), "build", "-x", *FLAGS, "-o", f"{out}{os.sep}", "./cmd/..."],
        cwd=module,
        env=go.env("amd64"),
        capture_output=True,
        text=True,
        check=True,
    )
    return COMPILE.findall(proc.stderr)


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}


def new_bucket(endpoint: str) -> S3Resource:
    s3 = S3Resource(
        bucket=f"t-{uuid.uuid4().hex[:12]}", endpoint_url=endpoint, region=S3_TEST_REGION
    )
    s3.ensure_bucket()
    return s3


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, s3_server):
    """A cold build of the module into GOCACHE A, saved as KEY: (s3, module, out A, GOCACHE A, cold compiles)."""
    root = tmp_path_factory.mktemp("seeded")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("DEPLOY_ASSETS_GOCACHE", raising=False)  # not the suite's warm cache
        module, gocache, s3 = (
            write_module(root / "module"),
            root / "a" / "go-build",
            new_bucket(s3_server),
        )
        cache, log = SharedGoCache(s3, "go-build-cache", 1024), Log()
        with cache.session(gocache, KEY, log):
            compiled = build(module, gocache, root / "out-a")
        assert not log.warnings and log.infos[-1].startswith("saved"), log.infos
        yield s3, module, root / "out-a", gocache, compiled


@pytest.fixture(autouse=True)
def own_gocache(monkeypatch):
    monkeypatch.delenv("DEPLOY_ASSETS_GOCACHE", raising=False)


@pytest.fixture
def prefix(seeded) -> str:
    """A prefix of this test alone holding the seeded archive (a save here replaces it)."""
    s3, own = seeded[0], f"t-{uuid.uuid4().hex[:8]}"
    s3.copy(f"go-build-cache/{KEY}.tgz", f"{own}/{KEY}.tgz")
    return own


def test_a_fresh_worker_restored_from_the_bucket_compiles_only_the_changed_main(
    seeded, prefix, tmp_path
):
    s3, module, out_a, _, cold = seeded
    assert (
        len(cold) > 30 and "fmt" in cold
    )  # the standard library was compiled once, by the seeding build
    changed = tmp_path / "module"
    write_module(changed)
    write_main(changed, "beta", "beta v2")
    gocache, log = tmp_path / "b" / "go-build", Log()
    with SharedGoCache(s3, prefix, 1024, resave_fraction=0).session(gocache, KEY, log):
        compiled = build(changed, gocache, tmp_path / "out-b")

    assert compiled == ["main"]  # cmd/beta's package main: nothing else was compiled
    assert log.infos[0].startswith("restored ") and not log.warnings
    a, b = digests(out_a), digests(tmp_path / "out-b")
    assert a["alpha"] == b["alpha"] and a["gamma"] == b["gamma"] and a["beta"] != b["beta"]
    assert log.infos[-1].startswith("saved ")  # the new entries (beta's main) go back to the bucket


def test_a_small_change_to_a_stored_archive_is_not_uploaded_again(seeded, prefix, tmp_path):
    s3, *_ = seeded
    changed = tmp_path / "module"
    write_module(changed)
    write_main(changed, "beta", "beta v3")
    gocache, log = tmp_path / "b" / "go-build", Log()
    before = s3.head(f"{prefix}/{KEY}.tgz")
    with SharedGoCache(s3, prefix, 1024).session(gocache, KEY, log):
        assert build(changed, gocache, tmp_path / "out-b") == ["main"]
    assert log.infos[-1].startswith("save skipped: ") and "at most 10%" in log.infos[-1], log.infos
    assert s3.head(f"{prefix}/{KEY}.tgz").etag == before.etag  # the stored archive was not replaced


def test_a_second_restore_downloads_nothing_and_a_build_of_nothing_new_saves_nothing(
    seeded, prefix, tmp_path
):
    s3, module, *_ = seeded
    cache, gocache, log = SharedGoCache(s3, prefix, 1024), tmp_path / "go-build", Log()
    assert cache.restore(gocache, KEY, log).startswith("restored ")
    with cache.session(gocache, KEY, log):
        assert build(module, gocache, tmp_path / "out") == []

    assert log.infos[1].startswith("already holds ") and "nothing downloaded" in log.infos[1]
    assert log.infos[2].startswith("save skipped: ") and "added 0.0 MB" in log.infos[2], log.infos


def test_an_archive_holds_only_the_entries_its_build_used(seeded, prefix, tmp_path):
    """Restored entries look two hours old; a build of one main refreshes only what it used."""
    s3, module, _, seeded_cache, _ = seeded
    cache, gocache, log = SharedGoCache(s3, prefix, 1024), tmp_path / "go-build", Log()
    with cache.session(gocache, compile_cache_key("go1.24", "amd64", FLAGS, b"one main"), log):
        subprocess.run(
            [default_go_binary(), "build", *FLAGS, "-o", str(tmp_path / "alpha"), "./cmd/alpha"],
            cwd=module,
            env=GoResource(cache_dir=str(tmp_path)).env("amd64"),
            check=True,
        )

    assert (
        "from s3://" in log.infos[0] and KEY in log.infos[0]
    )  # borrowed: go.sum differs, same family
    saved = stored_members(
        s3, f"{prefix}/" + compile_cache_key("go1.24", "amd64", FLAGS, b"one main") + ".tgz"
    )
    assert 0 < len(saved) < len(cache_entries(seeded_cache))
    assert saved <= {e.rel for e in cache_entries(gocache)}


def test_a_build_of_a_few_mains_saving_the_archive_it_restored_keeps_its_entries(
    seeded, prefix, tmp_path
):
    """A prebuild of two lambdas, or a one-change release, must not shrink the shared archive to
    its own working set: the next fresh worker would compile everything else again."""
    s3 = seeded[0]
    before = stored_members(s3, f"{prefix}/{KEY}.tgz")
    changed = tmp_path / "module"
    write_module(changed)
    write_main(changed, "beta", "beta v4")
    gocache, log = tmp_path / "go-build", Log()
    with SharedGoCache(s3, prefix, 1024, resave_fraction=0).session(gocache, KEY, log):
        subprocess.run(
            [default_go_binary(), "build", *FLAGS, "-o", str(tmp_path / "beta"), "./cmd/beta"],
            cwd=changed,
            env=GoResource(cache_dir=str(tmp_path)).env("amd64"),
            check=True,
        )
    assert log.infos[-1].startswith("saved "), log.infos
    assert before <= stored_members(s3, f"{prefix}/{KEY}.tgz")


def stored_members(s3: S3Resource, key: str) -> set[str]:
    body = client(s3).get_object(Bucket=s3.bucket, Key=key)["Body"]
    with tarfile.open(fileobj=body, mode="r|*") as tar:
        return {m.name for m in tar}


def client(s3: S3Resource):
    """A plain client: it takes moto's composite checksum of a multipart archive for no checksum."""
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        config=Config(response_checksum_validation="when_required"),
    )


def test_a_corrupted_archive_is_never_used_and_the_build_is_cold(seeded, prefix, tmp_path):
    s3, module, _, _, cold = seeded
    object_key = f"{prefix}/{KEY}.tgz"
    head = client(s3).head_object(Bucket=s3.bucket, Key=object_key)
    real = client(s3).get_object(Bucket=s3.bucket, Key=object_key)["Body"].read()
    bad = (
        real[: len(real) // 2]
        + bytes(b ^ 0xFF for b in real[len(real) // 2 : len(real) // 2 + 4096])
        + real[len(real) // 2 + 4096 :]
    )  # other bytes, same size and the same recorded sha256
    corrupt = new_bucket(s3.endpoint_url)
    client(s3).put_object(
        Bucket=corrupt.bucket, Key=object_key, Body=bad, Metadata=head["Metadata"]
    )

    gocache, log = tmp_path / "go-build", Log()
    with SharedGoCache(corrupt, prefix, 1024).session(gocache, KEY, log):
        assert cache_entries(gocache) == []  # nothing of it was extracted
        assert sorted(build(module, gocache, tmp_path / "out")) == sorted(cold)  # a cold build

    warning = log.warnings[0]
    assert object_key in warning and head["Metadata"]["sha256"] in warning
    assert hashlib.sha256(bad).hexdigest() in warning and "not used" in warning
    assert not list((gocache / ".shared-cache").glob("tmp-*"))


def test_an_unreachable_bucket_is_a_warning_and_the_build_goes_on(seeded, prefix, tmp_path):
    _, module, out_a, seeded_cache, _ = seeded
    down = S3Resource(bucket="app-artifacts", endpoint_url="http://127.0.0.1:9", max_attempts=1)
    gocache, log = tmp_path / "go-build", Log()
    with SharedGoCache(down, "go-build-cache", 1024).session(gocache, KEY, log):
        build(module, gocache, tmp_path / "out")

    assert digests(tmp_path / "out") == digests(out_a)
    assert len(log.warnings) == 2 and all("127.0.0.1:9" in w for w in log.warnings)
    assert log.warnings[0].startswith("not restored") and "cold build" in log.warnings[0]
    assert log.warnings[1].startswith("not saved")


def test_two_workers_saving_at_once_leave_one_whole_archive(seeded, prefix, tmp_path):
    s3, module, _, seeded_cache, _ = seeded
    key = compile_cache_key("go1.24", "amd64", FLAGS, b"two workers")
    caches, logs = [], []
    for n in range(
        2
    ):  # two workers, each restored from the seeded archive and built a different change
        changed, gocache, log = tmp_path / f"module{n}", tmp_path / f"w{n}" / "go-build", Log()
        write_module(changed)
        write_main(changed, "gamma", f"worker {n}")
        SharedGoCache(s3, prefix, 1024).restore(gocache, key, log)
        build(changed, gocache, tmp_path / f"out{n}")
        caches.append(gocache)
        logs.append(log)
    start = threading.Barrier(2)

    def save(n: int) -> None:
        start.wait()
        SharedGoCache(s3, prefix, 1024).save(caches[n], key, 0.0, logs[n])

    workers = [threading.Thread(target=save, args=(n,)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert all(log.infos[-1].startswith("saved ") for log in logs), [
        log.infos + log.warnings for log in logs
    ]
    members = stored_members(s3, f"{prefix}/{key}.tgz")
    assert members in (
        {e.rel for e in cache_entries(c)} for c in caches
    )  # one writer's archive, whole
    fresh, log = tmp_path / "fresh" / "go-build", Log()
    assert SharedGoCache(s3, prefix, 1024).restore(fresh, key, log).startswith("restored ")
    assert not log.warnings and {e.rel for e in cache_entries(fresh)} == members


def test_the_archive_holds_at_most_the_cap_newest_entries_first(seeded, prefix, tmp_path):
    s3, _, _, seeded_cache, _ = seeded
    key, log = compile_cache_key("go1.24", "amd64", FLAGS, b"capped"), Log()
    entries = cache_entries(seeded_cache)
    assert sum(e.size for e in entries) > 3 * MB
    SharedGoCache(s3, prefix, 2).save(seeded_cache, key, 0.0, log)

    members = stored_members(s3, f"{prefix}/{key}.tgz")
    sizes = {e.rel: e for e in entries}
    assert sum(sizes[m].size for m in members) <= 2 * MB and members
    newest_left_out = max(e.mtime for e in entries if e.rel not in members)
    assert min(sizes[m].mtime for m in members) >= newest_left_out
    assert "left out" in log.warnings[0] and "compile_cache_max_mb" in log.warnings[0]
    assert marker(
        seeded_cache,
        client(s3).head_object(Bucket=s3.bucket, Key=f"{prefix}/{key}.tgz")["Metadata"]["sha256"],
    ).exists()
