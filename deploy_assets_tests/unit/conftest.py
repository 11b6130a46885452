"""The unit tier (`make test-unit`) is pure, and this conftest proves it instead of trusting it.

Every phase of every test under unit/ (its fixtures' set-up included, session fixtures too) runs
with process starts and socket connections refused: no go, docker or git, no registry, S3 or
GitHub stand-in, no dagster code server. A test that tries fails naming what it tried, even when
the code under test catches the refusal (it is recorded, and the phase fails when it ends). Files,
threads and an ephemeral or SQLite-in-tmp_path Dagster instance are fine: they are what the tier
is for. A test that needs more belongs in deploy_assets_tests/ outside unit/.

The hooks here run only for items under this folder (pytest calls a conftest's runtest hooks for
its own directory), so `make test`, which collects everything, keeps the other tiers unguarded.
"""

from __future__ import annotations

import multiprocessing.process
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

WHERE = "deploy_assets_tests/unit/ is the pure tier; move the test out of unit/ if it needs this"


class ImpureCall(RuntimeError):
    """A unit test started a process or opened a connection."""


@contextmanager
def pure(nodeid: str) -> Iterator[None]:
    """Refuse process starts and socket connects while the block runs; fail if any was tried."""
    tried: list[str] = []

    def refuse(what: str):
        tried.append(what)
        raise ImpureCall(f"{nodeid}: {what} refused ({WHERE})")

    def popen_init(self, args, *_, **__):
        self._child_created = False  # Popen.__del__ reads it
        refuse(f"starting the process {args!r}")

    def spawn(name: str):
        return lambda *args, **_: refuse(f"{name}{args[:2]!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", popen_init)
        for name in ("system", "posix_spawn", "posix_spawnp", "fork", "forkpty", "execv", "execve"):
            if hasattr(os, name):
                patch.setattr(os, name, spawn(f"os.{name}"))
        patch.setattr(
            multiprocessing.process.BaseProcess,
            "start",
            lambda self: refuse(f"starting the process {self!r}"),
        )
        patch.setattr(
            socket.socket, "connect", lambda self, address: refuse(f"connecting to {address!r}")
        )
        patch.setattr(
            socket.socket, "connect_ex", lambda self, address: refuse(f"connecting to {address!r}")
        )
        yield
    if tried:
        raise ImpureCall(
            f"{nodeid}: tried (and was refused, though the code caught it): "
            + "; ".join(tried)
            + f" ({WHERE})"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with pure(item.nodeid):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with pure(item.nodeid):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    if nextitem is None:  # the session's teardown too: it may stop what other tiers' tests started
        return (yield)
    with pure(item.nodeid):
        return (yield)
