"""Where Dagster's own records go when a person runs a CLI command: a log file, or the terminal.

A release's terminal shows the progress lines and the outcome (deploy_assets.cli.progress); the
DEBUG/INFO/ERROR records of Dagster's console logger, with their stack traces of Dagster
internals, would bury them. So the CLI gives every job it runs a `console` logger of its own (the
Definitions' default loggers, Dagster's documented way to choose a job's loggers) that writes to
DAGSTER_HOME/logs/<command>-<time>-<pid>.log, or with --verbose to stderr in Dagster's own
console format. Dagster uses a job's logger only when the run config names it (else its default
console logger): run_release does; for a run that does not, stderr_to_file bridges. The file is
created at the first record, so a refusal before any run (a malformed tag) leaves DAGSTER_HOME
untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from deploy_assets.config import LOCAL_DIR, ConfigError

# Dagster's console format, so the file reads like the terminal did ("... - dagster - INFO - ...").
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
LOG_LEVEL_ENV = "DEPLOY_ASSETS_LOG_LEVEL"
FILE_LEVEL, TERMINAL_LEVEL = "DEBUG", "INFO"  # the file keeps everything; the terminal the events


def dagster_home() -> Path:
    """DAGSTER_HOME (default .local/dagster_home), set in the environment for the instance."""
    return Path(os.environ.setdefault("DAGSTER_HOME", str(LOCAL_DIR / "dagster_home")))


class DagsterLog:
    """Dagster's console log of one CLI command: a file (path) or, with path None, stderr."""

    def __init__(self, path: Path | None, level: str | None = None):
        self.path = path
        default = FILE_LEVEL if path else TERMINAL_LEVEL
        self.level = (level or os.environ.get(LOG_LEVEL_ENV) or default).upper()
        if self.level not in logging.getLevelNamesMapping():
            raise ConfigError(
                f"{LOG_LEVEL_ENV}={self.level!r} is not a log level: "
                "set DEBUG, INFO, WARNING or ERROR, or unset it"
            )
        self._handler: logging.Handler | None = None
        self._announced = False

    @classmethod
    def for_command(cls, command: str, home: Path, verbose: bool = False) -> DagsterLog:
        """The log of `command` under home/logs (command is one of ours, never user input)."""
        if verbose:
            return cls(None)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return cls(home / "logs" / f"{command}-{stamp}-{os.getpid()}.log")

    def handler(self) -> logging.Handler:
        """One handler for every run of the command; the file appears with its first record."""
        if self._handler is None:
            if self.path is None:
                self._handler = logging.StreamHandler(sys.stderr)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handler = logging.FileHandler(self.path, delay=True, encoding="utf-8")
            self._handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
        return self._handler

    def logger_def(self) -> dg.LoggerDefinition:
        """A `console` logger with the config of Dagster's (log_level, name), writing here."""

        @dg.logger(
            config_schema={
                "log_level": dg.Field(
                    str,
                    is_required=False,
                    default_value=self.level,
                    description="The logger's threshold.",
                ),
                "name": dg.Field(
                    str,
                    is_required=False,
                    default_value="dagster",
                    description="The logger's name, shown in each record.",
                ),
            },
            description=f"Dagster's records of this command: {self.path or 'stderr'}",
        )
        def console(init_context: dg.InitLoggerContext) -> logging.Logger:
            config = init_context.logger_config
            logger = logging.Logger(config["name"], level=config["log_level"].upper())
            logger.addHandler(self.handler())
            return logger

        return console

    def wire(self, defs: dg.Definitions) -> dg.Definitions:
        """defs whose jobs (those naming no loggers of their own) log here."""
        return dg.Definitions.merge(defs, dg.Definitions(loggers={"console": self.logger_def()}))

    @contextlib.contextmanager
    def stderr_to_file(self) -> Iterator[None]:
        """For a job run with no loggers in its run config (run_rollback's): Dagster then logs
        through its default console logger, which writes to sys.stderr as it is at each record,
        so the records land in the file. A stopgap until that run takes the loggers' config."""
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as stream, contextlib.redirect_stderr(stream):
            yield

    def record_exception(self, exc: BaseException) -> None:
        """An unexpected error's traceback, in the file the CLI names (--verbose: stderr)."""
        text = "".join(traceback.format_exception(exc))
        record = logging.LogRecord(
            "deploy_assets.cli", logging.ERROR, __file__, 0, "unexpected error:\n%s", (text,), None
        )
        self.handler().handle(record)

    def written(self) -> Path | None:
        """The file, if anything was written to it (what the CLI prints at the end)."""
        if self._handler is not None:
            self._handler.flush()
        return self.path if self.path and self.path.is_file() else None

    def announce(self) -> str | None:
        """The "full log: PATH" line, once: a command prints it before its last line (a
        release's "run ...: succeeded", which scripts read), main() at the end otherwise."""
        written = self.written()
        if written is None or self._announced:
            return None
        self._announced = True
        return f"full log: {written}"

    def close(self) -> None:
        if self._handler is not None and self.path is not None:
            self._handler.close()
