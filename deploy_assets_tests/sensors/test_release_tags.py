"""The tag sensor against real git repositories: a bare remote, a clone, tags pushed with git."""

import logging
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME
from deploy_assets.config import Settings, load_pipeline_config
from deploy_assets.definitions import build_definitions
from deploy_assets.resources.git import GitSourceResource, run_git
from deploy_assets.sensors.release_tags import SENSOR_NAME, decode_cursor, encode_cursor


class Remote:
    """A bare repo standing in for the monorepo's remote, and a clone that pushes to it."""

    def __init__(self, root: Path):
        self.bare, self.clone = root / "remote.git", root / "clone"
        run_git(["init", "--quiet", "--bare", "--initial-branch=main", str(self.bare)])
        run_git(["init", "--quiet", "--initial-branch=main", str(self.clone)])
        run_git(["remote", "add", "origin", str(self.bare)], cwd=self.clone)
        self.commit("first")

    def commit(self, message: str) -> str:
        run_git(["commit", "--quiet", "--allow-empty", "-m", message], cwd=self.clone)
        run_git(["push", "--quiet", "origin", "main"], cwd=self.clone)
        return run_git(["rev-parse", "HEAD"], cwd=self.clone).decode().strip()

    def tag(
        self, name: str, annotated: bool = False, ref: str = "HEAD", force: bool = False
    ) -> None:
        args = [
            "tag",
            *(["-f"] if force else []),
            *(["-a", "-m", f"release {name}"] if annotated else []),
            "--",
            name,
            ref,
        ]
        run_git(args, cwd=self.clone)
        run_git(
            ["push", "--quiet", *(["--force"] if force else []), "origin", f"refs/tags/{name}"],
            cwd=self.clone,
        )


class Ticks:
    """Evaluates the code location's sensor the way the daemon does, carrying the cursor."""

    def __init__(self, remote: str, tmp_path: Path):
        settings = Settings.from_env(
            {
                "DEPLOY_ASSETS_SOURCE_REPO": remote,
                "DEPLOY_ASSETS_CACHE_DIR": str(tmp_path / "cache"),
                "DEPLOY_ASSETS_LOCAL_DIR": str(tmp_path / "local"),
            }
        )
        self.defs = build_definitions(settings, load_pipeline_config(), services=[])
        self.sensor = self.defs.resolve_sensor_def(SENSOR_NAME)
        self.cursor: str | None = None
        self.logged: list[logging.LogRecord] = []

    def tick(self):
        handler = _Collect(self.logged)
        with dg.build_sensor_context(
            cursor=self.cursor, definitions=self.defs, resources=dict(self.defs.resources)
        ) as context:
            context.log.addHandler(handler)
            result = self.sensor(context)
        if isinstance(result, dg.SensorResult) and result.cursor:
            self.cursor = result.cursor
        return result

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.logged if r.levelno >= level]


class _Collect(logging.Handler):
    def __init__(self, sink: list):
        super().__init__()
        self.sink = sink

    def emit(self, record):
        self.sink.append(record)


@pytest.fixture
def remote(tmp_path) -> Remote:
    return Remote(tmp_path)


@pytest.fixture
def ticks(remote, tmp_path) -> Ticks:
    return Ticks(str(remote.bare), tmp_path)


def test_the_first_tick_takes_existing_tags_as_a_baseline(remote, ticks):
    head = remote.commit("second")
    for tag in ("v0.1.0-alpha.1", "v0.1.0-rc.1"):
        remote.tag(tag)
    remote.tag("v0.1.0", annotated=True)
    result = ticks.tick()
    assert isinstance(result, dg.SensorResult)
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert result.skip_reason.skip_message == "baseline of 3 tags"
    assert decode_cursor(result.cursor) == {
        "v0.1.0-alpha.1": head,
        "v0.1.0-rc.1": head,
        "v0.1.0": head,
    }
    assert (
        "first tick: recorded 3 existing tags as the baseline, launching nothing"
        in ticks.messages()
    )

    again = ticks.tick()
    assert isinstance(again, dg.SkipReason) and again.skip_message == "no new tags among 3"


def test_a_new_release_tag_requests_its_env_job_and_partition(remote, ticks):
    remote.tag("v0.1.0-alpha.1")
    ticks.tick()
    commit = remote.commit("feature")
    remote.tag("v0.2.0-alpha.1")
    remote.tag("v0.2.0-rc.1", annotated=True)
    result = ticks.tick()
    assert [
        (r.run_key, r.job_name, r.partition_key, r.tags["deploy_assets/commit"])
        for r in result.run_requests
    ] == [
        (f"v0.2.0-alpha.1@{commit}", "release_to_dev", "dev|v0.2.0-alpha.1", commit),
        (f"v0.2.0-rc.1@{commit}", "release_to_staging", "staging|v0.2.0-rc.1", commit),
    ]
    assert isinstance(result.run_requests[0].partition_key, dg.MultiPartitionKey)
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == VERSION_PARTITIONS_NAME
    assert list(add.partition_keys) == ["v0.2.0-alpha.1", "v0.2.0-rc.1"]
    for request in result.run_requests:
        ticks.defs.resolve_job_def(request.job_name)  # the job exists in the code location
    assert isinstance(ticks.tick(), dg.SkipReason)  # requested once, not every tick


