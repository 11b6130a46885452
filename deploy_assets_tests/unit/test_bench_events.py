"""How the bench counts a run's Go builds from what the release recorded (the counting against a
real release: deploy_assets_tests/test_bench_events.py)."""

from misc.bench.events import _count_built


def test_the_counter_reads_build_origins_and_falls_back_to_the_building_partition():
    # build_<platform>: what a release records since the bucket build cache.
    recorded = {
        "sha256_arm64": "a",
        "sha256_amd64": "b",
        "build_arm64": "built",
        "build_amd64": "bucket cache",
    }
    assert _count_built(recorded, "dev|v1.0.0-alpha.1") == (1, "build_")
    # Before it: the cache entry names the partition that built it.
    older = {"sha256_arm64": "a", "built_in_arm64": "dev|v1.0.0-alpha.1"}
    assert _count_built(older, "dev|v1.0.0-alpha.1") == (1, "built_in_")
    assert _count_built(older, "prod|v1.0.0") == (0, "built_in_")
