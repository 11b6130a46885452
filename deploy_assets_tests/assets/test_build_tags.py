"""A file behind a build tag that the pipeline config's `-tags` turns on is part of the build, so
it is part of the content key: changing only that file rebuilds the service, never reuses stale bytes."""

import hashlib
import os
import re
import subprocess

import dagster as dg

from deploy_assets.assets.build_store import cache_path
from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key

MS = ["ms_chat", "ms_core", "ms_payments"]
SPECIAL = "cmd/ms/ms_core/special.go"
# The step's closing line of a go build (go_build_events.final_line), shown by the CLI too.
COMPILED = re.compile(
    r"^compile (\d+)/(\d+) packages amd64 \(\d+\.\d s\): (\d+) compiled, (\d+) found in "
    r"the compile cache$"
)


def _special(variant: str) -> str:
    """Compiled only with -tags=special: the binary prints its variant when asked."""
    return (
        '//go:build special\n\npackage main\n\nimport "os"\n\n'
        'func init() {\n\tif os.Getenv("PRINT_VARIANT") != "" {\n'
        f'\t\tos.Stdout.WriteString("{variant}\\n")\n\t\tos.Exit(0)\n\t}}\n}}\n'
    )


def _build(harness, tag: str) -> dict[str, dict]:
    """source + the binaries of a dev release of tag; returns each binary's metadata."""
    harness.monorepo.tag(tag)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [tag])
    keys = {dg.AssetKey.from_user_string(k) for k in ["source", *(f"binary/{n}" for n in MS)]}
    job = harness.defs.resolve_job_def("release_to_dev").get_subset(
        asset_selection=keys, asset_check_selection=set()
    )
    result = job.execute_in_process(
        instance=harness.instance,
        partition_key=release_partition_key("dev", tag),
        raise_on_error=False,
    )
    assert result.success
    logs = [
        e.user_message for e in harness.instance.all_logs(result.run_id) if e.step_key == "binaries"
    ]
    builds = [m for m in map(COMPILED.match, logs) if m]
    assert len(builds) <= 1  # one batched go build, or none when nothing is stale
    if builds:  # every package of the stale mains' closure: compiled now or found in GOCACHE (warm
        # across runs of the suite, so compiled may be 0)
        done, total, compiled, cached = map(int, builds[0].groups())
        assert done == total == compiled + cached and total > 100, builds[0][0]
    return {
        n: {**harness.metadata(f"binary/{n}", f"dev|{tag}"), "go_builds": len(builds)} for n in MS
    }


def _run(harness, meta: dict) -> str:
    binary = cache_path(harness.settings.cache_dir, meta["content_key_amd64"], "ms_core")
    assert hashlib.sha256(binary.read_bytes()).hexdigest() == meta["sha256_amd64"]
    return subprocess.run(
        [binary],
        env={**os.environ, "PRINT_VARIANT": "1"},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.strip()


def test_changing_only_a_tagged_file_rebuilds_the_service(harness):
    # amd64, the machine's own platform: the test runs the binaries it gets.
    harness.reload(
        harness.config.model_copy(
            update={
                "platforms": ["amd64"],
                "build_flags": [*harness.config.build_flags, "-tags=special"],
            }
        )
    )
    harness.monorepo.write(SPECIAL, _special("special-1"))
    harness.monorepo.commit("ms_core: a file behind the special tag")
    first = _build(harness, "v0.7.0-alpha.1")
    assert _run(harness, first["ms_core"]) == "special-1"
    assert first["ms_core"]["go_builds"] == 1  # the step said how its go build went

    harness.monorepo.write(SPECIAL, _special("special-2"))  # the tagged file alone changes
    harness.monorepo.commit("ms_core: change only the tagged file")
    second = _build(harness, "v0.7.0-alpha.2")

    core = second["ms_core"]
    assert core["content_key_amd64"] != first["ms_core"]["content_key_amd64"]
    assert core["sha256_amd64"] != first["ms_core"]["sha256_amd64"]
    assert core["reused_from"] == "" and core["built_in_amd64"] == "dev|v0.7.0-alpha.2"  # rebuilt
    assert _run(harness, core) == "special-2"
    for name in ("ms_chat", "ms_payments"):  # untouched services keep their bytes
        assert second[name]["content_key_amd64"] == first[name]["content_key_amd64"]
        assert second[name]["reused_from"] == "dev|v0.7.0-alpha.1"

    # An untagged change elsewhere behaves as before: only the service it belongs to is rebuilt.
    chat = harness.monorepo.clone / "cmd/ms/ms_chat/main.go"
    harness.monorepo.write("cmd/ms/ms_chat/main.go", chat.read_text() + "\n// an untagged change\n")
    harness.monorepo.commit("ms_chat: an untagged change")
    third = _build(harness, "v0.7.0-alpha.3")

    assert third["ms_chat"]["content_key_amd64"] != second["ms_chat"]["content_key_amd64"]
    assert third["ms_chat"]["reused_from"] == ""
    assert third["ms_core"]["content_key_amd64"] == core["content_key_amd64"]
    assert third["ms_core"]["sha256_amd64"] == core["sha256_amd64"]
    assert third["ms_core"]["reused_from"] == "dev|v0.7.0-alpha.2"