def test_annotated_and_lightweight_tags_both_resolve_to_the_commit(remote, ticks, tmp_path):
    commit = remote.commit("tagged")
    remote.tag("v1.0.0-rc.1")
    remote.tag("v1.0.0-rc.2", annotated=True)
    tag_object = run_git(["rev-parse", "v1.0.0-rc.2"], cwd=remote.clone).decode().strip()
    assert tag_object != commit
    git = GitSourceResource(remote=str(remote.bare), cache_dir=str(tmp_path / "cache"))
    assert git.ls_remote_tags() == {"v1.0.0-rc.1": commit, "v1.0.0-rc.2": commit}


def test_a_rejected_tag_launches_nothing_and_is_reported_once(remote, ticks):
    ticks.tick()
    remote.tag("v1.0.0-rc1")
    result = ticks.tick()
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    reason = "tag 'v1.0.0-rc1' pre-release 'rc1' is not alpha.N, beta.N or rc.N"
    assert reason in result.skip_reason.skip_message
    assert [m for m in ticks.messages(logging.WARNING) if "v1.0.0-rc1" in m] == [
        f"rejected tag: {reason}; "
        "release tags are vX.Y.Z-alpha.N / vX.Y.Z-beta.N (dev), vX.Y.Z-rc.N (staging), vX.Y.Z (prod)"
    ]
    ticks.logged.clear()
    assert isinstance(ticks.tick(), dg.SkipReason)
    assert not any("v1.0.0-rc1" in m for m in ticks.messages())


def test_a_moved_tag_is_never_released_again_and_reported_loudly(remote, ticks):
    ticks.tick()
    first = remote.commit("released")
    remote.tag("v0.3.0-alpha.1")
    assert [r.run_key for r in ticks.tick().run_requests] == [f"v0.3.0-alpha.1@{first}"]
    moved_to = remote.commit("after the release")
    remote.tag("v0.3.0-alpha.1", force=True)
    result = ticks.tick()
    assert result.run_requests == []
    assert "tag 'v0.3.0-alpha.1' MOVED" in result.skip_reason.skip_message
    errors = [r for r in ticks.logged if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"tag 'v0.3.0-alpha.1' MOVED from {first[:12]} to {moved_to[:12]}: a released tag must not move; "
        "not releasing it again. Create a new tag instead."
    ]
    ticks.logged.clear()
    assert isinstance(ticks.tick(), dg.SkipReason) and ticks.messages(logging.ERROR) == []


@pytest.mark.parametrize(
    "remote_url", ["{tmp}/no-such-repo.git", "http://127.0.0.1:{port}/monorepo.git"]
)
def test_an_unreachable_remote_is_a_skip_with_the_error(tmp_path, remote_url):
    from deploy_assets.local.stack import free_port

    url = remote_url.format(tmp=tmp_path, port=free_port())
    ticks = Ticks(url, tmp_path)
    ticks.cursor = encode_cursor({"v0.1.0-alpha.1": "c" * 40})
    result = ticks.tick()
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith(
        f"source remote {url} unreachable: git ls-remote --tags failed: "
    )
    assert (
        "does not appear to be a git repository" in result.skip_message
        or "Failed to connect to 127.0.0.1" in result.skip_message
    )
    assert decode_cursor(ticks.cursor) == {"v0.1.0-alpha.1": "c" * 40}  # the cursor is kept


def test_hostile_tag_names_launch_nothing_and_run_nothing(remote, ticks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ticks.tick()
    hostile = [
        "v1.0.0;touch${IFS}pwned1",
        "v1.0.0$(touch${IFS}pwned2)",
        "v1.0.0`touch${IFS}pwned3`",
        "v1.0.0|touch${IFS}pwned4",
        "v1.0.0&&touch${IFS}pwned5",
        "v1.0.0-rc.1;touch_x",
    ]
    for name in hostile:
        remote.tag(name)
    result = ticks.tick()
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert sorted(decode_cursor(result.cursor)) == sorted(hostile)
    for name in hostile:
        assert f"rejected: tag {name!r} contains characters" in result.skip_reason.skip_message
    assert list(tmp_path.rglob("pwned*")) == [] and list(tmp_path.rglob("touch_x")) == []


def test_an_unreadable_cursor_means_a_new_baseline_not_a_flood(remote, ticks):
    commit = remote.commit("tagged")
    remote.tag("v0.1.0-alpha.1")
    ticks.cursor = "z:not-base64-zlib"
    result = ticks.tick()
    assert result.run_requests == []
    assert decode_cursor(result.cursor) == {"v0.1.0-alpha.1": commit}
    assert any(m.startswith("unreadable cursor") for m in ticks.messages(logging.ERROR))


def test_many_rejected_tags_keep_the_skip_reason_short(remote, ticks):
    ticks.tick()
    names = [f"build-{n:02d}" for n in range(15)]
    for name in names:
        run_git(["tag", name], cwd=remote.clone)
    run_git(["push", "--quiet", "origin", "--tags"], cwd=remote.clone)
    result = ticks.tick()
    assert result.run_requests == []
    assert result.skip_reason.skip_message.count("rejected: ") == 10
    assert result.skip_reason.skip_message.endswith("; and 5 more (see the tick's log)")
    assert (
        len(
            [
                m
                for m in ticks.messages(logging.WARNING)
                if m.startswith("rejected tag: tag 'build-")
            ]
        )
        == 15
    )
