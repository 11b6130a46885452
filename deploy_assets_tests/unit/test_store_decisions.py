"""The store decision of an S3 object, branch by branch, on what the bucket holds (given as values)."""

from deploy_assets.assets.store_decisions import (
    Store,
    StoreFacts,
    failed_cache_copy,
    needs_cache_entry,
    record_refusal,
    store_decision,
)
from deploy_assets.resources.s3 import S3Object

GOOD, BAD = "a" * 64, "b" * 64
URI = "s3://bucket/releases/v1.0.0/ms_core"
EARLIER = "releases/v1.0.0-rc.1/ms_core"
CACHE = "releases/.build-cache/ck/ms_core"


def obj(key: str, sha256: str = GOOD, size: int = 100, claimed: str = "") -> S3Object:
    return S3Object(key=key, sha256=sha256, size=size, claimed=claimed)


def decide(facts: StoreFacts):
    return store_decision(facts, URI, GOOD, 100)


def test_these_bytes_at_the_release_key_are_left_alone():
    got = decide(StoreFacts(obj("releases/v1.0.0/ms_core")))
    assert (got.how, got.action, got.source, got.reused_from) == (
        Store.ALREADY,
        "already uploaded",
        None,
        "",
    )


def test_other_bytes_at_the_release_key_are_refused_naming_both_sha256s():
    got = decide(StoreFacts(obj("releases/v1.0.0/ms_core", sha256=BAD)))
    assert got.how is Store.CONFLICT
    assert got.reason == f"{URI} exists with sha256 {BAD}, not the built {GOOD}: not overwriting"


def test_an_object_of_unknown_bytes_or_another_size_is_refused_too():
    assert decide(StoreFacts(obj("k", sha256=""))).reason.startswith(
        f"{URI} exists with sha256 unknown,"
    )
    assert decide(StoreFacts(obj("k", size=99))).how is Store.CONFLICT


def test_an_earlier_release_object_of_these_bytes_is_copied_and_named():
    earlier = obj(EARLIER)
    got = decide(StoreFacts(None, earlier, "staging|v1.0.0-rc.1", obj(CACHE)))
    assert (got.how, got.action, got.source, got.reused_from) == (
        Store.COPY_EARLIER,
        f"copied from {EARLIER}",
        earlier,
        "staging|v1.0.0-rc.1",
    )


def test_bytes_only_the_build_cache_holds_are_copied_from_it_with_no_lineage():
    cached = obj(CACHE, claimed=GOOD)
    for earlier in (None, obj(EARLIER, sha256=BAD)):
        got = decide(StoreFacts(None, earlier, "staging|v1.0.0-rc.1" if earlier else "", cached))
        assert (got.how, got.action, got.source, got.reused_from) == (
            Store.COPY_CACHE,
            f"copied from the build cache {CACHE}",
            cached,
            "",
        )


def test_a_cache_entry_that_is_not_these_bytes_or_contradicts_itself_means_an_upload():
    for cached in (None, obj(CACHE, sha256=BAD), obj(CACHE, size=1), obj(CACHE, claimed=BAD)):
        got = decide(StoreFacts(None, None, "", cached))
        assert (got.how, got.action, got.source) == (Store.UPLOAD, "uploaded 100 bytes", None)


def test_the_cache_is_asked_only_when_no_earlier_object_has_these_bytes():
    assert needs_cache_entry(None, GOOD)
    assert needs_cache_entry(obj(EARLIER, sha256=BAD), GOOD)
    assert not needs_cache_entry(obj(EARLIER), GOOD)


def test_a_refused_copy_of_a_good_entry_is_a_failure_and_of_a_bad_one_an_upload():
    assert failed_cache_copy((GOOD, 100), GOOD, 100, f"s3://bucket/{CACHE}", "ms_core") is None
    warning = failed_cache_copy((BAD, 100), GOOD, 100, f"s3://bucket/{CACHE}", "ms_core")
    assert warning == (
        f"s3://bucket/{CACHE} holds sha256 {BAD}, not the built {GOOD}: uploading ms_core instead"
    )
    assert failed_cache_copy((GOOD, 99), GOOD, 100, f"s3://bucket/{CACHE}", "ms_core") is not None


def test_a_record_object_of_other_bytes_is_refused_saying_what_to_do():
    message = record_refusal("s3://bucket/releases/v1.0.0/routes.json", (BAD, 10), GOOD, 12)
    assert message.startswith(
        f"s3://bucket/releases/v1.0.0/routes.json already holds sha256 {BAD} (10 bytes); "
        f"this run would write sha256 {GOOD} (12 bytes)"
    )
    assert "Release a new tag, or remove the object on purpose" in message
