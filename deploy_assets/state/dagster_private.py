"""The place that imports Dagster's private APIs: everything else imports them from here (or,
for the SQLite storage classes, from its sibling dagster_private_storage.py).

Each is used because Dagster 1.13 has no public API for it:

- `StateBackedDefinitionsLoader` (dagster._core.definitions.definitions_load_context) is what makes
  a run worker build exactly the graph the code server built: at initialization (code server,
  `dagster dev`, a reload) it calls `fetch_state` and attaches the state to the definitions as
  reconstruction metadata; the run's execution plan snapshot carries that metadata, and a worker
  reconstructing the code location gets the state from it, without calling `fetch_state`. A state
  file refreshed between the two therefore cannot change a running release's graph.
- `PartitionKeyFilter` (dagster._core.event_api) filters the records of partitioned asset checks
  by partition (`latest_check_executions`, which lineage reads).
- The local instance's SQLite storage (deploy_assets/local/instance.py) subclasses Dagster's
  storage classes: dagster_private_storage.py.

A Dagster upgrade may move or change any of them. deploy_assets_tests/unit/
test_dagster_private_contract.py checks every symbol, signature and attribute the two modules
list (CALLED here; OVERRIDDEN, CALLED and INSTANCE_ATTRIBUTES there) and the behaviour each use
needs, so an upgrade that breaks one fails that test naming the symbol, instead of a later
obscure error (or silently re-reading the state file in every worker). These two files are then
the ones to fix.
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

__all__ = [  # what the rest of deploy_assets (and the contract test) may import from here
    "DefinitionsLoadContext",
    "DefinitionsLoadType",
    "PartitionKeyFilter",
    "StateBackedDefinitionsLoader",
    "latest_check_executions",
    "state_backed_definitions",
]

# Callables deploy_assets calls: these parameters first, in this order; any others optional.
CALLED: dict[tuple[type, str], tuple[str, ...]] = {
    (StateBackedDefinitionsLoader, "build_defs"): ("self",),
}


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
