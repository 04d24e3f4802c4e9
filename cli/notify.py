"""`tradewire notify test [--strategy NAME]`: one test message to each configured receiver."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("notify", help="notifications: send a test message")
    sub = p.add_subparsers(dest="notify_command", required=True)
    test = sub.add_parser(
        "test", help="send a test message to the receivers configured (the account's, or a "
                     "strategy's where it has its own) and print each answer")
    test.add_argument("--strategy", metavar="NAME",
                      help="the receivers this strategy's notifications go to")
    test.set_defaults(func=cmd_test)


def cmd_test(args: argparse.Namespace) -> int:
    """0: every receiver took the message; 1: one did not; 2: none is configured."""
    from activities.notify_sender import send_test
    from cli.strategy import _run
    from webhook import strategies
    from wiring import notify_receivers

    settings = load_settings()
    account = notify_receivers(settings)
    timeout = float(settings.notify_timeout_s)  # float-ok: seconds

    async def send(receivers) -> int:  # noqa: ANN001 - activities.notify_sender.Receivers
        results = await send_test(receivers, timeout_s=timeout, strategy=args.strategy)
        if not results:
            print("tradewire notify: no receiver configured: set TRADEWIRE_NOTIFY_WEBHOOK_URL, "
                  "or TRADEWIRE_TELEGRAM_BOT_TOKEN and TRADEWIRE_TELEGRAM_CHAT_ID (or a "
                  "strategy's --notify-webhook-url / --telegram-*)", file=sys.stderr)
            return 2
        for name, result in results:
            print(f"{name}: {'ok' if result.ok else 'FAILED'} ({result.detail})")
        return 0 if all(r.ok for _, r in results) else 1

    if args.strategy is None:
        return asyncio.run(send(account))

    async def action(sm: async_sessionmaker[AsyncSession]) -> int:
        strategy = await strategies.get(sm, args.strategy)
        return await send(account.for_strategy(strategy))

    return _run(settings, action)
