"""Hostile and malformed input: tags, service directories and config files that must be refused.

Tags that git accepts (shell metacharacters, 200 characters, unicode digits that look like
ASCII ones) go through the real path a tag takes (a push to the remote, the sensor's
`git ls-remote`, the CLI): none launches anything, and no command they spell ever runs.
"""

import ast
import logging
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from deploy_assets.cli.runner import run_release
from deploy_assets.config import REPO_ROOT, ConfigError, load_pipeline_config
from deploy_assets.definitions import build_definitions
from deploy_assets.plan import PlanError, discover_services
from deploy_assets.resources.git import GitSourceResource, run_git
from deploy_assets.sensors.release_tags import SENSOR_NAME
from deploy_assets.tags import TagRejected, parse_tag
from deploy_assets_tests.conftest import make_settings

pytestmark = pytest.mark.reliability

PACKAGE = REPO_ROOT / "deploy_assets"
CLI = Path(sys.executable).parent / "deploy-assets"


# --- no shell, anywhere -----------------------------------------------------------------------


def shell_uses(source: str, filename: str = "<src>") -> list[str]:
    """Calls that hand a string to a shell: shell=True, os.system/popen/spawn*, subprocess.getoutput."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name in (
            "os.system",
            "os.popen",
            "subprocess.getoutput",
            "subprocess.getstatusoutput",
            "pty.spawn",
        ) or name.startswith("os.spawn"):
            found.append(f"{filename}:{node.lineno} {name}()")
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                found.append(f"{filename}:{node.lineno} {name}(shell={ast.unparse(keyword.value)})")
    return found


def test_no_subprocess_in_the_package_goes_through_a_shell():
    # The detector itself must see what it is looking for.
    assert shell_uses(
        "import subprocess, os\nsubprocess.run('id', shell=True)\nos.system('id')\n"
    ) == ["<src>:2 subprocess.run(shell=True)", "<src>:3 os.system()"]
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    offenders = [
        hit
        for path in sources
        for hit in shell_uses(path.read_text(), str(path.relative_to(REPO_ROOT)))
    ]
    assert offenders == []
    calls = sum(
        path.read_text().count("subprocess.") + path.read_text().count("run_git(")
        for path in sources
    )
    assert calls > 10  # the package does run git, go and servers: all with argument lists


# --- hostile tags: refused by policy, through git, the sensor and the CLI ---------------------


def hostile_tags(marker_dir: Path) -> list[str]:
    """Tags git accepts that spell commands, are very long, or use look-alike characters."""
    absolute = f"{marker_dir}/abs-pwned"
    return [
        "v1.0.0;touch${IFS}pwned-semicolon",
        "v1.0.0$(touch${IFS}pwned-subshell)",
        "v1.0.0`touch${IFS}pwned-backtick`",
        "v1.0.0-rc.1&&touch${IFS}pwned-and",
        "v1.0.0|touch${IFS}pwned-pipe",
        "v1.0.0>pwned-redirect",
        f"v1.0.0$(touch${{IFS}}{absolute})",
        "v1.0.0-alpha." + "1" * 200,  # 213 characters
        "v\u0661.\u0660.\u0660",  # Arabic-Indic digits
        "v\uff11.0.0",  # fullwidth digit one
        "v\U0001d7cf.0.0",  # mathematical bold digit one
        "v1.0.0-\u0430lpha.1",  # Cyrillic a in alpha
        "v1.0.0\u2010alpha.1",  # hyphen look-alike
        "v1.0.0\u200b",  # zero-width space
        "-v1.0.0",  # reads like an option
    ]


@pytest.mark.parametrize("tag", hostile_tags(Path("/tmp/marker")))
def test_policy_refuses_hostile_tags_naming_them(tag):
    with pytest.raises(TagRejected) as refused:
        parse_tag(tag)
    assert (repr(tag) if len(tag) <= 64 else repr(tag[:20])) in str(refused.value)


def test_hostile_tags_pushed_to_the_remote_launch_nothing_and_run_nothing(
    monorepo, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # relative `touch` targets would land here
    settings = make_settings(
        tmp_path,
        "registry.test:5000",
        "http://127.0.0.1:9",
        tmp_path / "git",
        monorepo.bare,
        "unused",
    )
    defs = build_definitions(settings, load_pipeline_config(), services=[])
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    tags = hostile_tags(tmp_path)
    with dg.instance_for_test() as instance:
        logged: list[str] = []

        def tick(cursor):
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources=dict(defs.resources)
            ) as context:
                context.log.addHandler(_Collect(logged))
                return sensor(context)

        baseline = tick(None)
        for tag in tags:  # update-ref: `git tag -v1.0.0` would read the name as an option
            run_git(["update-ref", f"refs/tags/{tag}", "HEAD"], cwd=monorepo.clone)
        run_git(["push", "--quiet", "origin", "refs/tags/*:refs/tags/*"], cwd=monorepo.clone)
        assert set(tags) <= set(
            GitSourceResource(remote=str(monorepo.bare), cache_dir=str(tmp_path)).ls_remote_tags()
        )
        result = tick(baseline.cursor)

        assert result.run_requests == [] and result.dynamic_partitions_requests == []
        for tag in tags:  # each reported, with the reason
            assert any(
                (repr(tag) if len(tag) <= 64 else repr(tag[:20])) in line for line in logged
            ), tag
        with pytest.raises(TagRejected):  # the in-process release path refuses before any step
            run_release(defs, instance, tags[1])
        assert instance.get_runs() == []
    for tag in tags[:2]:
        done = subprocess.run(
            [str(CLI), "release", tag],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            env={
                **os.environ,
                "DAGSTER_HOME": str(tmp_path / "home"),
                "DEPLOY_ASSETS_LOCAL_DIR": str(tmp_path / "local"),
                "DEPLOY_ASSETS_ENV_FILE": str(tmp_path / "no.env"),
            },
        )
        assert done.returncode == 2 and done.stderr.startswith(
            f"deploy-assets: refused: tag {tag!r}"
        ), done.stderr
    markers = [
        "pwned-semicolon",
        "pwned-subshell",
        "pwned-backtick",
        "pwned-and",
        "pwned-pipe",
        "pwned-redirect",
        "abs-pwned",
    ]
    assert [m for m in markers if (tmp_path / m).exists() or (REPO_ROOT / m).exists()] == []
    assert not (tmp_path / "home").exists()  # refused before touching the Dagster instance


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


# --- service directories, config files --------------------------------------------------------


@pytest.mark.parametrize(
    "directory",
    [
        "ms core",
        "..",
        "ms_cor\u0435",
        "-rf",
        "ms_core;id",
        "MS_Core",
        "ms__core",
        "ms_" + "x" * 130,
    ],
)
def test_unsafe_service_directories_in_a_real_repo_are_refused_naming_them(
    monorepo, tmp_path, directory
):
    if (
        directory == ".."
    ):  # git cannot store a '..' component: the path arrives from a listing as is
        files = ["go.mod", "cmd/ms/../main.go", "cmd/ms/ms_core/main.go"]
    else:
        monorepo.write(f"cmd/ms/{directory}/main.go", "package main\n\nfunc main() {}\n")
        commit = monorepo.commit(f"add {directory!r}")
        git = GitSourceResource(remote=str(monorepo.bare), cache_dir=str(tmp_path / "cache"))
        git.fetch()
        files = git.list_files(commit)
    with pytest.raises(PlanError) as refused:
        discover_services(files, load_pipeline_config().source)
    assert f"service directory {'cmd/ms/' + directory!r}" in str(refused.value)


BASE_CONFIG = (REPO_ROOT / "misc" / "configs" / "pipeline.yaml").read_text()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("source:", "sources:"), "sources"),  # unknown key
        (("    updates_routes: true\n", "    updates_routes: true\n    bulid: [ms]\n"), "bulid"),
        (("platforms: [arm64]", "platforms: arm64"), "platforms"),  # wrong type
        (("platforms: [arm64]", "platforms: [riscv64]"), "riscv64"),
        (("vendored: false", "vendored: [1]"), "vendored"),
        (("require_staging: true", "require_staging: maybe"), "maybe"),
        (
            ('dockerfile: "ms.Dockerfile"', 'dockerfile: "../../../etc/passwd"'),
            "../../../etc/passwd",
        ),
        (('dockerfile: "ms.Dockerfile"', 'dockerfile: "/etc/passwd"'), "/etc/passwd"),
        (
            (
                "    gitops_repo: gitops-development\n",
                "    gitops_repo: gitops-development\n    gitops: {path_template: '../../{project}.yaml'}\n",
            ),
            "../../{project}.yaml",
        ),
        (
            (
                "    gitops_repo: gitops-development\n",
                "    gitops_repo: gitops-development\n    gitops: {path_template: '/etc/{project}'}\n",
            ),
            "/etc/{project}",
        ),
        (
            (
                'build_flags: ["-trimpath", "-buildvcs=false"]',
                'build_flags: ["-ldflags=-X main.v=1"]',
            ),
            "-ldflags=-X main.v=1",
        ),
        (("envs:", "!!python/object/apply:os.system ['id']\nenvs:"), "not valid YAML"),
    ],
)
def test_bad_config_files_are_refused_naming_the_value(tmp_path, change, named):
    old, new = change
    assert old in BASE_CONFIG
    path = tmp_path / "pipeline.yaml"
    path.write_text(BASE_CONFIG.replace(old, new, 1))
    with pytest.raises(ConfigError) as refused:
        load_pipeline_config(path)
    assert named in str(refused.value) and str(path) in str(refused.value)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            (
                "    gitops_repo: gitops-development\n",
                "    gitops_repo: gitops-development\n    gitops: {path_template: 'apps/{project.__class__}/k.yaml'}\n",
            ),
            "{project.__class__}",
        ),
        (
            ('build_flags: ["-trimpath", "-buildvcs=false"]', 'build_flags: ["-toolexec=sh"]'),
            "-toolexec=sh",
        ),
        (
            ('build_flags: ["-trimpath", "-buildvcs=false"]', 'build_flags: ["-overlay=o.json"]'),
            "-overlay=o.json",
        ),
    ],
)
def test_config_values_that_would_fail_late_or_run_programs_are_refused_at_load(
    tmp_path, change, named
):
    old, new = change
    path = tmp_path / "pipeline.yaml"
    path.write_text(BASE_CONFIG.replace(old, new, 1))
    with pytest.raises(ConfigError) as refused:
        load_pipeline_config(path)
    assert named in str(refused.value)
