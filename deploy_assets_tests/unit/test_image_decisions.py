"""The publish decision of an image, branch by branch, on facts given as values.

A fact the test does not give is one the decision must not need on that branch: reading it fails
the test, which is how these tests prove the decision asks the registry only what its branch
needs (a promotion whose staging record carries the proof downloads nothing).
"""

import pytest

from deploy_assets.assets.image_decisions import (
    PriorImage,
    Publish,
    publish_decision,
    tag_conflict,
    template_name,
)
from deploy_assets.assets.image_recipe import ImageProof
from deploy_assets.config import DOCKERFILES_DIR, load_pipeline_config
from deploy_assets.matrix import dockerfile_of
from deploy_assets.plan import Service

GOOD, BAD, KEY = "a" * 64, "b" * 64, "c" * 64
HERE = "dev|v1.0.0-alpha.2"
STAGING = "staging|v1.0.0-rc.1"


class Facts:
    """Only the facts given; any other is a question the branch should not ask."""

    def __init__(self, **known):
        self.__dict__.update(known)

    def __getattr__(self, name):
        raise AssertionError(f"the decision asked for {name}, which this branch must not need")


def proof(digest: str, sha256: str = GOOD, how: str = "layer downloaded and hashed") -> ImageProof:
    return ImageProof(digest, "/service", f"sha256:layer-{digest}" if sha256 else "", sha256, how)


def decide(**facts):
    return publish_decision(Facts(**facts), GOOD, KEY, HERE)


def test_a_rerun_keeps_the_image_and_the_lineage_it_recorded():
    record = PriorImage(HERE, "sha256:d1", reused_from=STAGING)
    got = decide(tag_digest="sha256:d1", record=record, tag_proof=proof("sha256:d1"))
    assert (got.how, got.action, got.digest, got.reused_from) == (
        Publish.ALREADY,
        "already pushed",
        "sha256:d1",
        STAGING,
    )


def test_the_tag_recorded_by_another_release_names_that_release_as_its_origin():
    record = PriorImage(STAGING, "sha256:d1", reused_from="")
    got = decide(tag_digest="sha256:d1", record=record, tag_proof=proof("sha256:d1"))
    assert (got.how, got.reused_from) == (Publish.ALREADY, STAGING)


def test_an_unrecorded_tag_with_our_label_and_our_bytes_is_adopted():
    got = decide(
        tag_digest="sha256:d1", record=None, tag_content_key=KEY, tag_proof=proof("sha256:d1")
    )
    assert (got.how, got.action, got.digest, got.reused_from) == (
        Publish.ADOPT,
        "adopted (pushed by an interrupted run)",
        "sha256:d1",
        "",
    )


@pytest.mark.parametrize("record", [None, PriorImage(HERE, "sha256:other", "")])
def test_a_tag_with_our_label_and_other_bytes_is_refused_naming_both_sha256s(record):
    got = decide(
        tag_digest="sha256:d1",
        record=record,
        tag_content_key=KEY,
        tag_proof=proof("sha256:d1", sha256=BAD),
    )
    assert got.how is Publish.REFUSE and got.digest == "sha256:d1"
    assert (
        f"sha256 {BAD}" in got.reason and f"not this release's binary sha256 {GOOD}" in got.reason
    )


def test_a_tag_without_our_label_is_refused_without_a_download():
    got = decide(tag_digest="sha256:d1", record=None, tag_content_key="someone else's")
    assert got.how is Publish.REFUSE and got.proof is None
    assert got.reason == f"its content-key label is not {KEY[:16]}"


def test_a_recorded_tag_whose_layer_is_not_ours_is_refused_even_if_labelled():
    record = PriorImage(HERE, "sha256:d1", "")
    got = decide(tag_digest="sha256:d1", record=record, tag_proof=proof("sha256:d1", sha256=""))
    assert got.how is Publish.REFUSE and "no such file" in got.reason


def test_the_refusal_names_the_tag_both_images_and_the_recorded_digest():
    got = decide(tag_digest="sha256:d1", record=None, tag_content_key="x")
    message = tag_conflict("reg/ms_core:v1", got, "sha256:ours", KEY, None)
    assert message == (
        f"reg/ms_core:v1 already exists with digest sha256:d1, which is not this release's "
        f"image: its content-key label is not {KEY[:16]} (this release built image sha256:ours, "
        f"content key {KEY[:16]}, recorded digest none). Tags are immutable: not overwriting"
    )


