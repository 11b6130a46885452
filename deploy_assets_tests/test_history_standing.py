"""Which staging releases still stand after rollbacks: the pure decision the promotion gate reads."""

from deploy_assets.plan import StagingRecord
from deploy_assets.records.history import PastMaterialization, standing

A, B = "a" * 40, "b" * 40


def bump(tag: str, at: float, commit: str = A, **extra) -> PastMaterialization:
    return PastMaterialization(
        f"staging|{tag}", f"run-{tag}-{at:g}", at, {"commit": commit, **extra}
    )


def rollback(away: str, to: str, at: float) -> PastMaterialization:
    return PastMaterialization(
        f"staging|{to}",
        f"rb-{at:g}",
        at,
        {
            "rollback_from": away,
            "rollback_to": to,
            "rolled_back_by": "alice",
            "rolled_back_at": f"t{at:g}",
        },
    )


def test_without_rollbacks_every_bumped_release_stands_once():
    bumps = [bump("v1.0.0-rc.2", 20, B), bump("v1.0.0-rc.1", 10), bump("v1.0.0-rc.1", 5)]
    assert standing(bumps, []) == [StagingRecord("v1.0.0-rc.2", B), StagingRecord("v1.0.0-rc.1", A)]


def test_the_release_rolled_away_from_no_longer_stands_and_says_how():
    records = standing(
        [bump("v1.0.0-rc.2", 20, B), bump("v1.0.0-rc.1", 10)],
        [rollback("v1.0.0-rc.2", "v1.0.0-rc.1", 30)],
    )
    assert records == [
        StagingRecord(
            "v1.0.0-rc.2",
            B,
            "rolled back from v1.0.0-rc.2 to v1.0.0-rc.1 by alice at t30 (run rb-30)",
        ),
        StagingRecord("v1.0.0-rc.1", A),
    ]


def test_a_rerun_after_the_rollback_does_not_redeploy_but_a_rollback_to_it_does():
    bumps = [
        bump("v1.0.0-rc.2", 40, B, already_deployed_by_run="run-v1.0.0-rc.2-20"),
        bump("v1.0.0-rc.2", 20, B),
        bump("v1.0.0-rc.1", 10),
    ]
    away = [rollback("v1.0.0-rc.2", "v1.0.0-rc.1", 30)]
    assert standing(bumps, away)[0].rolled_back.startswith("rolled back from v1.0.0-rc.2")
    back = [rollback("v1.0.0-rc.1", "v1.0.0-rc.2", 50)] + away
    records = standing(bumps, back)
    assert records[0] == StagingRecord("v1.0.0-rc.2", B)
    assert records[1].rolled_back.startswith("rolled back from v1.0.0-rc.1 to v1.0.0-rc.2")


def test_a_new_bump_after_the_rollback_stands_again():
    records = standing(
        [bump("v1.0.0-rc.2", 60, B), bump("v1.0.0-rc.1", 10)],
        [rollback("v1.0.0-rc.2", "v1.0.0-rc.1", 30)],
    )
    assert records[0] == StagingRecord("v1.0.0-rc.2", B)
