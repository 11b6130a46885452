"""Bad input fails at the step concerned, names the service and the cause, and deploys nothing.

"Nothing" is checked where it would show: the GitOps repo keeps its initial commit only, and,
where they answer, the registry has no image and the bucket no object for the release.
"""

import logging
from pathlib import Path

import dagster as dg
import yaml

from deploy_assets.assets.partitions import VERSION_PARTITIONS_NAME, release_partition_key
from deploy_assets.assets.source import COMMIT_TAG, SOURCE_KEY
from deploy_assets.cli.runner import run_release
from deploy_assets.config import DEFAULT_CONFIG, DOCKERFILES_DIR, load_pipeline_config
from deploy_assets.local.stack import free_port
from deploy_assets.resources.git import run_git

MS = ["ms_chat", "ms_core", "ms_payments"]
TAG = "v0.9.0-alpha.1"


def assert_nothing_deployed(
    harness, tag: str = TAG, registry: bool = True, s3: bool = True
) -> None:
    log = harness.gitops_log("gitops-development")
    assert len(log) == 1 and log[0].endswith("Initialise gitops-development"), log
    for name in MS:
        if registry:
            assert harness.registry.manifest_digest(name, tag) is None, name
        if s3:
            assert harness.s3.head(f"binaries/{tag}/{name}") is None, name
    if s3:
        assert harness.s3.head(f"binaries/{tag}/routes.json") is None


def failed_at(harness, outcome, step: str) -> str:
    """The failure of the one step that failed, as the user's exception worded it."""
    assert not outcome.success
    failures = harness.instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert [f.dagster_event.step_key for f in failures] == [step]
    error = failures[0].dagster_event.step_failure_data.error
    while error.cause is not None:  # Dagster wraps the asset's exception; the cause is ours
        error = error.cause
    return error.message


def test_two_services_with_one_name(harness):
    harness.defs  # the code location was loaded before the clash was committed
    harness.monorepo.write("cmd/lambdas/ms_core/main.go", "package main\n\nfunc main() {}\n")
    harness.monorepo.commit("a lambda named like a microservice")
    error = failed_at(harness, harness.release(TAG), "source")
    assert "two services are named 'ms_core': cmd/ms/ms_core and cmd/lambdas/ms_core" in error
    assert_nothing_deployed(harness)


def test_a_service_directory_without_package_main(harness):
    harness.monorepo.write(
        "cmd/ms/ms_lib/lib.go", "package lib\n\nfunc Helper() int { return 1 }\n"
    )
    harness.monorepo.commit("a library where services live")
    error = failed_at(harness, harness.release(TAG), "source")
    assert "ms_lib (cmd/ms/ms_lib): not a main package (package lib)" in error
    assert_nothing_deployed(harness)


def test_an_import_no_module_provides_fails_before_any_build(harness):
    main = harness.monorepo.clone / "cmd/ms/ms_chat/main.go"
    text = main.read_text()
    line = text.splitlines().index('\t"example.com/monorepo/internal/httpx"') + 2
    harness.monorepo.write(
        "cmd/ms/ms_chat/main.go",
        text.replace(
            '\t"example.com/monorepo/internal/httpx"\n',
            '\t"example.com/monorepo/internal/httpx"\n\t_ "example.com/monorepo/internal/nope"\n',
        ),
    )
    harness.monorepo.commit("ms_chat: imports a package that does not exist")
    error = failed_at(harness, harness.release(TAG), "source")
    assert (
        f"ms_chat (cmd/ms/ms_chat): cmd/ms/ms_chat/main.go:{line}:2: cannot find module providing "
        "package example.com/monorepo/internal/nope"
    ) in error
    assert "ms_core" not in error
    assert_nothing_deployed(harness)


def test_a_missing_dockerfile_template(harness, tmp_path):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["source"]["kinds"]["ms"]["dockerfile"] = "missing.Dockerfile"
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(raw))
    harness.reload(load_pipeline_config(tmp_path / "pipeline.yaml"))
    error = failed_at(harness, harness.release(TAG), "source")
    assert (
        f"cannot build images: ms_chat, ms_core, ms_payments: Dockerfile template "
        f"{DOCKERFILES_DIR.resolve() / 'missing.Dockerfile'} (source.kinds.ms.dockerfile) does not exist"
    ) in error
    assert_nothing_deployed(harness)


def test_a_compile_error_in_one_service(harness):
    main = harness.monorepo.clone / "cmd/ms/ms_chat/main.go"
    line = len(main.read_text().splitlines()) + 2
    harness.monorepo.write(
        "cmd/ms/ms_chat/main.go", main.read_text() + "\nfunc broken() { undefinedThing() }\n"
    )
    harness.monorepo.commit("ms_chat: does not compile")
    error = failed_at(harness, harness.release(TAG), "binaries")
    assert (
        f"ms_chat (cmd/ms/ms_chat): cmd/ms/ms_chat/main.go:{line}:17: undefined: undefinedThing"
        in error
    )
    assert "ms_core" not in error and "ms_payments" not in error
    assert_nothing_deployed(harness)


def test_a_compile_error_in_a_shared_package_names_its_users(harness):
    shared = harness.monorepo.clone / "internal/payments/payments.go"
    harness.monorepo.write(
        "internal/payments/payments.go", shared.read_text() + '\nfunc broken() int { return "x" }\n'
    )
    harness.monorepo.commit("internal/payments: does not compile")
    error = failed_at(harness, harness.release(TAG), "binaries")
    assert (
        "example.com/monorepo/internal/payments (used by ms_payments): internal/payments/payments.go:"
        in error
    )
    assert 'cannot use "x" (untyped string constant) as int value in return statement' in error
    assert_nothing_deployed(harness)


