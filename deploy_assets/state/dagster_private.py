"""The one place that imports Dagster's private APIs: everything else imports them from here.

Three uses, each because Dagster 1.13 has no public API for it:

- `StateBackedDefinitionsLoader` (dagster._core.definitions.definitions_load_context) is what makes
  a run worker build exactly the graph the code server built: at initialization (code server,
  `dagster dev`, a reload) it calls `fetch_state` and attaches the state to the definitions as
  reconstruction metadata; the run's execution plan snapshot carries that metadata, and a worker
  reconstructing the code location gets the state from it, without calling `fetch_state`. A state
  file refreshed between the two therefore cannot change a running release's graph.
- The local instance's SQLite storage (deploy_assets/local_instance.py) subclasses Dagster's
  `DagsterSqliteStorage` and `SqliteEventLogStorage` and overrides their private `_connect`.
- The records of asset checks are filtered by partition with `PartitionKeyFilter`
  (`latest_check_executions`, which lineage reads).

A Dagster upgrade may move or change any of them. deploy_assets_tests/unit/
test_dagster_private_contract.py checks every symbol, signature and attribute listed in
OVERRIDDEN, CALLED and INSTANCE_ATTRIBUTES below, and the behaviour each use needs, so an upgrade
that breaks one fails that test naming the symbol, instead of a later obscure error (or silently
re-reading the state file in every worker). This file is then the one to fix.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import dagster as dg
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
    StateBackedDefinitionsLoader,
)
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory

__all__ = [  # what the rest of deploy_assets (and the contract test) may import from here
    "DagsterSqliteStorage",
    "DefinitionsLoadContext",
    "DefinitionsLoadType",
    "PartitionKeyFilter",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "SqliteEventLogStorage",
    "StateBackedDefinitionsLoader",
    "event_logs_directory",
    "latest_check_executions",
    "state_backed_definitions",
]

# Methods deploy_assets overrides: Dagster calls our override, so its parameters must stay exactly
# these (a new parameter would be passed to an override that does not take it).
OVERRIDDEN: dict[tuple[type, str], tuple[str, ...]] = {
    (SqliteEventLogStorage, "__init__"): ("self", "base_dir", "inst_data"),
    (SqliteEventLogStorage, "_connect"): ("self", "shard"),
    (SqliteEventLogStorage, "wipe"): ("self",),
    (SqliteEventLogStorage, "upgrade"): ("self",),
    (SqliteEventLogStorage, "dispose"): ("self",),
    (DagsterSqliteStorage, "__init__"): ("self", "base_dir", "inst_data"),
    (DagsterSqliteStorage, "from_config_value"): ("inst_data", "config_value"),
}
# Callables deploy_assets calls: these parameters first, in this order; any others optional.
CALLED: dict[tuple[type, str], tuple[str, ...]] = {
    (SqliteEventLogStorage, "_initdb"): ("self", "engine"),
    (SqliteEventLogStorage, "conn_string_for_shard"): ("self", "shard_name"),
    (DagsterSqliteStorage, "from_local"): ("base_dir", "inst_data"),
    (EventLogStorage, "get_latest_asset_check_execution_by_key"): (
        "self",
        "check_keys",
        "partition_filter",
    ),
    (StateBackedDefinitionsLoader, "build_defs"): ("self",),
}
# Attributes local_instance.py's event log reads on itself (set by Dagster's __init__). What it
# replaces on DagsterSqliteStorage, `_event_log_storage`, is checked by the public property
# `event_log_storage` returning the replacement.
INSTANCE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    SqliteEventLogStorage: ("_db_lock", "_initialized_dbs"),
}


def event_logs_directory(base_dir: str) -> str:
    """Where DagsterSqliteStorage keeps its event log databases under base_dir."""
    return _event_logs_directory(base_dir)


def latest_check_executions(
    instance: dg.DagsterInstance, check_keys: Sequence[dg.AssetCheckKey], partition: str
) -> Mapping[dg.AssetCheckKey, object]:
    """The latest execution record of each check for one partition (AssetCheckExecutionRecord:
    `.event` is its evaluation's EventLogEntry); checks never run for it are absent."""
    return instance.event_log_storage.get_latest_asset_check_execution_by_key(
        check_keys, partition_filter=PartitionKeyFilter(key=partition)
    )


class _TextStateLoader(StateBackedDefinitionsLoader[str]):
    """State is a JSON text (a str is serializable by Dagster's serdes as it is)."""

    def __init__(self, key: str, fetch: Callable[[], str], build: Callable[[str], dg.Definitions]):
        self._key, self._fetch, self._build = key, fetch, build

    @property
    def defs_key(self) -> str:
        return self._key

    def fetch_state(self) -> str:
        return self._fetch()

    def defs_from_state(self, state: str) -> dg.Definitions:
        return self._build(state)


def state_backed_definitions(
    key: str, fetch: Callable[[], str], build: Callable[[str], dg.Definitions]
) -> dg.Definitions:
    """Definitions built from `fetch()`'s text at initialization, and from the text the code
    server recorded when reconstructing (run workers, step processes): `fetch` is not called
    then."""
    with warnings.catch_warnings():  # the metadata it attaches is "preview": this file is the guard
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _TextStateLoader(key, fetch, build).build_defs()
