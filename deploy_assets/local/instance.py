"""The local instance's storage (make demo / make dev / the CLI): Dagster's SQLite storage, with
one SQLAlchemy engine kept per database file instead of one made per statement.

Dagster's SQLite event log builds a new engine, and opens and closes a new connection, for
every read and write. A release writes hundreds of events (a planned event, an output and a
result per asset and per check); a new engine throws away SQLAlchemy's compiled-statement
cache, and closing the last connection of a WAL database checkpoints and deletes its WAL file.
On the bench's 20-service promotion, which moves no bytes, that was a third of the run
(cProfile): keeping one engine and one open connection per database file took the promotion
from 11.8 s to 8.8 s. Several processes (webserver, daemon, run workers) still share the files
safely: that is what SQLite's WAL mode and busy timeout are for. Production uses PostgreSQL
(misc/configs/dagster.production.yaml) and does not load this module.

Configured in misc/configs/dagster.local.yaml:

    storage:
      custom:
        module: deploy_assets.local.instance
        class: LocalSqliteStorage
        config: {base_dir: {env: DAGSTER_HOME}}
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

# Dagster's SQLite storage classes are private: the adapter imports them, and its contract test
# checks what these subclasses override and read (deploy_assets/state/dagster_private_storage.py).
from deploy_assets.state.dagster_private_storage import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    DagsterSqliteStorage,
    SqliteEventLogStorage,
    event_logs_directory,
)

ENGINES_KEPT = 16  # the index shard and the runs being written; a daemon sees many runs over time


class EngineReusingSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose shards keep their engine (see the module doc)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            # One connection kept open (more on demand, closed when returned); any thread may use it
            # while holding _db_lock.
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
        self._engines[shard] = engine  # most recently used last
        while len(self._engines) > ENGINES_KEPT:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Same locking and lazy schema creation as the parent's _connect; only the engine is kept.
        with self._db_lock:
            if shard not in self._initialized_dbs:  # schema creation as Dagster does it, unpooled
                init_engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                self._initdb(init_engine)
                init_engine.dispose()
                self._initialized_dbs.add(shard)
            engine = self._engine(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def _close_engines(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def wipe(self) -> None:  # deletes the database files: no connection may stay open on them
        with self._db_lock:
            self._close_engines()
        super().wipe()
        with self._db_lock:
            self._close_engines()

    def upgrade(self) -> None:
        with self._db_lock:
            self._close_engines()
        super().upgrade()

    def dispose(self) -> None:
        with self._db_lock:
            self._close_engines()
        super().dispose()


class LocalSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage under base_dir (same files), with the engine-keeping event log."""

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage.dispose()
        self._event_log_storage = EngineReusingSqliteEventLogStorage(event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> LocalSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
