"""The `tradewire` command: one entry point for every process and operator task.

    tradewire up          the whole paper stack, supervised (what `make run` calls)
    tradewire web         the webhook app alone (production: external PostgreSQL and Temporal)
    tradewire worker      the Temporal worker alone
    tradewire exchange    the paper exchange alone
    tradewire migrate     upgrade the database and register Temporal's search attributes
    tradewire pairs sync  fetch every pair's rules into the database, report what changed
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from pydantic import ValidationError

import logs
from settings import Settings

# module → why no Tradewire process needs it. A dependency imports each only to probe for
# something we never use, and it stays resident for the life of the process (measured on the
# webhook and the worker: about 2 MiB for httpx's, 1.6 MiB for pydantic's). Marked absent in
# sys.modules, its import raises ImportError, which both dependencies handle by design.
UNUSED_MODULES = {
    # httpx's __init__ imports its command-line client whenever click is installed (uvicorn
    # installs it), which pulls in click and pygments; our processes never run that client.
    "httpx._main": "httpx's command-line client",
    # FastAPI imports pydantic.v1 while building a route with query or path parameters, only to
    # refuse v1 models; every model of ours is a pydantic 2 model.
    "pydantic.v1": "pydantic's v1 compatibility layer",
}


def skip_unused_imports() -> None:
    """Mark UNUSED_MODULES absent (one already imported stays); `main` does it first thing,
    before any command imports httpx or builds a FastAPI route."""
    for name in UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


# The long-running processes: they need no operator command, so their parser leaves those
# commands (and the modules behind them) out.
PROCESS_COMMANDS = frozenset({"up", "web", "worker", "exchange"})


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:  # one line per problem, naming the setting; no traceback
        problems = "\n".join(f"  {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise SystemExit(f"tradewire: invalid configuration:\n{problems}") from None


def cmd_up(args: argparse.Namespace) -> int:
    from devstack import run_up

    return run_up(_settings())


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from webhook.app import create_app

    settings = _settings()
    logs.configure(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.webhook_port,
        log_config=None,
        access_log=False,
        # No route is a WebSocket: "auto" would import a WebSocket implementation for nothing.
        ws="none",
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker import serve

    settings = _settings()
    logs.configure(settings.log_level)
    asyncio.run(serve(settings))
    return 0


def cmd_exchange(args: argparse.Namespace) -> int:
    from exchange.simulator.app import serve

    settings = _settings()
    logs.configure(settings.log_level)
    serve(settings)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
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
    settings = _settings()
    logs.configure("WARNING")
    report = asyncio.run(_sync_pairs(settings))
    print("\n".join(report.lines()))
    return 0


async def _sync_pairs(settings: Settings):  # -> activities.pairs.SyncReport
    from activities.pairs import sync_pairs
    from db.session import make_engine, make_sessionmaker
    from exchange.client import BitunixClient

    if not settings.database_url:
        raise SystemExit("tradewire pairs sync: set TRADEWIRE_DATABASE_URL (or run `tradewire up`)")
    engine = make_engine(settings.database_url)
    try:
        async with BitunixClient.from_settings(settings) as client:
            return await sync_pairs(client, make_sessionmaker(engine))
    finally:
        await engine.dispose()


def build_parser(*, operator_commands: bool = True) -> argparse.ArgumentParser:
    """Every command; without `operator_commands`, only the non-webhook ones (what a process
    started as `tradewire web|worker|…` needs to parse its own command line)."""
    parser = argparse.ArgumentParser(prog="tradewire", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
        "up": (cmd_up, "run the whole paper stack until Ctrl-C"),
        "web": (cmd_web, "run the webhook app"),
        "worker": (cmd_worker, "run the Temporal worker (trade workflows, activities, watcher)"),
        "exchange": (cmd_exchange, "run the paper exchange (BitUnix-compatible simulator)"),
        "migrate": (cmd_migrate, "upgrade the database, register Temporal search attributes"),
        "pairs": (cmd_pairs, "pairs sync: fetch every pair's rules from the exchange into the database"),
    }
    for name, (func, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        if name == "migrate":
            p.add_argument(
                "--skip-temporal", action="store_true", help="only upgrade the database"
            )
        if name == "pairs":
            p.add_argument("action", choices=["sync"], help="sync: fetch and store, report changes")
    if operator_commands:
        from webhook import cli as webhook_cli

        webhook_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    skip_unused_imports()
    argv = sys.argv[1:] if argv is None else argv
    process = bool(argv) and argv[0] in PROCESS_COMMANDS
    args = build_parser(operator_commands=not process).parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
