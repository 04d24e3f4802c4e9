"""`tradewire trades ls|show|cancel|set-exits`: the trades, through the running webhook's admin
API."""

from __future__ import annotations

import argparse
import json
import re
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from cli import load_settings
from cli.remote import TIMEOUT_S, base_url, is_json
from trading.exits import MAX_TP_LEVELS, ExitPlan
from workflows.state import ExitsView
from workflows.summary import exit_lines

# `--tps` (see parse_tps) and `--sl-after-tp`/`--trail`: "none" takes the ladder or trail out.
NONE = "none"
SL_AFTER_TP = ("breakeven", "previous_tp", "none")
# A set-exits waits for the trade to move its orders at the exchange (webhook/trades.py waits
# up to 5 s for the trade to take it and 30 s for it to be done).
SET_EXITS_TIMEOUT_S = 45.0


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
    show.add_argument("--exits", action="store_true",
                      help="print the exit plan: each level, what filled, the stop, the trail")
    show.set_defaults(func=cmd_trades_show)
    cancel = sub.add_parser("cancel", help="cancel a trade's entry and working orders")
    cancel.add_argument("trade_id", type=int)
    cancel.add_argument("--flatten", action="store_true", help="also close what already filled")
    cancel.set_defaults(func=cmd_trades_cancel)
    ex = sub.add_parser(
        "set-exits", help="move a running trade's stop-loss, take-profits and trailing stop",
        description="Fields left out keep what the trade has. Prices and percents as in an "
        "alert; the trade refuses a price on the wrong side of the current price.")
    ex.add_argument("trade_id", type=int)
    ex.add_argument("--sl", metavar="PRICE", help="the stop-loss price")
    ex.add_argument("--tp", metavar="PRICE", help="one take-profit price (replaces a ladder)")
    ex.add_argument("--tps", metavar="LEVELS",
                    help='the take-profit ladder: "1%%:50,2%%:30,4%%" (percent from the entry '
                    ': percent of the quantity), "64000:50,66000" (prices), the last level '
                    'without a share takes the rest; "none" goes back to one TP')
    ex.add_argument("--sl-after-tp", metavar="WHERE",
                    help="where the stop goes after a take-profit: breakeven, previous_tp or "
                    "none; one value, or one per level separated by commas")
    ex.add_argument("--trail", metavar="PCT",
                    help='a trailing stop PCT percent behind the best price; "none" removes it')
    ex.add_argument("--trail-activation", metavar="PCT",
                    help="the trail starts once the price is PCT percent in profit")
    ex.add_argument("--trail-activation-price", metavar="PRICE",
                    help="the trail starts once the price reaches PRICE")
    ex.add_argument("--trail-price", choices=("mark", "last"),
                    help="the price the trail follows (default: the strategy's stop type)")
    ex.set_defaults(func=cmd_trades_set_exits)


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
            method, url, headers={"Authorization": f"Bearer {token}"},
            **({"timeout": TIMEOUT_S} | kwargs),
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
    body = response.json()
    if not args.exits:
        print(json.dumps(body, indent=2))
        return 0
    print(f"trade #{body['id']} {body['symbol']} {body['side']} {body['status']}")
    if body.get("state") is None:
        print(f"no live state: {body.get('state_error') or 'the trade has ended'}")
        return 0
    print("\n".join(exits_text(body["state"], body.get("exits"))))
    return 0


def exits_text(state: dict[str, Any], exits: dict[str, Any] | None) -> list[str]:
    """What `trades show --exits` prints: the TP/SL, the plan as asked (percent levels, the
    trail's settings) and, once the trade tracks it, each level and the stop as they stand."""
    p = state["protection"]
    lines = [f"TP {p['tp'] or '-'} · SL {p['sl'] or '-'} · protection {p['level']} {p['qty']}"]
    plan = ExitPlan.model_validate(exits["plan"]) if exits and exits.get("plan") else None
    if plan is None:
        lines.append("plan: no ladder, no trail")
    else:
        lines.append("plan: " + " · ".join(_plan_parts(plan)))
    if state.get("exits") is not None:
        lines += exit_lines(ExitsView.model_validate(state["exits"]))
    return lines


