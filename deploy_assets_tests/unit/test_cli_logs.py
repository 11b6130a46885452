"""Dagster's records of a CLI command go to its log file (or the terminal), through the job's
loggers: real jobs on an ephemeral instance, no processes."""

import dagster as dg
import pytest

from deploy_assets.cli import commands as cli
from deploy_assets.cli.logs import DagsterLog
from deploy_assets.cli.outcome import EXIT_REFUSED
from deploy_assets.config import ConfigError


@dg.op
def fails(context: dg.OpExecutionContext) -> None:
    context.log.info("about to fail")
    raise RuntimeError("the reason")


@dg.job
def failing():
    fails()


def run(defs: dg.Definitions, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    with dg.DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def("failing").execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config
        )


def test_a_wired_job_logs_to_the_file_not_the_terminal(tmp_path, capsys):
    log = DagsterLog.for_command("release", tmp_path / "home")
    assert log.path.parent == tmp_path / "home" / "logs" and log.path.name.startswith("release-")
    assert log.written() is None and not (tmp_path / "home").exists()  # nothing before a record
    result = run(
        log.wire(dg.Definitions(jobs=[failing])),
        {"loggers": {"console": {"config": {"log_level": log.level}}}},
    )
    assert not result.success
    text = log.written().read_text()
    assert " - dagster - DEBUG - failing - " in text and "STEP_FAILURE" in text
    assert "RuntimeError: the reason" in text and "Stack Trace:" in text
    assert "about to fail" in text
    out = capsys.readouterr()
    assert "STEP_FAILURE" not in out.out + out.err
    assert log.announce() == f"full log: {log.path}" and log.announce() is None  # said once
    log.close()


def test_the_level_bounds_the_records(tmp_path):
    log = DagsterLog(tmp_path / "x.log", level="error")
    run(
        log.wire(dg.Definitions(jobs=[failing])),
        {"loggers": {"console": {"config": {"log_level": log.level}}}},
    )
    text = log.written().read_text()
    assert "STEP_FAILURE" in text and " - DEBUG - " not in text and "about to fail" not in text


def test_verbose_writes_the_records_to_stderr(tmp_path, capsys):
    log = DagsterLog.for_command("rollback", tmp_path, verbose=True)
    assert log.path is None and log.level == "INFO"
    run(log.wire(dg.Definitions(jobs=[failing])), {"loggers": {"console": {}}})
    assert log.written() is None
    err = capsys.readouterr().err
    assert " - dagster - ERROR - failing - " in err and " - DEBUG - " not in err


def test_a_run_naming_no_logger_is_bridged_through_stderr(tmp_path, capsys):
    """Dagster's default console logger (a run config without loggers) writes to sys.stderr."""
    log = DagsterLog(tmp_path / "logs" / "rollback.log")
    with log.stderr_to_file():
        run(dg.Definitions(jobs=[failing]))
    assert "STEP_FAILURE" in log.written().read_text()
    assert "STEP_FAILURE" not in capsys.readouterr().err


def test_a_bad_level_is_refused_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEPLOY_ASSETS_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="DEPLOY_ASSETS_LOG_LEVEL='LOUD' is not a log level"):
        DagsterLog(None)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEPLOY_ASSETS_ENV_FILE", str(tmp_path / "none.env"))
    assert cli.main(["release", "v0.1.0"]) == EXIT_REFUSED  # before anything runs
    assert capsys.readouterr().err.startswith(
        "deploy-assets: refused: DEPLOY_ASSETS_LOG_LEVEL='LOUD' is not a log level: set DEBUG"
    )
    assert not (tmp_path / "home").exists()


def test_an_unexpected_error_keeps_its_traceback_in_the_log(tmp_path, monkeypatch, capsys):
    """main(): one line on stderr, the traceback in the file it names."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEPLOY_ASSETS_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.delenv("DEPLOY_ASSETS_DEBUG", raising=False)

    def explode(args):
        raise KeyError("boom")

    monkeypatch.setattr(cli, "cmd_demo", explode)  # what the parser binds `demo` to
    assert cli.main(["demo"]) == 1
    out = capsys.readouterr()
    assert out.err == "deploy-assets: error: KeyError: 'boom'\n"
    path = out.out.strip().removeprefix("full log: ")
    text = open(path).read()
    assert "unexpected error:\nTraceback" in text and "KeyError: 'boom'" in text
