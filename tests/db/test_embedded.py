"""The embedded PostgreSQL widens its parent folders (as root it runs as its own user), but it
must never make a secret file readable to others (docs/design.md#embedded-postgresql)."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg

from db.embedded import start_embedded
from settings import Settings, write_private


def test_secrets_stay_private_when_the_embedded_server_starts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    dotenv = tmp_path / ".env"
    write_private(dotenv, "TRADEWIRE_BITUNIX_API_SECRET=not-a-real-secret\n")
    settings = Settings(state_dir=state, admin_token=None)
    settings.ensure_admin_token()
    pg = start_embedded(settings.embedded_pg_dir, database="tradewire")
    try:
        with psycopg.connect(pg.url.replace("postgresql+psycopg", "postgresql")) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("tradewire",)
    finally:
        pg.stop()
    for secret in (dotenv, settings.admin_token_file):
        mode = stat.S_IMODE(secret.stat().st_mode)
        assert mode & 0o077 == 0, f"{secret} became {oct(mode)}"