def test_an_earlier_release_image_of_these_bytes_is_retagged_on_its_recorded_proof():
    record = PriorImage(STAGING, "sha256:s1", "")
    got = decide(
        tag_digest=None,
        record=record,
        record_served=True,
        record_proof=proof("sha256:s1", how=f"recorded by {STAGING}"),
    )
    assert (got.how, got.action, got.digest, got.reused_from, got.rejected) == (
        Publish.RETAG,
        f"retagged from {STAGING}",
        "sha256:s1",
        STAGING,
        (),
    )
    assert got.proof.how == f"recorded by {STAGING}"  # no prebuilt fact was asked: no download


def test_a_forged_earlier_image_falls_back_to_the_proven_prebuilt_one_and_says_why():
    record = PriorImage(STAGING, "sha256:forged", "")
    got = decide(
        tag_digest=None,
        record=record,
        record_served=True,
        record_proof=proof("sha256:forged", sha256=BAD),
        prebuilt_digest="sha256:ck",
        prebuilt_content_key=KEY,
        prebuilt_built_in=STAGING,
        prebuilt_proof=proof("sha256:ck"),
    )
    assert (got.how, got.action, got.digest, got.reused_from) == (
        Publish.PREBUILT,
        f"retagged from the image prebuilt in {STAGING}",
        "sha256:ck",
        STAGING,
    )
    assert len(got.rejected) == 1 and got.rejected[0].startswith(
        f"the image of {STAGING} is not shipped"
    )
    assert BAD in got.rejected[0]


def test_an_earlier_image_no_longer_served_is_skipped_without_a_proof():
    record = PriorImage(STAGING, "sha256:gone", "")
    got = decide(tag_digest=None, record=record, record_served=False, prebuilt_digest=None)
    assert (got.how, got.action, got.rejected, got.also_tag) == (
        Publish.BUILD,
        "built and pushed",
        (),
        "",
    )


def test_this_releases_early_push_counts_as_built_here():
    got = decide(
        tag_digest=None,
        record=None,
        prebuilt_digest="sha256:ck",
        prebuilt_content_key=KEY,
        prebuilt_built_in=HERE,
        prebuilt_proof=proof("sha256:ck"),
    )
    assert (got.how, got.action, got.reused_from, got.detail) == (
        Publish.PREBUILT,
        "built and pushed",
        "",
        f"while go was compiling, as ck-{KEY}",
    )


def test_an_unlabelled_prebuilt_image_is_named_as_staging_s():
    got = decide(
        tag_digest=None,
        record=None,
        prebuilt_digest="sha256:ck",
        prebuilt_content_key=KEY,
        prebuilt_built_in="",
        prebuilt_proof=proof("sha256:ck"),
    )
    assert got.action == "retagged from the image prebuilt in staging"


def test_a_forged_prebuilt_image_is_rebuilt_and_its_ck_tag_overwritten():
    got = decide(
        tag_digest=None,
        record=None,
        prebuilt_digest="sha256:forged",
        prebuilt_content_key=KEY,
        prebuilt_built_in=HERE,
        prebuilt_proof=proof("sha256:forged", sha256=BAD),
    )
    assert (got.how, got.also_tag) == (Publish.BUILD, f"ck-{KEY}")
    assert got.rejected[0].startswith(f"ck-{KEY} is not shipped") and BAD in got.rejected[0]


def test_a_ck_tag_labelled_for_other_bytes_is_neither_proven_nor_overwritten_without_a_rejection():
    got = decide(
        tag_digest=None, record=None, prebuilt_digest="sha256:x", prebuilt_content_key="other"
    )
    assert (got.how, got.also_tag, got.rejected) == (Publish.BUILD, "", ())


def test_after_a_rejected_record_a_ck_tag_of_other_bytes_is_overwritten_too():
    record = PriorImage(STAGING, "sha256:forged", "")
    got = decide(
        tag_digest=None,
        record=record,
        record_served=True,
        record_proof=proof("sha256:forged", sha256=BAD),
        prebuilt_digest="sha256:x",
        prebuilt_content_key="other",
    )
    assert (got.how, got.also_tag, len(got.rejected)) == (Publish.BUILD, f"ck-{KEY}", 1)


def test_nothing_anywhere_means_a_build():
    got = decide(tag_digest=None, record=None, prebuilt_digest=None)
    assert (got.how, got.action, got.rejected, got.also_tag) == (
        Publish.BUILD,
        "built and pushed",
        (),
        "",
    )


def test_an_image_is_described_by_its_template_as_the_config_names_it():
    config = load_pipeline_config()  # the example: ms and cli have templates, lambdas none
    ms, cli = Service("ms_core", "ms", "cmd/ms/ms_core"), Service("cli_x", "cli", "cmd/cli/cli_x")
    assert (template_name(config, ms), template_name(config, cli)) == (
        "ms.Dockerfile",
        "cli.Dockerfile",
    )
    assert (
        dockerfile_of(config, ms) == (DOCKERFILES_DIR / "ms.Dockerfile").resolve()
    )  # what it names
