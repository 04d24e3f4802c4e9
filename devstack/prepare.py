"""The database work of `tradewire up`, in a short-lived child process of its own:

    python -m devstack.prepare schema     the schema migrated (before anything else starts)
    python -m devstack.prepare trading    the pairs synced and the demo strategy made (once the
                                          paper exchange answers)

In a child because `up` needs SQLAlchemy's ORM, Alembic and the models only while starting:
imported by `up` itself they stayed resident for the whole run, about a third of its memory
(bench/memory.py). The child reads the settings `up` gives every child (devstack/components.py
child_env: the database URL among them) and prints what `up` reports, one line each.
"""

from __future__ import annotations

import asyncio
import sys

from settings import Settings

STEPS = ("schema", "trading")


def schema(database_url: str) -> None:
    from db.migrate import upgrade

    upgrade(database_url)


async def trading(settings: Settings, database_url: str) -> list[str]:
    """Pairs synced (the rules every order is checked against) and, on the paper exchange, the
    demo strategy made; the lines to report."""
    from db.session import make_engine, make_sessionmaker
    from devstack.demo import ensure_demo_strategy
    from pair_catalog import sync_pairs
    from wiring import public_exchange_client

    lines = []
    engine = make_engine(database_url, pool_size=1)
    try:
        sessions = make_sessionmaker(engine)
        async with public_exchange_client(settings) as client:  # a public read
            report = await sync_pairs(client, sessions)
        changes = len(report.appeared) + len(report.disappeared) + len(report.changed)
        lines.append(f"ready: pairs {report.total} synced ({changes} changes)")
        if settings.exchange != "paper":
            return lines  # a demo strategy must never trade real money
        secret = await ensure_demo_strategy(sessions, settings.state_path, settings.secret_key)
        if secret is not None:
            lines.append(
                f"demo strategy created: name 'demo', webhook secret {secret} "
                "(shown once; stored hashed; `tradewire strategy rotate-secret demo` "
                "makes a new one)"
            )
        return lines
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python -m devstack.prepare {{{'|'.join(STEPS)}}}", file=sys.stderr)
        return 2
    settings = Settings()
    if not settings.database_url:
        print("no database: TRADEWIRE_DATABASE_URL is not set", file=sys.stderr)
        return 2
    if argv[0] == "schema":
        schema(settings.database_url)
        return 0
    for line in asyncio.run(trading(settings, settings.database_url)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
