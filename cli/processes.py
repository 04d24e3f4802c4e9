"""The commands that run Tradewire's processes, and the one-shot jobs that prepare them.

    tradewire up          the whole paper stack, supervised (what `make run` calls)
    tradewire web         the webhook app alone (production: external PostgreSQL and Temporal)
    tradewire ui          the dashboard alone (its own port, TRADEWIRE_UI_PORT; admin sign-in)
    tradewire worker      the Temporal worker alone
    tradewire exchange    the paper exchange alone (`exchange serve`, the default)
    tradewire exchange check   read-only checks before a first live order (cli/exchange_check.py)
    tradewire migrate     upgrade the database, register Temporal's search attributes, sync pairs
    tradewire pairs sync  fetch every pair's rules into the database, report what changed
"""

from __future__ import annotations

import argparse
import asyncio
import sys
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
    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        **server_options(settings, host=settings.host, port=settings.webhook_port),
    )
    return 0


UI_STOP_S = 1


def cmd_ui(args: argparse.Namespace) -> int:
    import uvicorn

    from serving import server_options
    from ui.app import create_ui_app

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    # Never the webhook's port: the dashboard is for this host (or a TLS proxy), not the internet.
    if settings.ui_port == settings.webhook_port:
        raise SystemExit("tradewire ui: TRADEWIRE_UI_PORT must differ from TRADEWIRE_WEBHOOK_PORT")
    uvicorn.run(
        create_ui_app(settings),
        **server_options(settings, host=settings.ui_host, port=settings.ui_port),
        # An open page holds its event stream: stop within a second anyway.
        timeout_graceful_shutdown=UI_STOP_S,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker import serve

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


def cmd_exchange(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.action == "check":
        from cli.exchange_check import check

        logs.configure("WARNING")
        return check(settings)
    from paper.app import serve

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    serve(settings)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    from db.migrate import upgrade

    if settings.database_url:
        upgrade(settings.database_url)
        print("database: at the newest schema")
        _migrate_temporal(settings, args)
        return 0 if args.skip_pairs else asyncio.run(_migrate_pairs(settings, settings.database_url))
    from db.embedded import start_embedded

    pg = start_embedded(settings.embedded_pg_dir)
    try:
        upgrade(pg.url)
        print("database: at the newest schema")
        _migrate_temporal(settings, args)
        return 0 if args.skip_pairs else asyncio.run(_migrate_pairs(settings, pg.url))
    finally:
        pg.stop()


def _migrate_temporal(settings: Settings, args: argparse.Namespace) -> None:
    if args.skip_temporal:
        return
    added = asyncio.run(_register_search_attributes(settings))
    print(
        f"temporal {settings.temporal_target}: search attributes "
        + (f"added {', '.join(added)}" if added else "already registered")
    )


# A fresh install's exchange may answer a moment after `migrate` starts (a container's DNS, a
# proxy): a few tries before deciding it is unreachable.
PAIRS_SYNC_TRIES = 3
PAIRS_SYNC_PAUSE_S = 2


async def _migrate_pairs(settings: Settings, database_url: str) -> int:
    """The pair table synced as `migrate`'s last step: without pairs every alert is refused as
    an unknown symbol. Unreachable exchange: with no pair stored yet this fails (exit 1, what to
    do), since the install cannot trade; with pairs stored (an upgrade) it warns and succeeds,
    so an exchange outage does not keep the worker that protects open trades from starting
    (its hourly pair sync catches up)."""
    import httpx

    from db.session import make_engine, make_sessionmaker
    from exchange.errors import ExchangeError
    from pair_catalog import EmptyPairList, known_symbols, sync_pairs
    from wiring import public_exchange_client

    engine = make_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    problem = ""
    try:
        for attempt in range(1, PAIRS_SYNC_TRIES + 1):
            try:
                # The pair list is public: `migrate` needs no exchange keys.
                async with public_exchange_client(settings) as client:
                    report = await sync_pairs(client, sessionmaker)
            except (ExchangeError, EmptyPairList, httpx.HTTPError, OSError, TimeoutError) as exc:
                problem = str(exc) or type(exc).__name__
                if attempt < PAIRS_SYNC_TRIES:
                    await asyncio.sleep(PAIRS_SYNC_PAUSE_S)
                continue
            if report.total == 0:
                problem = "the exchange listed no usable pair"
                break
            print("pairs: " + "\n".join(report.lines()))
            return 0
        stored = len(await known_symbols(sessionmaker))
    finally:
        await engine.dispose()
    where = f"{settings.exchange} at {settings.exchange_url}"
    if stored:
        print(f"pairs: WARNING: could not sync from {where} ({problem}); keeping the {stored} "
              "pairs stored (the worker re-syncs them hourly; `tradewire pairs sync` does it now)",
              file=sys.stderr)
        return 0
    print(
        f"tradewire migrate: could not sync the pairs from {where}: {problem}\n"
        "  No pair is stored, so every alert would be refused as an unknown symbol. Check that "
        "the exchange answers (TRADEWIRE_EXCHANGE, TRADEWIRE_EXCHANGE_BASE_URL, the network, "
        "and for BitUnix the API keys and IP whitelist), then run `tradewire migrate` again "
        "(`--skip-pairs` skips this step; `tradewire pairs sync` does it alone).",
        file=sys.stderr,
    )
    return 1


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
    from wiring import public_exchange_client

    if not settings.database_url:
        raise SystemExit("tradewire pairs sync: set TRADEWIRE_DATABASE_URL (or run `tradewire up`)")
    engine = make_engine(settings.database_url)
    try:
        async with public_exchange_client(settings) as client:  # a public read: no keys
            return await sync_pairs(client, make_sessionmaker(engine))
    finally:
        await engine.dispose()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `up`, `web`, `ui`, `worker`, `exchange`, `migrate` and `pairs` to tradewire's parser."""
    commands: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
        "up": (cmd_up, "run the whole paper stack until Ctrl-C"),
        "web": (cmd_web, "run the webhook app"),
        "ui": (cmd_ui, "run the dashboard (TRADEWIRE_UI_HOST:TRADEWIRE_UI_PORT, admin sign-in)"),
        "worker": (cmd_worker, "run the Temporal worker (trade workflows, activities, watcher)"),
        "exchange": (cmd_exchange, "run the paper exchange (BitUnix-compatible simulator)"),
        "migrate": (cmd_migrate,
                    "upgrade the database, register Temporal search attributes, sync the pairs"),
        "pairs": (cmd_pairs, "pairs sync: fetch every pair's rules from the exchange into the database"),
    }
    for name, (func, help_text) in commands.items():
        p = subparsers.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        if name == "migrate":
            p.add_argument(
                "--skip-temporal", action="store_true",
                help="leave Temporal's search attributes alone",
            )
            p.add_argument(
                "--skip-pairs", action="store_true",
                help="do not sync the pairs from the exchange (a fresh install cannot trade then)",
            )
        if name == "exchange":
            p.add_argument(
                "action", nargs="?", choices=["serve", "check"], default="serve",
                help="serve (default): run the paper exchange; check: read-only checks of the "
                     "configured exchange before a first live order (exit 0 when all ok)",
            )
        if name == "pairs":
            p.add_argument("action", choices=["sync"], help="sync: fetch and store, report changes")
