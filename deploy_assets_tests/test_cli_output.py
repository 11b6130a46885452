"""What a person reads from `deploy-assets release | rollback`: real CLI subprocesses on a real
instance and local stack. An expected refusal is a few lines (what, why, what to do, where the log
is) with its documented exit code; Dagster's own records go to the log file, or to the terminal
with --verbose.
"""

import re
import subprocess
import sys
from pathlib import Path

from deploy_assets.cli.outcome import EXIT_GATE, EXIT_REFUSED
from deploy_assets_tests.production import deployment

CLI = str(Path(sys.executable).parent / "deploy-assets")
LOG_LINE = re.compile(r"^full log: (?P<path>\S+)$", re.M)
# The console format of Dagster's records: "2026-12-02 02:10:11 +0000 - dagster - DEBUG - ..."
RECORD = re.compile(r" - dagster - (DEBUG|INFO|WARNING|ERROR) - ")


def _cli(harness, tmp_path, *argv: str) -> subprocess.CompletedProcess:
    env = deployment.deployment_env(harness.settings, tmp_path / "cli_home")
    done = subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=600, env=env)
    print(f"exit {done.returncode}", done.stdout, done.stderr, sep="\n")  # shown when a test fails
    return done


def _lines(done: subprocess.CompletedProcess) -> list[str]:
    return (done.stdout + done.stderr).splitlines()


def _log_file(done: subprocess.CompletedProcess, home: Path) -> Path:
    found = LOG_LINE.search(done.stdout + done.stderr)
    assert found, "the output names no log file"
    path = Path(found["path"])
    assert path.is_file() and path.is_relative_to(home), path
    return path


def test_prod_release_without_an_rc_is_a_short_refusal_with_the_log_named(harness, tmp_path):
    commit = harness.monorepo.tag("v0.9.0")
    done = _cli(harness, tmp_path, "release", "v0.9.0")
    lines = _lines(done)
    assert done.returncode == EXIT_GATE
    assert len(lines) <= 10, lines
    text = "\n".join(lines)
    assert "Traceback" not in text and not RECORD.search(text)
    assert (
        "deploy-assets: refused: promotion gate: v0.9.0 refused before any side effect: "
        f"no successful staging release v0.9.0-rc.N on commit {commit[:12]}"
    ) in text
    assert "do: release v0.9.0-rc.N to staging first" in text
    log = _log_file(done, tmp_path / "cli_home").read_text()
    # The log holds Dagster's records of the run, with the failure and its stack trace.
    assert RECORD.search(log) and "STEP_FAILURE" in log and "Stack Trace:" in log
    assert "promotion gate: v0.9.0 refused before any side effect" in log


def test_rollback_with_nothing_to_roll_back_to_is_a_short_refusal(harness, tmp_path):
    done = _cli(harness, tmp_path, "rollback", "prod")
    lines = _lines(done)
    assert done.returncode == EXIT_REFUSED
    assert len(lines) <= 10, lines
    text = "\n".join(lines)
    assert "Traceback" not in text and not RECORD.search(text)
    assert (
        "deploy-assets: rollback of prod refused: gitops-production has no earlier version to "
        "roll back to (versions run: none)"
    ) in text
    assert "deploy-assets: do: `deploy-assets status` shows what prod runs and ran" in text
    log = _log_file(done, tmp_path / "cli_home").read_text()
    assert RECORD.search(log) and "RUN_FAILURE" in log


def test_verbose_shows_dagsters_records_on_the_terminal(harness, tmp_path):
    done = _cli(harness, tmp_path, "rollback", "prod", "--verbose")
    assert done.returncode == EXIT_REFUSED
    assert RECORD.search(done.stderr) and "STEP_FAILURE" in done.stderr
    assert "rollback of prod refused: gitops-production has no earlier version" in done.stdout
    assert not LOG_LINE.search(done.stdout + done.stderr)  # nothing went to a file
