"""A real PostgreSQL server for the production-storage tests (Debian's `postgresql` package).

The server runs from a fresh data directory on a free loopback port, with password auth, the
way a Dagster deployment reaches its database. PostgreSQL refuses to run as root, so when the
tests run as root (CI, containers) every server command runs as the `postgres` system user
that Debian's package creates, via `runuser`. The data directory is not under pytest's tmp
dir because that one is private to root (mode 0700) and the postgres user could not enter it.
"""

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DB_USER = "dagster"
DB_NAME = "dagster"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot run here; the message says what to install."""


def postgres_bin(program: str) -> str:
    """Path of a server program: on PATH, else Debian's versioned directory (not on PATH)."""
    if found := shutil.which(program):
        return found
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{program}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise PostgresUnavailable(f"{program} not found: apt-get install postgresql")
    return str(candidates[-1])


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    data_dir: Path

    def env(self, db_name: str) -> dict[str, str]:
        """The variables misc/configs/dagster.production.yaml reads for its storage."""
        return {
            "DAGSTER_POSTGRES_HOST": self.host,
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
            "DAGSTER_POSTGRES_DB": db_name,
        }

    def url(self, db_name: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{db_name}"

    def create_database(self, name: str) -> str:
        """A database of one test alone (each test gets a clean Dagster storage)."""
        import psycopg2

        conn = psycopg2.connect(self.url("postgres"))
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
        finally:
            conn.close()
        return name

    def query(self, db_name: str, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg2

        conn = psycopg2.connect(self.url(db_name))
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()


def _server_account() -> pwd.struct_passwd | None:
    """The user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no `postgres` user to run the server as: "
            "apt-get install postgresql (it creates the user)"
        ) from None


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if _server_account() else argv


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )


def start_postgres(port: int) -> PostgresServer:
    """initdb a new cluster in a temp dir and start it on 127.0.0.1:port (TCP only)."""
    account = _server_account()
    data_dir = Path(tempfile.mkdtemp(prefix="deploy-assets-pg-"))
    password = secrets.token_hex(12)
    pwfile = data_dir / "pwfile"
    pwfile.write_text(password + "\n")
    if account:
        for path in (data_dir, pwfile):
            os.chown(path, account.pw_uid, account.pw_gid)
    cluster = data_dir / "cluster"
    _run(
        [
            postgres_bin("initdb"),
            "-D",
            str(cluster),
            "-U",
            DB_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        "initdb",
    )
    pwfile.unlink()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
    _run(
        [
            postgres_bin("pg_ctl"),
            "start",
            "-D",
            str(cluster),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "-l",
            str(data_dir / "postgres.log"),
        ],
        "pg_ctl start",
    )
    return PostgresServer("127.0.0.1", port, DB_USER, password, data_dir)


def _postmaster_pid(cluster: Path) -> int | None:
    try:
        return int((cluster / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_postgres(server: PostgresServer, grace: float = 10) -> None:
    """pg_ctl stop -m immediate; SIGKILL the postmaster if it is still there; remove the data."""
    cluster = server.data_dir / "cluster"
    pid = _postmaster_pid(cluster)
    try:
        _run(
            [
                postgres_bin("pg_ctl"),
                "stop",
                "-D",
                str(cluster),
                "-m",
                "immediate",
                "-w",
                "-t",
                str(int(grace)),
            ],
            "pg_ctl stop",
        )
    except (RuntimeError, subprocess.TimeoutExpired):
        pass  # the kill below still ends it
    if pid is not None:
        deadline = time.monotonic() + grace
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(server.data_dir, ignore_errors=True)
