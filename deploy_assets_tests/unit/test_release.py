"""The tag policy: exactly the old system's tag patterns, valid semver, and a reason for every refusal."""

import pytest

from deploy_assets.tags import MAX_TAG_LENGTH, TagRejected, check_partition, parse_tag


@pytest.mark.parametrize(
    ("tag", "env", "base", "channel"),
    [
        ("v0.1.0-alpha.1", "dev", "0.1.0", "alpha"),
        ("v1.2.3-beta.0", "dev", "1.2.3", "beta"),
        ("v10.20.30-alpha.12", "dev", "10.20.30", "alpha"),
        ("v1.2.3-rc.2", "staging", "1.2.3", "rc"),
        ("v0.0.0-rc.0", "staging", "0.0.0", "rc"),
        ("v1.2.3", "prod", "1.2.3", None),
        ("v0.10.0", "prod", "0.10.0", None),
    ],
)
def test_release_tags_map_to_their_env(tag, env, base, channel):
    release = parse_tag(tag)
    assert (release.tag, release.env, release.base_version, release.channel) == (
        tag,
        env,
        base,
        channel,
    )
    assert str(release.version) == tag[1:]
    assert release.is_prod == (env == "prod")


def test_a_prod_tag_names_the_rc_tags_that_validate_it():
    assert parse_tag("v1.2.3").staging_tag_prefix() == "v1.2.3-rc."
    assert parse_tag("v1.2.3-alpha.4").staging_tag_prefix() == "v1.2.3-rc."


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("1.2.3", "does not start with 'v'"),
        ("V1.2.3", "does not start with 'v'"),
        ("release-1.2.3", "does not start with 'v'"),
        ("v01.2.3", "leading zero"),
        ("v1.02.3", "leading zero"),
        ("v1.2.3-alpha.01", "leading zero"),
        ("v1.2", "version '1.2' is not MAJOR.MINOR.PATCH"),
        ("v1.2.3.4", "version '1.2.3.4' is not MAJOR.MINOR.PATCH"),
        ("v1.2.3-rc.1+build", "build metadata '+build'"),
        ("v1.2.3+20240101", "build metadata '+20240101'"),
        ("v1.2.3-rc1", "pre-release 'rc1' is not alpha.N, beta.N or rc.N"),
        ("v1.2.3-gamma.1", "pre-release 'gamma.1' is not alpha.N, beta.N or rc.N"),
        ("v1.2.3-rc.1.2", "pre-release 'rc.1.2' is not alpha.N, beta.N or rc.N"),
        ("v1.2.3-RC.1", "pre-release 'RC.1' is not alpha.N, beta.N or rc.N"),
        ("v1.2.3-alpha", "pre-release 'alpha' is not alpha.N, beta.N or rc.N"),
        ("v1.2.3-", "pre-release '' is not alpha.N, beta.N or rc.N"),
        ("v1.2.3;rm -rf /", "whitespace or control characters"),
        ("v1.2.3;id", "contains characters ;"),
        ("v1.2.3$(id)", "contains characters $ ( )"),
        ("v1.2.3`id`", "contains characters `"),
        ("v1.2.3|sh", "contains characters |"),
        ("v1.2.3&&id", "contains characters &"),
        ("v1.2.3/../x", "contains characters /"),
        ("v1.2.3 ", "whitespace or control characters"),
        (" v1.2.3", "whitespace or control characters"),
        ("v1.2.3\n", "whitespace or control characters"),
        ("v1.2.3-rc.1\t", "whitespace or control characters"),
        ("v1.2.3\x1b[31m", "whitespace or control characters"),
        ("v\u0661.2.3", "non-ASCII characters '\u0661' (ARABIC-INDIC DIGIT ONE)"),
        ("v\uff11.2.3", "non-ASCII characters '\uff11' (FULLWIDTH DIGIT ONE)"),
        ("v1.2.3-rc.\u0967", "DEVANAGARI DIGIT ONE"),
        ("v1.2.3\u00a0", "NO-BREAK SPACE"),
    ],
)
def test_anything_else_is_rejected_with_a_reason(tag, reason):
    with pytest.raises(TagRejected) as info:
        parse_tag(tag)
    message = str(info.value)
    assert reason in message
    assert repr(tag) in message  # the offending tag, quoted so control characters stay visible
    assert "vX.Y.Z-alpha.N / vX.Y.Z-beta.N (dev), vX.Y.Z-rc.N (staging), vX.Y.Z (prod)" in message


def test_the_empty_tag_is_rejected():
    with pytest.raises(TagRejected, match="^empty tag$"):
        parse_tag("")


def test_overlong_tags_are_rejected_without_echoing_them_whole():
    tag = "v1.2.3-alpha." + "1" * (MAX_TAG_LENGTH - 12)
    assert len(tag) == MAX_TAG_LENGTH + 1
    with pytest.raises(TagRejected) as info:
        parse_tag(tag)
    assert f"is {MAX_TAG_LENGTH + 1} characters long, the limit is {MAX_TAG_LENGTH}" in str(
        info.value
    )
    assert tag not in str(info.value)
    at_limit = "v1.2.3-alpha." + "1" * (MAX_TAG_LENGTH - 13)
    assert parse_tag(at_limit).env == "dev"


def test_a_partition_must_use_the_env_its_tag_deploys_to():
    assert check_partition("v1.2.3-rc.1", "staging").env == "staging"
    with pytest.raises(
        TagRejected,
        match=r"tag 'v1.2.3-rc.1' deploys to staging, not prod: "
        r"partition prod\|v1.2.3-rc.1 is invalid",
    ):
        check_partition("v1.2.3-rc.1", "prod")
    with pytest.raises(TagRejected, match=r"deploys to prod, not dev"):
        check_partition("v1.2.3", "dev")
    with pytest.raises(TagRejected, match="pre-release 'rc1'"):
        check_partition("v1.2.3-rc1", "staging")
