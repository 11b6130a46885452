"""The steps after `source` ask the release matrix what the env does with the services `source`
recorded: which images warm up while go compiles, which projects a bump deploys, which published
assets a deploy may point to. Plain functions of the config and a service list."""

from __future__ import annotations

from deploy_assets.assets.binaries_build import _warmup_jobs
from deploy_assets.assets.deploy_inputs import ReleaseFacts, deployed_projects, published_keys
from deploy_assets.matrix import dockerfile_of
from deploy_assets.names import artifact_key, image_key, partition_key
from deploy_assets.tags import parse_tag
from deploy_assets_tests.unit.test_matrix_envs import CONFIG, LAMBDAS, MS, SERVICES

COMMIT = "e" * 40
FACTS = ReleaseFacts(partition_key("prod", "v1.0.0"), COMMIT, SERVICES)


def test_a_bump_deploys_the_projects_the_env_builds_and_deploys():
    for env in CONFIG.envs:
        assert deployed_projects(FACTS, CONFIG, env) == MS
    only_lambdas = ReleaseFacts(
        partition_key("dev", "v1.0.0-alpha.1"), COMMIT, [s for s in SERVICES if s.kind == "lambdas"]
    )
    assert deployed_projects(only_lambdas, CONFIG, "dev") == []  # deploys ms only


def test_a_deploy_may_point_to_the_images_and_objects_its_env_publishes():
    images, objects = published_keys(FACTS, CONFIG, "prod")
    assert images == [image_key(n) for n in MS + ["cli_core"]]
    assert objects[:-1] == [artifact_key(n) for n in MS + LAMBDAS]
    dev_images, dev_objects = published_keys(FACTS, CONFIG, "dev")
    assert dev_images == [image_key(n) for n in MS]
    assert objects[-1] == dev_objects[-1]  # routes.json, whatever the env


def test_images_warm_up_for_the_env_s_imaged_stale_services_on_the_primary_platform_only():
    release = parse_tag("v1.0.0")
    ck = {s.name: f"key-{s.name}" for s in SERVICES}
    primary = CONFIG.platforms[0]
    jobs = _warmup_jobs(
        SERVICES, ck, primary, CONFIG, release, COMMIT, partition_key("prod", "v1.0.0")
    )
    assert sorted(j.name for j in jobs.values()) == sorted(MS + ["cli_core"])  # no lambdas
    core = next(s for s in SERVICES if s.name == "ms_core")
    job = jobs[core.build_output]
    assert (job.tag, job.platform, job.dockerfile) == (
        "ck-key-ms_core",
        primary,
        dockerfile_of(CONFIG, core),
    )
    assert job.labels["org.opencontainers.image.revision"] == COMMIT
    staging = _warmup_jobs(SERVICES, ck, primary, CONFIG, parse_tag("v1.0.0-rc.1"), COMMIT, "s")
    assert sorted(j.name for j in staging.values()) == MS  # staging images ms only
    other = "amd64" if primary != "amd64" else "arm64"
    assert _warmup_jobs(SERVICES, ck, other, CONFIG, release, COMMIT, "p") == {}
