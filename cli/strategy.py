"""`tradewire strategy …`: strategies live in the database, so these talk to it directly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli import load_settings
from cli.args import positive_decimal, positive_int
from settings import Settings
from trading.risk import option
from trading.types import ChaseFallback, EntryType, MarginMode, OnProtectionRefused, StopType
from webhook import strategies
from webhook.auth import SERVER_KEY_FILE, WeakSecret, server_key
from webhook.strategies import StrategyError

# What each risk limit bounds, for --help (the names are RiskLimits' fields).
_LIMIT_HELP = {
    "max_order_usdt": "one entry order's notional, USDT",
    "max_position_usdt": "the notional of this strategy's trades on one symbol, USDT",
    "max_open_trades": "this strategy's trades entering or open at once",
    "max_leverage": "the leverage a trade uses (the pair's own maximum always applies)",
    "max_exposure_usdt": "the notional of this strategy's trades on all symbols, USDT",
    "min_free_margin_usdt": "the available margin an entry must leave, USDT",
    "daily_loss_usdt": "the day's loss (realized with fees + unrealized) that latches the "
                       "strategy's state, USDT",
    "daily_loss_pct": "the same, in %% of the account's equity at the day's start",
}


def _limit_type(name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return strategies.limit_value(name, text)
        except StrategyError as exc:
            # argparse names the option itself: "argument --max-order-usdt: -5: input ...".
            raise argparse.ArgumentTypeError(str(exc).removeprefix(option(name) + " ")) from None
    return parse


def _add_limits(p: argparse.ArgumentParser, *, removable: bool) -> None:
    """The risk limits (docs/design.md#risk): `--max-order-usdt 500`; on `set`, also
    `--no-max-order-usdt` to remove one, as `--no-allow-split` turns a flag off."""
    group = p.add_argument_group(
        "risk limits", "checked when a trade's entry is first claimed, beside the account's "
        "TRADEWIRE_RISK_* settings: the tighter wins")
    for name in strategies.LIMITS:
        metavar = "N" if name in ("max_open_trades", "max_leverage") else (
            "PCT" if name.endswith("_pct") else "USDT")
        one = group.add_mutually_exclusive_group() if removable else group
        one.add_argument(option(name), dest=name, type=_limit_type(name), metavar=metavar,
                         help=_LIMIT_HELP.get(name))
        if removable:
            one.add_argument("--no-" + option(name).removeprefix("--"), dest="clear_limits",
                             action="append_const", const=name, help=argparse.SUPPRESS)


def _add_receivers(p: argparse.ArgumentParser, *, removable: bool) -> None:
    """The strategy's own notification receivers (docs/design.md#notifications); each kind
    replaces the account's TRADEWIRE_NOTIFY_* / TRADEWIRE_TELEGRAM_* one for its events."""
    group = p.add_argument_group(
        "notifications", "this strategy's receivers, instead of the account's; the secrets are "
        "stored to be sent, never shown (given here they are visible in the process list while "
        "the command runs)")
    group.add_argument("--notify-webhook-url", metavar="URL",
                       help="POST this strategy's notifications here (JSON)")
    group.add_argument("--notify-webhook-secret", metavar="SECRET",
                       help="sign them: X-Tradewire-Signature, HMAC-SHA256 under SECRET")
    group.add_argument("--telegram-bot-token", metavar="TOKEN", help="the bot that writes")
    group.add_argument("--telegram-chat-id", metavar="CHAT", help="the chat it writes to")
    if removable:
        group.add_argument("--no-notify-webhook", dest="clear_receivers", action="append_const",
                           const=("notify_webhook_url", "notify_webhook_secret"),
                           help="back to the account's webhook")
        group.add_argument("--no-telegram", dest="clear_receivers", action="append_const",
                           const=("telegram_bot_token", "telegram_chat_id"),
                           help="back to the account's Telegram bot and chat")


def _exit_plan(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object: {\"tps\": [...], \"trail\": {...}}")
    return value


def _add_parameters(p: argparse.ArgumentParser) -> None:
    """The strategy's defaults and limits (`add` and `set`)."""
    sizing = p.add_mutually_exclusive_group()
    sizing.add_argument("--size", type=positive_decimal, help="default size in base units")
    sizing.add_argument(
        "--size-usdt", type=positive_decimal, help="default notional in USDT (default 100)"
    )
    sizing.add_argument(
        "--size-pct", type=positive_decimal, help="default %% of available margin"
    )
    sizing.add_argument(
        "--risk-pct", type=positive_decimal,
        help="default: size so the stop-loss, if hit, loses this %% of the equity (fees included)"
    )
    p.add_argument("--order-type", dest="entry_type", choices=[e.value for e in EntryType])
    p.add_argument(
        "--exit-order-type", dest="exit_entry_type", choices=[e.value for e in EntryType]
    )
    p.add_argument("--leverage", type=positive_int)
    p.add_argument("--margin-mode", choices=[m.value for m in MarginMode])
    p.add_argument(
        "--chase-interval", dest="chase_interval_s", type=positive_decimal, metavar="SECONDS"
    )
    p.add_argument("--max-chases", type=int)
    p.add_argument("--max-slippage-bps", type=positive_decimal)
    p.add_argument("--chase-fallback", choices=[c.value for c in ChaseFallback])
    p.add_argument("--max-alert-age", dest="max_alert_age_s", type=positive_int, metavar="SECONDS")
    p.add_argument("--dedupe-window", dest="dedupe_window_s", type=positive_int, metavar="SECONDS")
    p.add_argument("--notional-floor", type=positive_decimal, metavar="USDT")
    p.add_argument("--allow-split", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--on-protection-refused", choices=[o.value for o in OnProtectionRefused])
    p.add_argument(
        "--tracking-interval", dest="tracking_interval_s", type=positive_int, metavar="SECONDS"
    )
    p.add_argument("--stop-type", choices=[s.value for s in StopType])
    p.add_argument(
        "--exits", type=_exit_plan, metavar="JSON",
        help='default exit plan (docs/design.md#exits), e.g. \'{"tps": [{"pct": "1", '
             '"qty_pct": "50", "sl_after": "breakeven"}, {"pct": "2"}], "trail": {"pct": "1"}}\'')
    p.add_argument(
        "--rate-limit",
        dest="rate_limit_per_min",
        type=positive_int,
        metavar="PER_MIN",
        help="alerts per minute this strategy accepts (default 60)",
    )
    p.add_argument(
        "--allow-ip",
        dest="allowed_ips",
        action="append",
        metavar="IP_OR_CIDR",
        help="accept alerts only from these addresses (repeat); see --tradingview-ips",
    )
    p.add_argument(
        "--tradingview-ips",
        dest="allow_tradingview_ips",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="accept TradingView's published webhook addresses",
    )


def _secret_options(p: argparse.ArgumentParser, default: str) -> None:
    """A chosen secret comes from stdin or a prompt: on the command line (`--secret S`) any local
    user reads it in /proc/*/cmdline, so that form is kept for scripts that accept it."""
    how = p.add_mutually_exclusive_group()
    how.add_argument("--secret-stdin", action="store_true",
                     help=f"read the secret (20+ characters) from the first line of stdin, {default}")
    how.add_argument("--prompt-secret", action="store_true",
                     help=f"type the secret (20+ characters) at a prompt that does not echo it, {default}")
    how.add_argument("--secret", help="the secret on the command line (visible to other local "
                                      "users in the process list: prefer --secret-stdin)")


class SecretInputError(ValueError):
    """The secret could not be read as asked."""


def chosen_secret(args: argparse.Namespace, stdin: Any = None,
                  prompt: Callable[[str], str] | None = None) -> str | None:
    """The secret the operator chose, or None to generate one."""
    if getattr(args, "secret_stdin", False):
        line = (stdin or sys.stdin).readline().rstrip("\r\n")
        if not line:
            raise SecretInputError("--secret-stdin: stdin gave no secret")
        return line
    if getattr(args, "prompt_secret", False):
        import getpass

        ask = prompt or getpass.getpass
        first = ask("webhook secret (20+ characters, not shown): ")
        if ask("again: ") != first:
            raise SecretInputError("the two secrets differ: nothing changed")
        return first
    return getattr(args, "secret", None)


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        name: getattr(args, name)
        for name in (*strategies.PARAMETERS, *strategies.RECEIVERS)
        if getattr(args, name, None) is not None
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "strategy", help="manage strategies (alert sources) and their secrets"
    )
    sub = p.add_subparsers(dest="strategy_command", required=True)
    add = sub.add_parser("add", help="create a strategy; prints its webhook secret once")
    add.add_argument("name")
    _secret_options(add, "instead of a generated one")
    _add_parameters(add)
    _add_limits(add, removable=False)
    _add_receivers(add, removable=False)
    add.set_defaults(func=cmd_add)
    change = sub.add_parser(
        "set", aliases=["update"], help="change a strategy's defaults and limits",
        epilog="--no-max-order-usdt (and so on for every risk limit) removes that limit")
    change.add_argument("name")
    _add_parameters(change)
    _add_limits(change, removable=True)
    _add_receivers(change, removable=True)
    change.set_defaults(func=cmd_set)
    sub.add_parser("list", help="list strategies").set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="show one strategy (never its secret)")
    show.add_argument("name")
    show.set_defaults(func=cmd_show)
    rotate = sub.add_parser("rotate-secret", help="replace the secret; prints the new one once")
    rotate.add_argument("name")
    _secret_options(rotate, "instead of a generated one")
    rotate.set_defaults(func=cmd_rotate)
    for name, enabled in (("disable", False), ("enable", True)):
        q = sub.add_parser(name, help=f"{name} a strategy's alerts")
        q.add_argument("name")
        q.set_defaults(func=cmd_enable, enabled=enabled)


# --- running against the database --------------------------------------------------------------


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database, else the embedded one (joined if `tradewire up` runs it)."""
    if settings.database_url:
        yield settings.database_url
        return
    from db.embedded import start_embedded

    pg = start_embedded(settings.embedded_pg_dir)
    try:
        yield pg.url
    finally:
        pg.stop()  # stops the server only if no other process (such as `up`) holds it


def _run(
    settings: Settings, action: Callable[[async_sessionmaker[AsyncSession]], Awaitable[int]]
) -> int:
    from db.session import make_engine, make_sessionmaker

    async def main(url: str) -> int:
        engine = make_engine(url, pool_size=1)
        try:
            return await action(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        with database_url(settings) as url:
            return asyncio.run(main(url))
    except (StrategyError, WeakSecret, SecretInputError) as exc:
        print(f"tradewire strategy: {exc}", file=sys.stderr)
        return 1
    except DBAPIError as exc:
        print(
            f"tradewire strategy: database error: {exc.orig}. Did `tradewire migrate` run?",
            file=sys.stderr,
        )
        return 1


def _secret_lines(name: str, secret: str, settings: Settings) -> None:
    print(f"webhook secret for {name!r} (shown once; only its HMAC is stored):")
    print(f"  {secret}")
    configured = settings.secret_key is not None and settings.secret_key.get_secret_value()
    # Name the key this process used: with compose, TRADEWIRE_SECRET_KEY from `.env`, which the
    # webhook must share (a one-off container's generated key file would be its own).
    key = ("TRADEWIRE_SECRET_KEY (every process that checks alerts must have the same)"
           if configured else f"{settings.state_path / SERVER_KEY_FILE}")
    print(
        f'put it in the alert message as "secret". It is checked with the server key '
        f"{key}: back that up with the database"
    )


def _read_secret(args: argparse.Namespace) -> str | None:
    try:
        return chosen_secret(args)
    except SecretInputError as exc:
        raise SystemExit(f"tradewire strategy: {exc}") from None


def cmd_add(args: argparse.Namespace) -> int:
    settings = load_settings()
    chosen = _read_secret(args)

    async def action(sm: async_sessionmaker[AsyncSession]) -> int:
        strategy, secret = await strategies.add(
            sm, server_key(settings), args.name, chosen, _parameters(args)
        )
        print(f"strategy {strategy.name!r} created")
        _secret_lines(strategy.name, secret, settings)
        return 0

    return _run(settings, action)


def cmd_set(args: argparse.Namespace) -> int:
    settings = load_settings()
    params = _parameters(args)
    clear = [*(args.clear_limits or []),
             *(name for names in args.clear_receivers or [] for name in names)]
    if not params and not clear:
        print("tradewire strategy set: nothing to change (see --help)", file=sys.stderr)
        return 2

    async def action(sm: async_sessionmaker[AsyncSession]) -> int:
        strategy = await strategies.update(sm, args.name, params, clear)
        _print_strategy(strategy)
        return 0

    return _run(settings, action)


def cmd_list(args: argparse.Namespace) -> int:
    async def action(sm: async_sessionmaker[AsyncSession]) -> int:
        rows = await strategies.all_strategies(sm)
        if not rows:
            print("no strategies yet: `tradewire strategy add NAME`")
        for s in rows:
            sizing = next(
                f"{n}={format(getattr(s, n), 'f')}"
                for n in strategies.SIZINGS
                if getattr(s, n) is not None
            )
            ips = "tradingview" if s.allow_tradingview_ips else ""
            ips = ",".join([*s.allowed_ips, *([ips] if ips else [])]) or "any"
            limits = " ".join(f"{n}={_shown(getattr(s, n))}" for n in strategies.LIMITS
                              if getattr(s, n) is not None)
            print(
                f"{s.name:<20} {'enabled ' if s.enabled else 'DISABLED'} {sizing:<18} {s.entry_type:<7}"
                f" {s.rate_limit_per_min}/min  from {ips}  limits: {limits or 'none'}"
            )
        return 0

    return _run(load_settings(), action)


def _shown(value: Any) -> Any:
    return format(value, "f") if isinstance(value, Decimal) else value


def _print_strategy(strategy: Any) -> None:
    for key, value in strategies.describe(strategy).items():
        print(f"{key:<24} {_shown(value)}")


def cmd_show(args: argparse.Namespace) -> int:
    async def action(sm: async_sessionmaker[AsyncSession]) -> int:
        _print_strategy(await strategies.get(sm, args.name))
        return 0

    return _run(load_settings(), action)


def cmd_rotate(args: argparse.Namespace) -> int:
    settings = load_settings()
    chosen = _read_secret(args)

    async def action(sm: async_sessionmaker[AsyncSession]) -> int:
        secret = await strategies.rotate_secret(sm, server_key(settings), args.name, chosen)
        print(f"secret of {args.name!r} replaced: alerts with the old one are refused from now on")
        _secret_lines(args.name, secret, settings)
        return 0

    return _run(settings, action)


def cmd_enable(args: argparse.Namespace) -> int:
    async def action(sm: async_sessionmaker[AsyncSession]) -> int:
        await strategies.set_enabled(sm, args.name, args.enabled)
        print(
            f"strategy {args.name!r} {'enabled' if args.enabled else 'disabled: its alerts are refused (403)'}"
        )
        return 0

    return _run(load_settings(), action)
