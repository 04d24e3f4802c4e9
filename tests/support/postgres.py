"""A real PostgreSQL for the test session: TRADEWIRE_DATABASE_URL's server when set, else the
embedded server in a temporary directory. Each caller gets its own fresh database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


@dataclass
class PostgresServer:
    """Creates and drops databases on one server; `url_for(name)` is a SQLAlchemy URL."""

    admin_url: str  # a SQLAlchemy URL to a database we may connect to for CREATE DATABASE

    def url_for(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def _libpq(self) -> str:
        return make_url(self.admin_url).set(drivername="postgresql").render_as_string(
            hide_password=False
        )

    def create_database(self, prefix: str = "tw_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self._libpq(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self._libpq(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def postgres_server(tmp_dir: Path) -> Iterator[PostgresServer]:
    external = os.environ.get("TRADEWIRE_DATABASE_URL")
    if external:
        yield PostgresServer(admin_url=external)
        return
    from db.embedded import start_embedded

    pg = start_embedded(tmp_dir / "pg", database="postgres")
    try:
        yield PostgresServer(admin_url=pg.url_for("postgres"))
    finally:
        pg.stop()
