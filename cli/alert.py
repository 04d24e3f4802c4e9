"""`tradewire alert send` and `tradewire trades …`: clients of the running webhook over HTTP."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from settings import Settings
from webhook.cli_strategy import _decimal, load_settings
from webhook.schemas import Action, MarketPosition

TIMEOUT_S = 10.0


def _held(text: str) -> Decimal:
    return Decimal(0) if text.strip() in ("0", "0.0") else _decimal(text)


def _base_url(args: argparse.Namespace, settings: Settings) -> str:
    return (args.url or f"http://{settings.host}:{settings.webhook_port}").rstrip("/")


# --- alert send --------------------------------------------------------------------------------


def register_alert(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("alert", help="send TradingView-shaped alerts (demos and tests)")
    sub = p.add_subparsers(dest="alert_command", required=True)
    send = sub.add_parser("send", help="build and POST one alert to the webhook")
    send.add_argument("--url", help="webhook base URL (default http://HOST:WEBHOOK_PORT)")
    send.add_argument("--strategy", required=True)
    secret = send.add_mutually_exclusive_group(required=True)
    secret.add_argument(
        "--secret", help="the strategy's secret (visible in `ps`: prefer --secret-file)"
    )
    secret.add_argument("--secret-file", type=Path, help="read the secret from this file")
    send.add_argument(
        "--ticker", required=True, help="e.g. BTCUSDT, BTCUSDT.P or BITUNIX:BTCUSDT.P"
    )
    send.add_argument("--action", required=True, choices=[a.value for a in Action])
    positions = [m.value for m in MarketPosition]
    send.add_argument("--market-position", choices=positions)
    send.add_argument("--prev-market-position", choices=positions)
    send.add_argument("--market-position-size", type=_held)
    sizing = send.add_mutually_exclusive_group()
    sizing.add_argument("--size", type=_decimal)
    sizing.add_argument("--size-usdt", type=_decimal)
    sizing.add_argument("--size-pct", type=_decimal)
    send.add_argument("--order-type", choices=["market", "limit", "chase"])
    for name in ("price", "tp", "sl", "tp-pct", "sl-pct"):
        send.add_argument(f"--{name}", type=_decimal)
    send.add_argument("--leverage", type=int)
    send.add_argument("--alert-id", help="dedupe key (default: a fresh random id)")
    send.add_argument("--no-alert-id", action="store_true", help="send no alert_id")
    send.add_argument("--time", help="ISO 8601 UTC fire time (default: now)")
    send.add_argument("--no-time", action="store_true", help="send no time")
    send.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add any field as is (e.g. a typo, to see it refused)",
    )
    send.add_argument(
        "--text-plain",
        action="store_true",
        help="send as text/plain, like TradingView does for non-JSON messages",
    )
    send.set_defaults(func=cmd_alert_send)


def build_alert(args: argparse.Namespace) -> dict[str, Any]:
    secret = args.secret if args.secret is not None else args.secret_file.read_text().strip()
    body: dict[str, Any] = {
        "secret": secret,
        "strategy": args.strategy,
        "ticker": args.ticker,
        "action": args.action,
    }
    optional = (
        "market_position",
        "prev_market_position",
        "market_position_size",
        "size",
        "size_usdt",
        "size_pct",
        "order_type",
        "price",
        "tp",
        "sl",
        "tp_pct",
        "sl_pct",
        "leverage",
    )
    body |= {name: getattr(args, name) for name in optional if getattr(args, name) is not None}
    if not args.no_alert_id:
        body["alert_id"] = args.alert_id or uuid.uuid4().hex
    if not args.no_time:
        body["time"] = args.time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for item in args.field:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"tradewire alert send: --field wants KEY=VALUE, got {item!r}")
        body[key] = value
    return body


def render(body: dict[str, Any]) -> str:
    """JSON with Decimals as bare numbers, as TradingView renders `{{close}}` (never a float)."""
    parts = []
    for key, value in body.items():
        text = format(value, "f") if isinstance(value, Decimal) else json.dumps(value)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def cmd_alert_send(args: argparse.Namespace) -> int:
    settings = load_settings()
    url = _base_url(args, settings) + "/webhook/tradingview"
    content_type = "text/plain; charset=utf-8" if args.text_plain else "application/json"
    try:
        response = httpx.post(
            url,
            content=render(build_alert(args)).encode(),
            headers={"Content-Type": content_type},
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        print(f"tradewire alert send: {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{response.status_code} {response.reason_phrase}")
    print(json.dumps(response.json(), indent=2) if _is_json(response) else response.text)
    return 0 if response.is_success else 1


def _is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


# --- trades --------------------------------------------------------------------------------------


def register_trades(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("trades", help="list, show and cancel trades (admin API)")
    p.add_argument("--url", help="webhook base URL (default http://HOST:WEBHOOK_PORT)")
    sub = p.add_subparsers(dest="trades_command", required=True)
    ls = sub.add_parser("ls", help="list trades, newest first")
    ls.add_argument("--status")
    ls.add_argument("--symbol")
    ls.add_argument("--strategy")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_trades_ls)
    show = sub.add_parser("show", help="one trade: row, orders, fills and live state")
    show.add_argument("trade_id", type=int)
    show.set_defaults(func=cmd_trades_show)
    cancel = sub.add_parser("cancel", help="cancel a trade's entry and working orders")
    cancel.add_argument("trade_id", type=int)
    cancel.add_argument("--flatten", action="store_true", help="also close what already filled")
    cancel.set_defaults(func=cmd_trades_cancel)


def _admin(
    args: argparse.Namespace, method: str, path: str, **kwargs: Any
) -> httpx.Response | None:
    settings = load_settings()
    token = settings.resolve_admin_token()
    if not token:
        print(
            "tradewire trades: no admin token: set TRADEWIRE_ADMIN_TOKEN, or run `tradewire up` "
            f"(it writes {settings.admin_token_file})",
            file=sys.stderr,
        )
        return None
    url = _base_url(args, settings) + path
    try:
        return httpx.request(
            method, url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S, **kwargs
        )
    except httpx.HTTPError as exc:
        print(f"tradewire trades: {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def _failed(response: httpx.Response | None) -> int | None:
    if response is None:
        return 1
    if response.is_success:
        return None
    detail = response.json().get("detail", response.text) if _is_json(response) else response.text
    print(f"tradewire trades: {response.status_code}: {detail}", file=sys.stderr)
    return 1


def cmd_trades_ls(args: argparse.Namespace) -> int:
    params = {
        k: v
        for k, v in (
            ("status", args.status and args.status.upper()),
            ("symbol", args.symbol),
            ("strategy", args.strategy),
            ("limit", args.limit),
        )
        if v
    }
    response = _admin(args, "GET", "/trades", params=params)
    if (code := _failed(response)) is not None:
        return code
    trades = response.json()["trades"]
    if args.json:
        print(json.dumps(trades, indent=2))
        return 0
    if not trades:
        print("no trades")
    for t in trades:
        print(
            f"#{t['id']:<6} {t['status']:<10} {t['strategy'] or '-':<14} {t['symbol']:<14} {t['side']:<5}"
            f" filled {t['filled_qty']:<12} pnl {t['realized_pnl']:<12} {t['created_at'][:19]}"
        )
    return 0


def cmd_trades_show(args: argparse.Namespace) -> int:
    response = _admin(args, "GET", f"/trades/{args.trade_id}")
    if (code := _failed(response)) is not None:
        return code
    print(json.dumps(response.json(), indent=2))
    return 0


def cmd_trades_cancel(args: argparse.Namespace) -> int:
    response = _admin(
        args, "POST", f"/trades/{args.trade_id}/cancel", json={"flatten": args.flatten}
    )
    if (code := _failed(response)) is not None:
        return code
    body = response.json()
    how = "cancel with flatten" if args.flatten else "cancel"
    print(f"{how} sent to trade #{body['trade_id']} ({body['workflow_id']}): {body['ui_url']}")
    if not args.flatten:
        print("without --flatten, a trade that already filled keeps its position and TP/SL")
    return 0
