"""The one place that imports Dagster's private state-backed definitions API.

`StateBackedDefinitionsLoader` (dagster._core.definitions.definitions_load_context) is what makes
a run worker build exactly the graph the code server built: at initialization (code server,
`dagster dev`, a reload) it calls `fetch_state` and attaches the state to the definitions as
reconstruction metadata; the run's execution plan snapshot carries that metadata, and a worker
reconstructing the code location gets the state from it, without calling `fetch_state`. A state
file refreshed between the two therefore cannot change a running release's graph.

It is private: a Dagster upgrade may move or change it. Everything private is imported here and
nowhere else, and deploy_assets_tests/test_services_state.py checks its signature and behaviour,
so an upgrade that breaks it fails that test by name instead of silently re-reading the file in
every worker.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import dagster as dg
from dagster._core.definitions.definitions_load_context import (  # noqa: F401 (re-exported for the contract test)
    DefinitionsLoadContext,
    DefinitionsLoadType,
    StateBackedDefinitionsLoader,
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


def state_backed_definitions(key: str, fetch: Callable[[], str],
                             build: Callable[[str], dg.Definitions]) -> dg.Definitions:
    """Definitions built from `fetch()`'s text at initialization, and from the text the code
    server recorded when reconstructing (run workers, step processes): `fetch` is not called
    then."""
    with warnings.catch_warnings():  # the metadata it attaches is "preview": this file is the guard
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _TextStateLoader(key, fetch, build).build_defs()

