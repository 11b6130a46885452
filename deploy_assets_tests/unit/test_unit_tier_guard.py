"""The unit tier's guard (unit/conftest.py) refuses what a pure test must not do, and says so
even when the code under test swallows the refusal."""

import os
import socket
import subprocess

import pytest

from deploy_assets_tests.unit.conftest import ImpureCall, pure


def test_a_process_start_is_refused_naming_the_command():
    with pytest.raises(ImpureCall, match=r"some-test: starting the process \['go', 'version'\]"):
        with pure("some-test"):
            subprocess.run(["go", "version"], check=False)


def test_a_refusal_the_code_swallows_still_fails_when_the_block_ends():
    with pytest.raises(ImpureCall, match=r"caught it\): starting the process \['git', 'status'\]"):
        with pure("some-test"):
            try:
                subprocess.run(["git", "status"], check=False)
            except Exception:  # what a caller that tolerates a missing git would do
                pass


@pytest.mark.parametrize("address", [("127.0.0.1", 9), "/var/run/docker.sock"])
def test_a_connection_is_refused_naming_the_address(address):
    family = socket.AF_INET if isinstance(address, tuple) else socket.AF_UNIX
    with socket.socket(family) as sock, pytest.raises(ImpureCall, match="connecting to"):
        with pure("some-test"):
            sock.connect(address)


def test_os_level_process_starts_are_refused_too():
    with pytest.raises(ImpureCall, match=r"os\.system"):
        with pure("some-test"):
            os.system("docker ps")
