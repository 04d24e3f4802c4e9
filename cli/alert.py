"""`tradewire alert send`: a TradingView-shaped alert, POSTed to the running webhook."""

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

from cli import load_settings
from cli.args import positive_decimal
from cli.remote import TIMEOUT_S, base_url, is_json
from trading.types import EntryType
from webhook.schemas import Action, MarketPosition, render_alert


def _held(text: str) -> Decimal:
    return Decimal(0) if text.strip() in ("0", "0.0") else positive_decimal(text)


def register(subparsers: argparse._SubParsersAction) -> None:
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
    sizing.add_argument("--size", type=positive_decimal)
    sizing.add_argument("--size-usdt", type=positive_decimal)
    sizing.add_argument("--size-pct", type=positive_decimal)
    send.add_argument("--order-type", choices=[e.value for e in EntryType])
    for name in ("price", "tp", "sl", "tp-pct", "sl-pct"):
        send.add_argument(f"--{name}", type=positive_decimal)
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


def cmd_alert_send(args: argparse.Namespace) -> int:
    settings = load_settings()
    url = base_url(args, settings) + "/webhook/tradingview"
    content_type = "text/plain; charset=utf-8" if args.text_plain else "application/json"
    try:
        response = httpx.post(
            url,
            content=render_alert(build_alert(args)).encode(),
            headers={"Content-Type": content_type},
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        print(f"tradewire alert send: {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{response.status_code} {response.reason_phrase}")
    print(json.dumps(response.json(), indent=2) if is_json(response) else response.text)
    return 0 if response.is_success else 1
