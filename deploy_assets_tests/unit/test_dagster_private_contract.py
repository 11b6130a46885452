"""The contract with Dagster's private APIs (deploy_assets/state/dagster_private.py and its
sibling dagster_private_storage.py, the only modules that import them).

Fails when a Dagster upgrade removes, renames or changes a private symbol deploy_assets uses,
naming it, instead of failing later with an obscure error (or, for the state-backed loader,
silently re-reading the state file in every run worker). The adapter is then what to fix. A
symbol that is gone fails the adapter's import, which names it too.
"""

import ast
import inspect
import json
import os
import warnings
from pathlib import Path

import dagster as dg
import pytest

import deploy_assets
from deploy_assets.local.instance import EngineReusingSqliteEventLogStorage
from deploy_assets.state import dagster_private as private, dagster_private_storage as storage

FIX = "fix deploy_assets/state/dagster_private*.py (their docstrings name the module using it)"
OVERRIDDEN = storage.OVERRIDDEN
CALLED = {**private.CALLED, **storage.CALLED}


def _name(owner: type, attribute: str) -> str:
    return f"{owner.__module__}.{owner.__qualname__}.{attribute}"


def _parameters(owner: type, attribute: str) -> tuple[str, ...]:
    assert hasattr(owner, attribute), f"{_name(owner, attribute)} is gone; {FIX}"
    return tuple(inspect.signature(getattr(owner, attribute)).parameters)


def _ids(table: dict) -> list[str]:
    return [f"{owner.__name__}.{attribute}" for owner, attribute in table]


@pytest.mark.parametrize(("symbol", "expected"), OVERRIDDEN.items(), ids=_ids(OVERRIDDEN))
def test_what_deploy_assets_overrides_keeps_its_exact_parameters(symbol, expected):
    actual = _parameters(*symbol)
    assert actual == expected, (
        f"{_name(*symbol)} now takes {actual}; deploy_assets overrides it as {expected}: {FIX}"
    )


