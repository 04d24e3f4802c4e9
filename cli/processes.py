"""The commands that run Tradewire's processes, and the one-shot jobs that prepare them.

    tradewire up          the whole paper stack, supervised (what `make run` calls)
    tradewire web         the webhook app alone (production: external PostgreSQL and Temporal)
    tradewire worker      the Temporal worker alone
    tradewire exchange    the paper exchange alone (`exchange serve`, the default)
    tradewire exchange check   read-only checks before a first live order (cli/exchange_check.py)
    tradewire migrate     upgrade the database and register Temporal's search attributes
    tradewire pairs sync  fetch every pair's rules into the database, report what changed
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

import logs
from cli import load_settings
from settings import Settings


def cmd_up(args: argparse.Namespace) -> int:
    from devstack import run_up

    return run_up(load_settings())


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from serving import server_options
    from webhook.app import create_app

    settings = load_settings()
    logs.configure(settings.log_level)
    uvicorn.run(
        create_app(settings),
        **server_options(settings, host=settings.host, port=settings.webhook_port),
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker import serve

    settings = load_settings()
    logs.configure(settings.log_level)
    asyncio.run(serve(settings))
    return 0


def cmd_exchange(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.action == "check":
        from cli.exchange_check import check

        logs.configure("WARNING")
        return check(settings)
    from paper.app import serve

    logs.configure(settings.log_level)
    serve(settings)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    logs.configure(settings.log_level)
    from db.migrate import upgrade

    if settings.database_url:
        upgrade(settings.database_url)
    else:
        from db.embedded import start_embedded

        pg = start_embedded(settings.embedded_pg_dir)
        try:
            upgrade(pg.url)
        finally:
            pg.stop()
    print("database: at the newest schema")
    if args.skip_temporal:
        return 0
    added = asyncio.run(_register_search_attributes(settings))
    print(
        f"temporal {settings.temporal_target}: search attributes "
        + (f"added {', '.join(added)}" if added else "already registered")
    )
    return 0


async def _register_search_attributes(settings: Settings) -> list[str]:
    from workflows import search_attributes
    from workflows.converter import connect

    client = await connect(settings.temporal_target, settings.temporal_namespace)
    return await search_attributes.register(client, settings.temporal_namespace)


def cmd_pairs(args: argparse.Namespace) -> int:
    settings = load_settings()
    logs.configure("WARNING")
    report = asyncio.run(_sync_pairs(settings))
    print("\n".join(report.lines()))
    return 0


async def _sync_pairs(settings: Settings):  # -> pair_catalog.SyncReport
    from db.session import make_engine, make_sessionmaker
    from pair_catalog import sync_pairs
    from wiring import exchange_client

    if not settings.database_url:
        raise SystemExit("tradewire pairs sync: set TRADEWIRE_DATABASE_URL (or run `tradewire up`)")
    engine = make_engine(settings.database_url)
    try:
        async with exchange_client(settings) as client:
            return await sync_pairs(client, make_sessionmaker(engine))
    finally:
        await engine.dispose()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `up`, `web`, `worker`, `exchange`, `migrate` and `pairs` to tradewire's parser."""
    commands: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
        "up": (cmd_up, "run the whole paper stack until Ctrl-C"),
        "web": (cmd_web, "run the webhook app"),
        "worker": (cmd_worker, "run the Temporal worker (trade workflows, activities, watcher)"),
        "exchange": (cmd_exchange, "run the paper exchange (BitUnix-compatible simulator)"),
        "migrate": (cmd_migrate, "upgrade the database, register Temporal search attributes"),
        "pairs": (cmd_pairs, "pairs sync: fetch every pair's rules from the exchange into the database"),
    }
    for name, (func, help_text) in commands.items():
        p = subparsers.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        if name == "migrate":
            p.add_argument(
                "--skip-temporal", action="store_true", help="only upgrade the database"
            )
        if name == "exchange":
            p.add_argument(
                "action", nargs="?", choices=["serve", "check"], default="serve",
                help="serve (default): run the paper exchange; check: read-only checks of the "
                     "configured exchange before a first live order (exit 0 when all ok)",
            )
        if name == "pairs":
            p.add_argument("action", choices=["sync"], help="sync: fetch and store, report changes")
