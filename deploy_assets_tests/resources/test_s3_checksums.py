"""What a HeadObject response says the bytes are: AWS's documented forms and moto's, as literals.

The responses below are shaped as each server answers (HeadObject with ChecksumMode ENABLED, and
HeadObject PartNumber=1 for the part count); the digests are of bytes made here.
"""

import base64
import hashlib

import pytest

from deploy_assets.resources.s3_checksums import (
    MULTIPART_CHUNKSIZE,
    Checksum,
    b64,
    multipart_checksum,
    needs_part_count,
    part_size,
    reported_checksum,
    verdict,
    with_part_count,
)

BYTES = b"the built binary" * 1000
SHA256 = hashlib.sha256(BYTES).hexdigest()
OTHER = hashlib.sha256(b"other bytes").hexdigest()
PARTS = [BYTES[:8000], BYTES[8000:]]
COMPOSITE = base64.b64encode(
    hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in PARTS)).digest()
).decode()


def decide(head: dict, part_head: dict | None = None) -> Checksum:
    """What S3Resource.head does: the form first, the part count when the form is silent."""
    checksum = reported_checksum(head)
    return with_part_count(checksum, part_head or {}) if needs_part_count(checksum) else checksum


def test_aws_single_part_object_its_checksum_is_the_bytes_sha256():
    head = {
        "ContentLength": len(BYTES),
        "ETag": '"9b2cf535f27731c974343645a3985328"',
        "ChecksumSHA256": b64(SHA256),
        "ChecksumType": "FULL_OBJECT",
        "Metadata": {"sha256": SHA256},
    }
    got = decide(head)
    assert got == Checksum(b64(SHA256), False) and got.sha256 == SHA256
    assert verdict(got, SHA256, set()) is True and verdict(got, OTHER, set()) is False


def test_aws_multipart_upload_reports_base64_dash_n_composite_which_is_not_the_bytes_sha256():
    head = {
        "ContentLength": len(BYTES),
        "ETag": '"d41d8cd98f00b204e9800998ecf8427e-2"',
        "ChecksumSHA256": f"{COMPOSITE}-2",
        "ChecksumType": "COMPOSITE",
    }
    got = decide(head)
    assert got == Checksum(COMPOSITE, True, 2) and got.sha256 == ""
    assert verdict(got, SHA256, {COMPOSITE}) is True
    assert verdict(got, SHA256, set()) is None  # parts cut elsewhere: the checksum cannot tell


def test_aws_copy_that_recomputes_is_a_full_object_checksum_of_the_copy():
    # CopyObject of a multipart source: one part now, ChecksumType FULL_OBJECT over the copy's bytes.
    head = {
        "ContentLength": len(BYTES),
        "ETag": '"5f363e0e58a95f06cbe9bbc662c5dfb6"',
        "ChecksumSHA256": b64(SHA256),
        "ChecksumType": "FULL_OBJECT",
    }
    assert decide(head).sha256 == SHA256
    tampered = {**head, "ChecksumSHA256": b64(OTHER)}
    assert (
        decide(tampered).sha256 == OTHER and verdict(decide(tampered), SHA256, {COMPOSITE}) is False
    )


def test_aws_copy_that_keeps_the_source_checksum_is_still_composite_whatever_its_etag():
    head = {
        "ContentLength": len(BYTES),
        "ETag": '"5f363e0e58a95f06cbe9bbc662c5dfb6"',
        "ChecksumSHA256": f"{COMPOSITE}-2",
        "ChecksumType": "COMPOSITE",
    }
    got = decide(head)
    assert got.composite and got.sha256 == "" and verdict(got, SHA256, {COMPOSITE}) is True


def test_aws_composite_without_suffix_takes_its_part_count_from_the_part_head():
    head = {"ChecksumSHA256": COMPOSITE, "ChecksumType": "COMPOSITE"}
    assert needs_part_count(reported_checksum(head))
    assert decide(head, {"ContentLength": 8000, "PartsCount": 2}) == Checksum(COMPOSITE, True, 2)


def test_moto_multipart_upload_silent_form_decided_by_parts_count():
    head = {
        "ContentLength": len(BYTES),
        "ETag": '"46c5d0a354cdf80233c8bd3675f84490-2"',
        "ChecksumSHA256": COMPOSITE,
    }
    assert reported_checksum(head).composite is None  # no -N, no ChecksumType: the form is silent
    got = decide(
        head, {"ContentLength": 8000, "ETag": '"149e83f39b5f918b35606dc9f6b10563"', "PartsCount": 2}
    )
    assert got == Checksum(COMPOSITE, True, 2) and got.sha256 == ""


def test_moto_copy_keeps_the_composite_with_a_single_part_etag_and_is_not_taken_for_a_sha256():
    # The reported failure: read as a sha256, this composite made every rc promotion remove its copy.
    head = {
        "ContentLength": len(BYTES),
        "ETag": '"6b0cf4b6e4b0e5e9652671e356d4cbf7"',
        "ChecksumSHA256": COMPOSITE,
        "Metadata": {"sha256": SHA256},
    }
    got = decide(head, {"ContentLength": 8000, "PartsCount": 2})
    assert got.composite and got.sha256 == "" and verdict(got, SHA256, {COMPOSITE}) is True


def test_a_silent_checksum_on_an_object_without_parts_is_the_bytes_sha256():
    head = {
        "ContentLength": len(BYTES),
        "ETag": '"9b2cf535f27731c974343645a3985328"',
        "ChecksumSHA256": b64(OTHER),
    }
    got = decide(head, {"ContentLength": len(BYTES), "ETag": '"9b2cf535f27731c974343645a3985328"'})
    assert got == Checksum(b64(OTHER), False) and verdict(got, SHA256, set()) is False


def test_no_checksum_proves_nothing_and_a_malformed_one_is_refused():
    assert verdict(decide({"ContentLength": 3}), SHA256, {COMPOSITE}) is None
    with pytest.raises(ValueError, match="abc-x"):
        reported_checksum({"ChecksumSHA256": "abc-x"})


def test_multipart_checksum_cuts_parts_as_s3transfer_does(tmp_path):
    size = 17 * 1024 * 1024
    data = bytes(range(256)) * (size // 256)
    (tmp_path / "bin").write_bytes(data)
    assert part_size(size) == MULTIPART_CHUNKSIZE
    cut = [data[i : i + MULTIPART_CHUNKSIZE] for i in range(0, size, MULTIPART_CHUNKSIZE)]
    assert len(cut) == 3
    expected = base64.b64encode(
        hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in cut)).digest()
    ).decode()
    assert multipart_checksum(tmp_path / "bin", size) == expected
    assert part_size(6 * 1024**3) == MULTIPART_CHUNKSIZE  # 768 parts: under the 10,000-part limit
