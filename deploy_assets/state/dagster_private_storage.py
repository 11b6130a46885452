"""Dagster's private SQLite storage classes, for deploy_assets/local/instance.py only.

The sibling of deploy_assets/state/dagster_private.py (see its docstring), apart so that what
imports only that one (the code location, the CLI) does not pay for importing Dagster's storage
(about a second): a process loads this module when its instance's storage is the local one.

local/instance.py subclasses `DagsterSqliteStorage` and `SqliteEventLogStorage` and overrides the
private `_connect` through which Dagster reaches every SQLite database. What it relies on is
listed in OVERRIDDEN, CALLED and INSTANCE_ATTRIBUTES below, which
deploy_assets_tests/unit/test_dagster_private_contract.py checks, naming the symbol when a Dagster
upgrade changes one. The event log's check-record read (dagster_private.latest_check_executions)
is listed here too, since its method lives on the storage class.
"""

from __future__ import annotations

from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory

__all__ = [
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "DagsterSqliteStorage",
    "SqliteEventLogStorage",
    "event_logs_directory",
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
}
# Attributes local/instance.py's event log reads on itself (set by Dagster's __init__). What it
# replaces on DagsterSqliteStorage, `_event_log_storage`, is checked by the public property
# `event_log_storage` returning the replacement.
INSTANCE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    SqliteEventLogStorage: ("_db_lock", "_initialized_dbs"),
}


def event_logs_directory(base_dir: str) -> str:
    """Where DagsterSqliteStorage keeps its event log databases under base_dir."""
    return _event_logs_directory(base_dir)
