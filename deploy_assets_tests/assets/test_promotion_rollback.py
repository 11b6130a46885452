"""The promotion gate and rollbacks: an rc staging was rolled back away from validates nothing.

Real releases and a real rollback (the rollback job re-points the staging repo); the gate's
answer is read from the prod run's failure, and prod's systems are asked that nothing moved.
"""

from deploy_assets.records.rollback import run_rollback
from deploy_assets_tests.assets.run_events import step_failures

MS = ["ms_chat", "ms_core", "ms_payments"]


def test_prod_is_refused_on_the_commit_of_an_rc_staging_was_rolled_back_from(harness):
    earlier = harness.release("v0.8.0-rc.1")
    assert earlier.success, earlier.error
    harness.monorepo.write(
        "cmd/ms/ms_core/fix.go", "package main\n\nconst fix = 1\n\nvar _ = fix\n"
    )
    commit = harness.monorepo.commit("a fix that staging will turn out not to like")
    validated = harness.release("v0.8.0-rc.2")
    assert validated.success, validated.error

    rolled = run_rollback(harness.defs, harness.instance, "staging", "v0.8.0-rc.1", "alice")
    assert rolled.success, rolled.error
    assert harness.gitops_log("gitops-staging")[0].split(" ", 1)[1].startswith("rollback(staging):")

    prod = harness.release("v0.8.0")  # on rc.2's commit, which staging no longer runs

    assert not prod.success
    error = step_failures(harness.instance, prod.run_id)["source"]
    assert "v0.8.0 refused before any side effect" in error
    assert f"no successful staging release v0.8.0-rc.N on commit {commit[:12]}" in error
    assert (
        f"v0.8.0-rc.2@{commit[:12]} (rolled back from v0.8.0-rc.2 to v0.8.0-rc.1 by alice at "
        in error
    ), error
    assert f"(run {rolled.run_id})" in error
    for name in MS:
        assert harness.registry.manifest_digest(name, "v0.8.0") is None, name
    assert harness.s3.head("binaries/v0.8.0/routes.json") is None
    for repo in ("gitops-production", "terraform-apps-production"):
        assert len(harness.gitops_log(repo)) == 1, repo
