"""`make bench` stops everything it starts: its registries, S3 API servers and the dagster-daemon
with the code server and run workers it spawns, finished or failed.

A bench that ended used to leave two registries and two S3 servers running, their folders
deleted: it removed its folder (pid files included) before stopping them by those files. Here
the bench's own set-up and its daemon run for real (a light monorepo, the sensor's baseline tick
taken, so the code server is up); then nothing whose pid, working folder, command line or
environment points into the bench folder may survive, and the servers' ports are closed.
"""

import os
import socket
from pathlib import Path

import pytest

from misc.bench import daemon, run
from misc.bench.events import instance_at
from misc.bench.procs import alive, family

LIGHT = {"shared_records": 2, "service_records": 2}


def _points_into(pid: str, root: str) -> bool:
    try:
        if root in os.readlink(f"/proc/{pid}/cwd"):
            return True
        return any(
            root.encode() in Path(f"/proc/{pid}/{name}").read_bytes()
            for name in ("cmdline", "environ")
        )
    except OSError:  # gone meanwhile, or not ours to read
        return False


def survivors(root: Path, pids: set[int]) -> list[str]:
    """Live processes among pids, or pointing into root: what the bench left behind."""
    out = [f"pid {pid}" for pid in sorted(pids) if alive(pid)]
    for entry in os.scandir("/proc"):
        if (
            entry.name.isdigit()
            and int(entry.name) != os.getpid()
            and alive(int(entry.name))
            and _points_into(entry.name, str(root))
        ):
            out.append(
                f"pid {entry.name}: {Path(f'/proc/{entry.name}/cmdline').read_bytes()[:200]!r}"
            )
    return out


def _answers(url: str) -> bool:
    host, _, port = url.removeprefix("http://").partition(":")
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, int(port))) == 0


class StartEverything:
    """What a full bench has running at its busiest: both stacks and the daemon with its code
    server, which has taken the sensor's baseline. Then it returns, or fails like a case."""

    def __init__(self, fail: bool):
        self.fail, self.pids, self.ports = fail, set(), []

    def __call__(self, bench: run.Bench) -> None:
        bench.setup()
        log = bench.root / "logs" / "daemon.log"
        env = bench.ours_env(bench.remote)
        proc, started = daemon.start(bench.root / "daemon", env, log)
        bench.started.append(started)
        with instance_at(env["DAGSTER_HOME"]) as instance:
            daemon.wait_for(
                lambda: daemon.baseline_taken(instance),
                "the sensor's baseline",
                proc,
                log,
                timeout=300,
            )
        self.pids = {p for s in bench.started for p in family(s.pid)}
        assert len(self.pids) > len(bench.started), (
            "the daemon's code server should be running by now"
        )
        self.ports = [
            url for stack in bench.stacks.values() for url in (stack["registry"], stack["s3"])
        ]
        assert all(_answers(url) for url in self.ports)
        if self.fail:
            raise RuntimeError("a case failed")


def test_a_finished_bench_stops_what_it_started_then_removes_its_folder(tmp_path):
    root = tmp_path / "bench"
    bench, case = run.Bench(root, 1, records=LIGHT), StartEverything(fail=False)
    run.execute(bench, case, keep=False)
    assert not root.exists()
    assert survivors(root, case.pids) == []
    assert [url for url in case.ports if _answers(url)] == []


def test_a_failing_case_still_stops_everything_and_keeps_the_folder(tmp_path):
    root = tmp_path / "bench"
    bench, case = run.Bench(root, 1, records=LIGHT), StartEverything(fail=True)
    with pytest.raises(RuntimeError, match="a case failed"):
        run.execute(bench, case, keep=False)
    assert (root / "results-partial.json").exists() and (root / "logs" / "daemon.log").exists()
    assert survivors(root, case.pids) == []
    assert [url for url in case.ports if _answers(url)] == []
