"""`tradewire trades ls|show|cancel`: the trades, through the running webhook's admin API."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from cli import load_settings
from cli.remote import TIMEOUT_S, base_url, is_json


def register(subparsers: argparse._SubParsersAction) -> None:
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
    url = base_url(args, settings) + path
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
    detail = response.json().get("detail", response.text) if is_json(response) else response.text
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
