"""`tradewire risk [halt|reduce-only|resume]`: the trading states, limits, today's PnL and
exposure, and the kill switch (docs/design.md#risk), through the running webhook's admin API.
A change is recorded as `cli:<user>`."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from typing import Any

from cli.remote import admin_request, operator


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "risk", help="trading states, limits, today's PnL, exposure; halt, reduce-only, resume")
    p.add_argument("--url", help="webhook base URL (default http://HOST:WEBHOOK_PORT)")
    p.add_argument("--json", action="store_true", help="the API's answer as JSON")
    p.set_defaults(func=cmd_risk_show)
    sub = p.add_subparsers(dest="risk_command")
    show = sub.add_parser("show", help="states, limits, today's PnL, exposure, recent changes")
    show.add_argument("--json", action="store_true", help="the API's answer as JSON")
    show.set_defaults(func=cmd_risk_show)
    halt = sub.add_parser(
        "halt", help="nothing new is sent; working entries cancelled; TP/SL stay")
    _change_options(halt)
    halt.add_argument("--flatten", action="store_true",
                      help="also close every position (each trade's own close; quantity no "
                           "trade owns is flattened)")
    halt.set_defaults(func=cmd_risk_halt)
    reduce = sub.add_parser("reduce-only", help="exits, TP/SL and closes only; nothing opens")
    _change_options(reduce)
    reduce.set_defaults(func=cmd_risk_reduce_only)
    resume = sub.add_parser("resume", help="ACTIVE again (lifts a daily-loss latch too)")
    _change_options(resume)
    resume.set_defaults(func=cmd_risk_resume)


def _change_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", help="one strategy (default: the whole account)")
    p.add_argument("--reason", help="why (recorded with the change)")
    p.add_argument("--json", action="store_true", help="the API's answer as JSON")







def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    cells = [tuple("-" if v is None else str(v) for v in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells]


def _who(s: dict[str, Any]) -> str:
    if not s["changed_by"]:
        return "-"
    return f"{s['changed_by']} at {s['changed_at'][:19]}: {s['reason']}"


def _state(s: dict[str, Any]) -> str:
    extra = [w for w, on in (("flatten", s["flatten"]), ("latched", s["latched"])) if on]
    return s["state"] + (f" ({', '.join(extra)})" if extra else "")


def _limits(limits: dict[str, Any]) -> str:
    set_ = [f"{k}={v}" for k, v in limits.items() if v is not None]
    return ", ".join(set_) or "none"


def _money(value: str) -> str:
    return format(Decimal(value).quantize(Decimal("0.01")), "f")


def _today(pnl: dict[str, Any], limits: dict[str, Any]) -> str:
    """A scope's PnL today beside its daily loss limits, e.g. `-52.31 USDT (realized -40.00,
    unrealized -12.31) of daily_loss_usdt 50`."""
    if pnl["source"] == "latch":
        text = (f"{_money(pnl['pnl'])} USDT (realized {_money(pnl['realized'])}, "
                f"unrealized {_money(pnl['unrealized'])})")
    else:
        text = (f"{_money(pnl['pnl'])} USDT realized only (the latch keeps no figure of it "
                "today: no daily loss limit, or no watcher round yet)")
    bounds = []
    if limits.get("daily_loss_usdt") is not None:
        bounds.append(f"daily_loss_usdt {limits['daily_loss_usdt']}")
    if limits.get("daily_loss_pct") is not None:
        bounds.append(f"daily_loss_pct {limits['daily_loss_pct']} %")
        if pnl["loss_limit_usdt"] is not None:  # the day's starting equity is known
            bounds[-1] += f" (latches at a loss of {pnl['loss_limit_usdt']} USDT)"
    return text + (f" of {', '.join(bounds)}" if bounds else "; no daily loss limit")


def render(body: dict[str, Any]) -> str:
    """`GET /risk` for a reader: states, limits, today's PnL, exposure, recent changes."""
    lines = [f"account: {_state(body['account'])}  ({_who(body['account'])})",
             f"account limits: {_limits(body['limits'])}"]
    today = body["today"]
    lines.append(f"today ({today['day']}, {today['timezone']}): realized PnL "
                 f"{today['realized_pnl']} - fees {today['fees']} = {today['net_pnl']} USDT")
    if "account" in today:  # a webhook older than the latch's figures has none
        lines.append(f"account today: {_today(today['account'], body['limits'])}")
    if body["strategies"]:
        lines += ["", "strategies:"]
        by_scope = {s["scope"]: s for s in body["scopes"]}
        lines += ["  " + line for line in _table(
            ("NAME", "STATE", "EFFECTIVE", "TODAY PNL", "LIMITS", "CHANGED"),
            [(s["name"] + ("" if s["enabled"] else " (disabled)"), s["state"],
              s["effective"]["state"]
              + (" (account)" if s["effective"]["scope"] == "account"
                 and s["effective"]["state"] != "ACTIVE" else ""),
              s["today_pnl"] + (" (realized)" if s.get("today", {}).get("source") == "realized"
                                else ""), _limits(s["limits"]),
              _who(by_scope[f"strategy:{s['name']}"]) if f"strategy:{s['name']}" in by_scope
              else "-")
             for s in body["strategies"]])]
    daily = [s for s in body["strategies"] if "today" in s
             and (s["today"]["source"] == "latch" or s["limits"].get("daily_loss_usdt")
                  is not None or s["limits"].get("daily_loss_pct") is not None)]
    if daily:
        lines += ["", "daily loss (today's PnL with unrealized at mark, as the latch judges it):"]
        lines += [f"  strategy {s['name']!r}: {_today(s['today'], s['limits'])}" for s in daily]
    lines += ["", "exposure (open trades, at their entry price):"]
    if body["exposure"]:
        lines += ["  " + line for line in _table(
            ("SYMBOL", "SIDE", "QTY", "NOTIONAL USDT", "TRADES"),
            [(e["symbol"], e["side"], e["qty"], e["notional_usdt"], e["trades"])
             for e in body["exposure"]])]
    else:
        lines.append("  none")
    if body["events"]:
        lines += ["", "recent changes:"]
        lines += ["  " + line for line in _table(
            ("AT", "SCOPE", "CHANGE", "BY", "REASON"),
            [(e["at"][:19], e["scope"],
              f"{e['state_before']} -> {e['state_after']}"
              + (" flatten" if e["flatten"] else "") + (" latched" if e["latched"] else ""),
              e["actor"], e["reason"]) for e in body["events"]])]
    return "\n".join(lines)


def cmd_risk_show(args: argparse.Namespace) -> int:
    response = admin_request("risk", args, "GET", "/risk")
    if isinstance(response, int):
        return response
    body = response.json()
    print(json.dumps(body, indent=2) if args.json else render(body))
    return 0


def _change(args: argparse.Namespace, verb: str, body: dict[str, Any]) -> int:
    body |= {"by": f"cli:{operator()}"}
    if args.strategy:
        body["strategy"] = args.strategy
    if args.reason:
        body["reason"] = args.reason
    response = admin_request("risk", args, "POST", f"/risk/{verb}", json=body)
    if isinstance(response, int):
        return response
    out = response.json()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    after, before = out["state"], out["before"]
    print(f"{after['label']}: {before['state']} -> {_state(after)} "
          f"(by {after['changed_by']}: {after['reason']})")
    print(f"  trades signalled: {out['signalled']}"
          + (f", not running: {out['not_running']}" if out["not_running"] else ""))
    if out["undelivered"]:
        print(f"  not reached now (Temporal unavailable; the account watcher retries every "
              f"round): {', '.join(out['undelivered'])}")
    return 0


def cmd_risk_halt(args: argparse.Namespace) -> int:
    return _change(args, "halt", {"flatten": args.flatten})


def cmd_risk_reduce_only(args: argparse.Namespace) -> int:
    return _change(args, "reduce-only", {})


def cmd_risk_resume(args: argparse.Namespace) -> int:
    return _change(args, "resume", {})
