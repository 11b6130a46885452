"""The local instance's storage (make demo / make dev / the CLI): Dagster's SQLite storage, with
one SQLAlchemy engine kept per database file instead of one made per statement.

Dagster's SQLite event log builds a new engine for every read and write. A release writes
hundreds of events (a planned event, an output and a result per asset and per check), and a
new engine also throws away SQLAlchemy's compiled-statement cache, so on a promotion that
moves no bytes, building engines and compiling the same INSERTs again were a third of the
run (measured with cProfile on the bench's 20-service promotion). Connections stay unpooled,
as Dagster has them (NullPool: several processes write the same files); only the engine and its
statement cache are kept. Production uses PostgreSQL (misc/configs/dagster.production.yaml),
whose storage already keeps its engine.

Configured in misc/configs/dagster.local.yaml:

    storage:
      custom:
        module: deploy_assets.local_instance
        class: LocalSqliteStorage
        config: {base_dir: {env: DAGSTER_HOME}}
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._core.storage.sql import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

ENGINES_KEPT = 16  # the index shard and the runs being written; a daemon sees many runs over time


class EngineReusingSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose shards keep their engine (see the module doc)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(self.conn_string_for_shard(shard), poolclass=NullPool,
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        self._engines[shard] = engine  # most recently used last
        while len(self._engines) > ENGINES_KEPT:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Same locking and lazy schema creation as the parent's _connect; only the engine is kept.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()


class LocalSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage under base_dir (same files), with the engine-keeping event log."""

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage.dispose()
        self._event_log_storage = EngineReusingSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "LocalSqliteStorage":
        return cls.from_local(inst_data=inst_data, **config_value)
