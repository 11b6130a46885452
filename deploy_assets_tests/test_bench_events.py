"""The bench's counters read real runs: `fresh_promotion_go_builds` and the one-change cases
count the binaries `go build` produced from the run's own materializations, so a wrong count
would pass a promotion that rebuilt everything, or fail one that built nothing.
"""

from misc.bench import fresh
from misc.bench.events import go_builds, launch_timings


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
    assert one["go_builds"] == built["go_builds"] // len(
        services
    )  # one per platform, for one service

    times = launch_timings(harness.instance, changed.run_id)
    assert times["created"] <= times["started"] <= times["ended"]
