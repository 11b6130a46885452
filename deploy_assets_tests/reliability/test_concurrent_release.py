"""Two releases of one tag at once (`deploy-assets release T` twice, or the CLI beside the
sensor's run): one does the work, the other stops before changing anything and names the run
that holds the tag. Before the claim, 3 tries in 4 died on each other's work folder."""

import shutil

import dagster as dg

from deploy_assets.config import REPO_ROOT
from deploy_assets.resources.git import run_git
from deploy_assets.resources.registry import RegistryResource
from deploy_assets_tests.instances import load_instance
from deploy_assets_tests.reliability.conftest import MS

TAG = "v7.3.0-alpha.1"


def test_two_releases_of_one_tag_at_once_make_one_release_and_one_bump(
    cli_deployment, fresh_registry, s3_bucket, monorepo, git_root
):
    deployment = cli_deployment(fresh_registry, *s3_bucket)
    monorepo.tag(TAG)
    deployment.home.mkdir(parents=True)  # the schema exists before both start (see test_load.py)
    shutil.copyfile(
        REPO_ROOT / "misc" / "configs" / "dagster.local.yaml", deployment.home / "dagster.yaml"
    )
    load_instance(str(deployment.home)).dispose()

    first, second = deployment.spawn(TAG), deployment.spawn(TAG)
    results = [deployment.finish(first), deployment.finish(second)]

    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    refused = next(out for code, out in results if code == 1)
    instance = load_instance(str(deployment.home))
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": f"dev|{TAG}"}))
    assert len(runs) == 2
    winner = next(r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS)
    assert f"dev|{TAG} is already being released by run {winner.run_id}" in refused
    log = (
        run_git(["log", "--format=%s", "main"], cwd=git_root / "gitops-development.git")
        .decode()
        .splitlines()
    )
    assert len(log) == 2 and log[0].endswith(f"-> {TAG}")
    registry = RegistryResource(host=fresh_registry)
    for name in MS:
        image = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["image", name]), asset_partitions=[f"dev|{TAG}"]
            ),
            limit=5,
        ).records
        assert len(image) == 1  # only the winner published
        assert image[0].asset_materialization.metadata["digest"].value == registry.manifest_digest(
            name, TAG
        )
    instance.dispose()

    # Afterwards the refused side can re-run: nothing to do, no second bump.
    code, out = deployment.release(TAG)
    assert code == 0, out
    assert (
        run_git(["log", "--format=%s", "main"], cwd=git_root / "gitops-development.git")
        .decode()
        .splitlines()
        == log
    )
