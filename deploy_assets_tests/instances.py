"""Dagster instances for tests on the storage the project configures.

misc/configs/dagster.local.yaml names its storage folder through DAGSTER_HOME, which is what
Dagster itself always loads an instance from (`DagsterInstance.get()`, `dagster dev`, the
daemon, run workers). A test that opens another process's home by path must therefore point
DAGSTER_HOME at it too, or it would read the storage of whatever home the variable names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import yaml

from deploy_assets.config import REPO_ROOT

LOCAL_YAML = REPO_ROOT / "misc" / "configs" / "dagster.local.yaml"


@contextlib.contextmanager
def local_instance_for_test(home: Path) -> Iterator[dg.DagsterInstance]:
    """A temporary instance with the storage misc/configs/dagster.local.yaml configures."""
    home.mkdir(parents=True, exist_ok=True)
    storage = yaml.safe_load(LOCAL_YAML.read_text())["storage"]
    storage["custom"]["config"]["base_dir"] = str(home)
    with dg.instance_for_test(temp_dir=str(home), overrides={"storage": storage}) as instance:
        yield instance


def load_instance(home: Path | str) -> dg.DagsterInstance:
    """The instance at home, as Dagster loads it: with DAGSTER_HOME=home (restored afterwards;
    the storage has resolved its folder by then). Use it as a context manager, or dispose it."""
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        return dg.DagsterInstance.from_config(str(home))
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before