def test_an_unreachable_registry_fails_before_anything_is_built_or_uploaded(harness):
    registry = f"127.0.0.1:{free_port()}"
    harness.settings = harness.settings.model_copy(update={"registry": registry})
    harness.reload()
    error = failed_at(harness, harness.release(TAG), "source")
    assert (
        f"images of ms_chat, ms_core, ms_payments cannot be pushed: registry {registry} unreachable"
        in error
    )
    assert not (harness.settings.work_dir / "dev" / TAG / "out").exists()  # nothing built
    assert_nothing_deployed(harness, registry=False)


def test_an_unreachable_s3_endpoint_fails_before_anything_is_pushed(harness):
    endpoint = f"http://127.0.0.1:{free_port()}"
    reachable = harness.s3
    harness.settings = harness.settings.model_copy(update={"s3_endpoint": endpoint})
    harness.reload()
    error = failed_at(harness, harness.release(TAG), "source")
    assert (
        f"binaries of ms_chat, ms_core, ms_payments and routes.json cannot be uploaded: "
        f"head s3://{harness.settings.bucket}/binaries/{TAG}/routes.json via {endpoint} failed: "
    ) in error
    assert f'Could not connect to the endpoint URL: "{endpoint}/' in error
    assert_nothing_deployed(harness, s3=False)
    assert reachable.head(f"binaries/{TAG}/routes.json") is None


def test_a_tag_moved_after_the_release_was_requested(harness):
    requested = harness.monorepo.tag(TAG)
    harness.monorepo.write("cmd/ms/ms_core/extra.go", "package main\n")
    moved_to = harness.monorepo.commit("after the tag")
    harness.monorepo.tag(TAG)  # force-moved to the new commit
    outcome = run_release(harness.defs, harness.instance, TAG, extra_tags={COMMIT_TAG: requested})
    error = failed_at(harness, outcome, "source")
    assert (
        f"tag {TAG} MOVED from {requested[:12]} (when this release was requested) to {moved_to[:12]}"
        in error
    )
    assert_nothing_deployed(harness)


def _prod_source_only(harness, tag: str) -> dg.ExecuteInProcessResult:
    harness.monorepo.tag(tag)
    harness.instance.add_dynamic_partitions(VERSION_PARTITIONS_NAME, [tag])
    return harness.defs.resolve_job_def("release_to_prod").execute_in_process(
        instance=harness.instance,
        partition_key=release_partition_key("prod", tag),
        asset_selection=[SOURCE_KEY],
        raise_on_error=False,
    )


def test_prod_without_staging_is_refused_and_the_switch_is_logged_loudly(harness):
    commit = harness.monorepo.head()
    refused = _prod_source_only(harness, "v0.9.0")
    assert (
        f"promotion gate: v0.9.0 refused before any side effect: no successful staging release "
        f"v0.9.0-rc.N on commit {commit[:12]}"
    ) in failed_at(harness, refused, "source")

    harness.settings = harness.settings.model_copy(update={"allow_prod_without_staging": True})
    harness.reload()
    allowed = _prod_source_only(harness, "v0.9.0")
    assert allowed.success
    warnings = [
        e.user_message
        for e in harness.instance.all_logs(allowed.run_id)
        if e.level == logging.WARNING and e.dagster_event is None
    ]
    assert any(
        m.startswith(
            "promotion gate: ALLOWED WITHOUT STAGING by explicit switch "
            "DEPLOY_ASSETS_ALLOW_PROD_WITHOUT_STAGING"
        )
        for m in warnings
    ), warnings
    assert harness.metadata("source", "prod|v0.9.0")["promotion_gate"].startswith(
        "ALLOWED WITHOUT STAGING"
    )
    assert len(harness.gitops_log("gitops-production")) == 1


def test_an_env_repo_file_with_no_entry_for_a_project_fails_before_anything_is_published(
    harness, tmp_path
):
    """The bump is worked out at source on the env repo as it is: a kustomization that lists
    other images only (the manifests use another name) is named before any build or push."""
    repo = harness.settings.git_root + "/gitops-development.git"
    work = tmp_path / "seed"
    run_git(["clone", "--quiet", repo, str(work)])
    target = work / "apps" / "ms_core" / "kustomization.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(
        "# team-owned\nimages:\n  - name: registry.example.com/team/core-api\n    newTag: v0.0.1\n"
    )
    run_git(["add", "-A"], cwd=work)
    run_git(["commit", "--quiet", "-m", "seed"], cwd=work)
    run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=work)
    before = run_git(["rev-parse", "main"], cwd=Path(repo)).decode().strip()

    error = failed_at(harness, harness.release(TAG), "source")
    assert f"the GitOps bump of {TAG} cannot be made" in error
    assert "apps/ms_core/kustomization.yaml: no images[] entry for ms_core" in error
    assert "registry.example.com/team/core-api" in error  # the entries it has
    assert not (harness.settings.work_dir / "dev" / TAG / "out").exists()  # nothing built
    for name in MS:
        assert harness.registry.manifest_digest(name, TAG) is None, name
        assert harness.s3.head(f"binaries/{TAG}/{name}") is None, name
    assert (
        run_git(["rev-parse", "main"], cwd=Path(repo)).decode().strip() == before
    )  # no bump either