@pytest.mark.parametrize(("symbol", "expected"), CALLED.items(), ids=_ids(CALLED))
def test_what_deploy_assets_calls_keeps_its_leading_parameters_and_needs_no_others(
    symbol, expected
):
    owner, attribute = symbol
    actual = _parameters(owner, attribute)
    assert actual[: len(expected)] == expected, (
        f"{_name(owner, attribute)} now takes {actual}; deploy_assets calls it with {expected}: {FIX}"
    )
    signature = inspect.signature(getattr(owner, attribute))
    required = [
        p
        for p in list(signature.parameters)[len(expected) :]
        if signature.parameters[p].default is inspect.Parameter.empty
        and signature.parameters[p].kind
        not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    assert not required, f"{_name(owner, attribute)} now requires {required}: {FIX}"


def test_the_local_storage_still_fits_dagsters_sqlite_storage(tmp_path):
    """One instance on misc/configs/dagster.local.yaml's storage class: Dagster still hands out
    the event log LocalSqliteStorage puts in place, with the attributes the subclass reads, in the
    folder the adapter names, and still reaches its databases through the overridden _connect."""
    home = tmp_path / "home"
    home.mkdir()
    overrides = {
        "storage": {
            "custom": {
                "module": "deploy_assets.local.instance",
                "class": "LocalSqliteStorage",
                "config": {"base_dir": str(home)},
            }
        },
        "compute_logs": {  # the default one runs `tail`
            "module": "dagster._core.storage.noop_compute_log_manager",
            "class": "NoOpComputeLogManager",
        },
    }

    @dg.asset
    def probe() -> int:
        return 1

    with dg.instance_for_test(temp_dir=str(home), overrides=overrides) as instance:
        event_log = instance.event_log_storage
        assert isinstance(event_log, EngineReusingSqliteEventLogStorage), (
            f"{_name(storage.DagsterSqliteStorage, 'event_log_storage')} no longer returns "
            f"_event_log_storage, which LocalSqliteStorage replaces: {FIX}"
        )
        for attribute in storage.INSTANCE_ATTRIBUTES[storage.SqliteEventLogStorage]:
            assert hasattr(event_log, attribute), (
                f"{_name(storage.SqliteEventLogStorage, attribute)} is gone; {FIX}"
            )
        assert isinstance(event_log._initialized_dbs, set) and hasattr(
            event_log._db_lock, "acquire"
        ), f"{_name(storage.SqliteEventLogStorage, '_initialized_dbs')} or _db_lock changed: {FIX}"
        assert os.path.abspath(storage.event_logs_directory(str(home))) == event_log._base_dir, (
            f"the event log moved from event_logs_directory: {FIX}"
        )
        run_id = dg.materialize([probe], instance=instance).run_id
        assert {"index", run_id} <= set(event_log._engines), (
            f"{_name(storage.SqliteEventLogStorage, '_connect')} is no longer how Dagster reaches "
            f"its databases (engines kept: {list(event_log._engines)}): {FIX}"
        )
        assert instance.fetch_materializations(probe.key, limit=1).records[0].run_id == run_id


def test_check_executions_are_read_for_one_partition():
    """Partitioned checks (a preview feature, as deploy_assets/checks/base.py declares them) record
    their partition, and the adapter's filter finds each partition's own result."""
    partitions = dg.StaticPartitionsDefinition(["dev|v1", "prod|v1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        spec = dg.AssetCheckSpec("fresh", asset="thing", partitions_def=partitions)

    @dg.asset(partitions_def=partitions, check_specs=[spec])
    def thing(context: dg.AssetExecutionContext):
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="fresh", passed=context.partition_key == "dev|v1")

    assert private.PartitionKeyFilter(key="dev|v1").key == "dev|v1"
    key = dg.AssetCheckKey(thing.key, "fresh")
    with dg.DagsterInstance.ephemeral() as instance:
        for partition in ("dev|v1", "prod|v1"):
            assert dg.materialize([thing], instance=instance, partition_key=partition).success
        for partition, passed in (("dev|v1", True), ("prod|v1", False)):
            record = private.latest_check_executions(instance, [key], partition)[key]
            evaluation = record.event.dagster_event.event_specific_data
            assert (evaluation.partition, evaluation.passed) == (partition, passed), (
                f"{_name(private.PartitionKeyFilter, 'key')} no longer filters check records: {FIX}"
            )
        assert private.latest_check_executions(instance, [key], "staging|v1") == {}


def test_dagsters_state_backed_loader_still_behaves_as_the_adapter_needs():
    """A code server's load fetches the state once and records it; a run worker's reconstruction
    reads the recorded state and does not fetch."""
    loader = private.StateBackedDefinitionsLoader
    assert loader.__abstractmethods__ == {"defs_key", "fetch_state", "defs_from_state"}
    assert callable(loader.build_defs) and callable(loader.get_or_fetch_state)
    context_cls, load_type = private.DefinitionsLoadContext, private.DefinitionsLoadType
    fetched: list[str] = []

    def fetch() -> str:
        fetched.append("fetch")
        return json.dumps(["a", "b"])

    def build(text: str) -> dg.Definitions:
        return dg.Definitions(assets=[dg.AssetSpec(name) for name in json.loads(text)])

    with context_cls.scoped(context_cls(load_type=load_type.INITIALIZATION)) as initializing:
        first = private.state_backed_definitions("k", fetch, build)
        recorded = initializing.get_pending_reconstruction_metadata()["k"]
    assert fetched == ["fetch"] and {k.path[-1] for k in first.resolve_all_asset_keys()} == {
        "a",
        "b",
    }
    repo = first.get_repository_def().replace_repository_load_data({"k": recorded}, None)
    with context_cls.scoped(
        context_cls(
            load_type=load_type.RECONSTRUCTION, repository_load_data=repo.repository_load_data
        )
    ):
        again = private.state_backed_definitions("k", fetch, build)
    assert fetched == ["fetch"], (
        "a reconstruction fetched the state again instead of reading the metadata"
    )
    assert {k.path[-1] for k in again.resolve_all_asset_keys()} == {"a", "b"}


# Until the lead switches lineage.py to dagster_private.latest_check_executions; the test below
# fails once it no longer imports an internal, so the entry cannot outlive the import.
NOT_YET_THROUGH_THE_ADAPTER: set[str] = set()


def test_only_the_adapter_imports_dagster_internals():
    package = Path(deploy_assets.__file__).parent
    adapters = {
        "deploy_assets/state/dagster_private.py",
        "deploy_assets/state/dagster_private_storage.py",
    }
    importing = {}
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        if "dagster._" not in text:  # parsing only the files that could import one: 0.1 s, not 3
            continue
        for node in ast.walk(ast.parse(text, str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                if name.startswith("dagster._"):
                    rel = path.relative_to(package.parent).as_posix()
                    importing.setdefault(rel, []).append(f"{name} (line {node.lineno})")
    outside = {
        p: i for p, i in importing.items() if p not in adapters | NOT_YET_THROUGH_THE_ADAPTER
    }
    assert not outside, (
        f"Dagster internals imported outside the adapter: {outside}; import them "
        "from deploy_assets/state/dagster_private*.py, with a contract entry"
    )
    stale = NOT_YET_THROUGH_THE_ADAPTER - set(importing)
    assert not stale, f"{stale} no longer import Dagster internals: drop them from the exception"
