"""Which run holds a release: pure decisions (no instance) on the runs in progress."""

from deploy_assets.assets.release_claim import RunningRelease, holder_of
from deploy_assets.checks.published import RecordedObject, object_mismatch, recorded_objects
from deploy_assets.resources.s3 import S3Object


def test_the_earliest_started_run_holds_the_release():
    runs = [RunningRelease("b", 10.0), RunningRelease("a", 12.0)]
    assert holder_of(runs, "b") is None
    assert holder_of(runs, "a").run_id == "b"


def test_a_tie_on_start_time_is_broken_by_run_id_the_same_way_for_both():
    runs = [RunningRelease("x", 5.0), RunningRelease("y", 5.0)]
    assert holder_of(runs, "x") is None and holder_of(runs, "y").run_id == "x"


def test_a_run_absent_from_the_list_or_without_start_time_yields_to_any_started_run():
    assert holder_of([RunningRelease("a", 1.0)], "me").run_id == "a"
    assert holder_of([RunningRelease("me", None), RunningRelease("a", 1.0)], "me").run_id == "a"
    assert holder_of([], "me") is None


def test_recorded_objects_cover_binaries_per_platform_and_single_objects():
    binary = {
        "s3_key_arm64": "p/v/x",
        "sha256_arm64": "aa",
        "size_arm64": 3,
        "s3_key_amd64": "p/v/x_amd64",
        "sha256_amd64": "bb",
        "size_amd64": 4,
        "commit": "c",
    }
    assert recorded_objects("s3/x", binary) == [
        RecordedObject("s3/x", "p/v/x_amd64", "bb", 4),
        RecordedObject("s3/x", "p/v/x", "aa", 3),
    ]
    assert recorded_objects(
        "s3/routes_json", {"s3_key": "p/v/routes.json", "sha256": "cc", "size": 9}
    ) == [RecordedObject("s3/routes_json", "p/v/routes.json", "cc", 9)]


def test_an_object_is_published_only_with_the_recorded_size_and_sha256():
    recorded = RecordedObject("s3/x", "p/v/x", "aa", 3)
    assert object_mismatch(recorded, S3Object("p/v/x", "aa", 3)) is None
    assert object_mismatch(recorded, None) == "s3/x (p/v/x) is not in the bucket"
    assert "4 bytes, not the recorded 3" in object_mismatch(recorded, S3Object("p/v/x", "aa", 4))
    assert "sha256 bb, not the recorded aa" in object_mismatch(recorded, S3Object("p/v/x", "bb", 3))
