"""The bench's counters read real runs: `fresh_promotion_go_builds` and the one-change cases
count the binaries `go build` produced from the run's own materializations, so a wrong count
would pass a promotion that rebuilt everything, or fail one that built nothing.
"""

from misc.bench import fresh
from misc.bench.events import _count_built, go_builds, launch_timings


def test_go_builds_counts_what_the_run_built_and_nothing_a_later_run_reused(harness):
    first = harness.release("v0.1.0-alpha.1")
    assert first.success, first.error
    built = go_builds(harness.instance, first.run_id)
    services = {key.split("/")[-1] for key in built["built"]}
    assert {"ms_chat", "ms_core", "ms_payments"} <= services and built["go_builds"] >= len(services)

    again = harness.release("v0.1.0-alpha.2")  # same commit: every binary found by its content key
    assert again.success, again.error
    assert go_builds(harness.instance, again.run_id)["go_builds"] == 0

    fresh.one_change_commit(harness.monorepo.clone, "cmd/ms/ms_chat", 1)
    changed = harness.release("v0.1.0-alpha.3")
    assert changed.success, changed.error
    one = go_builds(harness.instance, changed.run_id)
    assert [key.split("/")[-1] for key in one["built"]] == ["ms_chat"], one
    assert one["go_builds"] == built["go_builds"] // len(services)  # one per platform, for one service

    times = launch_timings(harness.instance, changed.run_id)
    assert times["created"] <= times["started"] <= times["ended"]


def test_the_counter_reads_build_origins_and_falls_back_to_the_building_partition():
    # build_<platform>: what a release records since the bucket build cache.
    recorded = {"sha256_arm64": "a", "sha256_amd64": "b", "build_arm64": "built", "build_amd64": "bucket cache"}
    assert _count_built(recorded, "dev|v1.0.0-alpha.1") == (1, "build_")
    # Before it: the cache entry names the partition that built it.
    older = {"sha256_arm64": "a", "built_in_arm64": "dev|v1.0.0-alpha.1"}
    assert _count_built(older, "dev|v1.0.0-alpha.1") == (1, "built_in_")
    assert _count_built(older, "prod|v1.0.0") == (0, "built_in_")