def _plan_parts(plan: ExitPlan) -> list[str]:
    parts = []
    for n, tp in enumerate(plan.tps, start=1):
        where = f"{tp.pct}%" if tp.pct is not None else str(tp.price)
        share = f" of {tp.qty_pct}%" if tp.qty_pct is not None else " of the rest"
        after = f", then SL {tp.sl_after.value}" if tp.sl_after.value != NONE else ""
        parts.append(f"TP{n} {where}{share}{after}")
    t = plan.trail
    if t is not None:
        start = (f" from {t.activation_pct}% in profit" if t.activation_pct is not None
                 else f" from {t.activation_price}" if t.activation_price is not None else "")
        on = f" on {t.price_type.value}" if t.price_type is not None else ""
        parts.append(f"trail {t.pct}%{start}{on}")
    return parts


def parse_tps(spec: str) -> list[dict[str, str]] | None:
    """`--tps`: levels separated by commas, each `WHERE[:SHARE]`: WHERE a price ("64000") or a
    percent from the entry ("1%"), SHARE the percent of the trade's quantity ("50" or "50%");
    a level without a share takes what the others leave. "none": no ladder (None). The
    numbers stay text, exactly as typed: the API checks their ranges as it does an alert's.
    ValueError names the level that cannot be read."""
    if spec.strip().lower() == NONE:
        return None
    levels = [part.strip() for part in spec.split(",")]
    if not spec.strip() or any(not part for part in levels):
        raise ValueError(f"--tps {spec!r}: give levels like 1%:50,2%:30,4% (an empty level)")
    if len(levels) > MAX_TP_LEVELS:
        raise ValueError(f"--tps: at most {MAX_TP_LEVELS} levels ({len(levels)} given)")
    out = []
    for n, part in enumerate(levels, start=1):
        m = re.fullmatch(r"([^:%\s]+)\s*(%?)\s*(?::\s*([^:%\s]+)\s*%?)?", part)
        if m is None or not all(_number(x) for x in (m[1], m[3]) if x is not None):
            raise ValueError(f"--tps level {n} {part!r}: expected PRICE or PCT% with an "
                             "optional :SHARE, e.g. 1%:50 or 64000:50")
        level = {"pct" if m[2] else "price": m[1]}
        if m[3] is not None:
            level["qty_pct"] = m[3]
        out.append(level)
    return out


def _number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def parse_sl_after_tp(spec: str) -> str | list[str]:
    """`--sl-after-tp`: one value for every level, or one per level separated by commas."""
    values = [v.strip().lower() for v in spec.split(",")]
    wrong = [v for v in values if v not in SL_AFTER_TP]
    if wrong:
        raise ValueError(f"--sl-after-tp {wrong[0]!r}: one of {', '.join(SL_AFTER_TP)}")
    return values[0] if len(values) == 1 else values


def exits_body(args: argparse.Namespace) -> dict[str, Any]:
    """The PATCH body from the options given (ValueError for one that cannot be read)."""
    body: dict[str, Any] = {}
    for option, field in (("sl", "sl"), ("tp", "tp"),
                          ("trail_activation", "trail_activation_pct"),
                          ("trail_activation_price", "trail_activation_price"),
                          ("trail_price", "trail_price")):
        if getattr(args, option) is not None:
            body[field] = getattr(args, option)
    if args.tps is not None:
        body["tps"] = parse_tps(args.tps)
    if args.sl_after_tp is not None:
        body["sl_after_tp"] = parse_sl_after_tp(args.sl_after_tp)
    if args.trail is not None:
        body["trail_pct"] = None if args.trail.strip().lower() == NONE else args.trail
    if not body:
        raise ValueError("give at least one of --sl, --tp, --tps, --sl-after-tp, --trail, "
                         "--trail-activation, --trail-activation-price, --trail-price")
    return body


def cmd_trades_set_exits(args: argparse.Namespace) -> int:
    try:
        body = exits_body(args)
    except ValueError as exc:
        print(f"tradewire trades set-exits: {exc}", file=sys.stderr)
        return 2
    response = _admin(args, "PATCH", f"/trades/{args.trade_id}", json=body,
                      timeout=SET_EXITS_TIMEOUT_S)
    if (code := _failed(response)) is not None:
        return code
    answer = response.json()
    if not answer["applied"]:
        print(f"trade #{answer['trade_id']}: sent, not done yet: {answer['note']}")
        return 0
    print(f"trade #{answer['trade_id']}: exits moved ({answer['ui_url']})")
    state = {"protection": answer["protection"], "exits": answer["exits"]}
    print("\n".join(exits_text(state, {"plan": answer["plan"]})))
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
