"""The checks `source` runs before a build, read from the release matrix: which services must be
main packages, which Dockerfile templates must exist, which services the code location must know.
Plain functions of the config and a service list, so each case is a few lines here."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from deploy_assets.assets.source_checks import (
    built_services,
    check_dockerfiles,
    check_known,
    main_problems,
    missing_dockerfiles,
    unknown_services,
)
from deploy_assets.plan import PlanError
from deploy_assets_tests.unit.test_matrix_envs import CONFIG, LAMBDAS, MS, SERVICES, names

ALL = sorted(s.name for s in SERVICES)


def with_template(kind: str, template: str | None):
    kinds = dict(CONFIG.source.kinds)
    kinds[kind] = kinds[kind].model_copy(update={"dockerfile": template})
    return CONFIG.model_copy(update={"source": CONFIG.source.model_copy(update={"kinds": kinds})})


def test_each_env_checks_as_mains_only_what_it_builds():
    assert names(built_services(CONFIG, "dev", SERVICES)) == MS  # a dev release builds no lambdas
    assert names(built_services(CONFIG, "prod", SERVICES)) == MS + LAMBDAS + ["cli_core"]


def test_the_example_templates_exist():
    for env in CONFIG.envs:
        assert missing_dockerfiles(CONFIG, env, SERVICES) == []
        check_dockerfiles(CONFIG, env, SERVICES)


def test_a_missing_template_names_its_file_its_config_key_and_the_services_needing_it():
    config = with_template("ms", "no-such/Dockerfile")
    missing = Path(__file__).parents[2] / "misc/dockerfiles/no-such/Dockerfile"
    with pytest.raises(PlanError) as info:
        check_dockerfiles(config, "staging", SERVICES)
    assert str(info.value) == (
        f"cannot build images: {', '.join(MS)}: Dockerfile template {missing.resolve()} "
        "(source.kinds.ms.dockerfile) does not exist"
    )


def test_a_missing_template_of_a_kind_the_env_does_not_image_is_not_its_problem():
    config = with_template("cli", "no-such/Dockerfile")
    assert missing_dockerfiles(config, "staging", SERVICES) == []  # staging builds no cli
    assert missing_dockerfiles(config, "prod", SERVICES) != []


def test_a_kind_without_a_template_gets_no_image_and_needs_no_file():
    config = with_template("ms", None)
    assert missing_dockerfiles(config, "prod", SERVICES) == []


def test_services_the_code_location_does_not_know_are_the_built_ones_it_lacks():
    known = set(MS[:1])
    assert unknown_services(SERVICES, known, "dev", CONFIG) == MS[1:]  # lambdas are not built
    assert unknown_services(SERVICES, set(ALL), "prod", CONFIG) == []


def test_an_unknown_service_is_refused_with_the_commit_what_is_known_and_what_to_do():
    with pytest.raises(PlanError) as info:
        check_known(SERVICES, set(), "dev", CONFIG, "c" * 40)
    assert str(info.value) == (
        f"services {', '.join(MS)} at {'c' * 12} are not in the loaded code location (it knows "
        "none): run `deploy-assets refresh` (the tag sensor does it when it sees them), then "
        "reload the code location (UI: Deployment -> Reload) and re-run"
    )


def test_each_package_that_is_not_a_buildable_main_is_named_with_why(tmp_path):
    core, chat, pay, hook = (
        next(s for s in SERVICES if s.name == n)
        for n in ("ms_core", "ms_chat", "ms_payments", "lambda_webhook_handler")
    )

    def pkg(service, **fields):
        base = {"error": None, "name": "main", "deps_errors": []}
        return (tmp_path / service.path).resolve(), SimpleNamespace(**{**base, **fields})

    by_dir = dict(
        [
            pkg(core),
            pkg(chat, name="chat"),
            pkg(pay, error="syntax error"),
            pkg(hook, deps_errors=["no module x", "no module y"]),
        ]
    )
    cli = next(s for s in SERVICES if s.name == "cli_core")
    assert main_problems([core, chat, pay, hook, cli], by_dir, tmp_path) == [
        f"ms_chat ({chat.path}): not a main package (package chat)",
        f"ms_payments ({pay.path}): syntax error",
        f"lambda_webhook_handler ({hook.path}): no module x; no module y",
        f"cli_core ({cli.path}): go list did not find the package",
    ]
