"""`tradewire incidents [ls|show|dismiss|adopt|flatten|resume]`: what the account watcher found out of
line with the open trades (docs/design.md#the-ownership-invariant) and the operator's answers
(docs/design.md#incident-policies), through the running webhook's admin API."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.remote import admin_request, operator

STATUSES = ("open", "resolved", "dismissed", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "incidents", help="list, show and dismiss incidents (admin API); alone: the open ones"
    )
    p.add_argument("--url", help="webhook base URL (default http://HOST:WEBHOOK_PORT)")
    _list_options(p)
    p.set_defaults(func=cmd_incidents_ls)
    sub = p.add_subparsers(dest="incidents_command")
    ls = sub.add_parser("ls", help="list incidents, newest first (default: the open ones)")
    _list_options(ls)
    ls.set_defaults(func=cmd_incidents_ls)
    show = sub.add_parser("show", help="one incident, with its actions")
    show.add_argument("incident_id", type=int)
    show.set_defaults(func=cmd_incidents_show)
    dismiss = sub.add_parser("dismiss", help="answer an open incident: nothing more to do")
    dismiss.add_argument("incident_id", type=int)
    dismiss.add_argument("--note", required=True, help="why (kept on the incident)")
    dismiss.add_argument("--by", default=None, help="who (default: your user name)")
    dismiss.set_defaults(func=cmd_incidents_dismiss)
    adopt = sub.add_parser(
        "adopt", help="take unowned quantity into a trade with a protective stop, tracked until closed")
    adopt.add_argument("incident_id", type=int)
    adopt.add_argument("--strategy", help="the strategy whose exit alerts may close it")
    adopt.add_argument("--stop-pct", help="the stop's distance from the mark, in percent "
                                          "(default TRADEWIRE_ADOPT_STOP_PCT)")
    _answer_options(adopt)
    adopt.set_defaults(func=cmd_incidents_adopt)
    flatten = sub.add_parser(
        "flatten", help="take unowned quantity into a trade that closes it reduce-only at once")
    flatten.add_argument("incident_id", type=int)
    _answer_options(flatten)
    flatten.set_defaults(func=cmd_incidents_flatten)
    resume = sub.add_parser(
        "resume", help="give an untracked trade a new run of its workflow (rebuilt from its rows)")
    resume.add_argument("incident_id", type=int)
    _answer_options(resume)
    resume.set_defaults(func=cmd_incidents_resume)


def _answer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--note", help="why (kept on the incident)")
    p.add_argument("--by", default=None, help="who (default: your user name)")


def _list_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", choices=STATUSES, default="open")
    p.add_argument("--all", action="store_const", const="all", dest="status",
                   help="every incident, whatever its status (same as --status all)")
    p.add_argument("--symbol")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")





def _line(i: dict[str, Any]) -> str:
    where = f"{i['symbol']} {i['side'] or ''}".strip()
    return (f"#{i['id']:<5} {i['status']:<9} {i['kind']:<16} {where:<16} exchange "
            f"{i['exchange_qty']:<10} owned {i['owned_qty']:<10} since {i['first_seen'][:19]}  "
            f"last {i['last_seen'][:19]}\n       {i['detail']}"
            + (f"\n       {i['resolution']}" if i["resolution"] else ""))


def cmd_incidents_ls(args: argparse.Namespace) -> int:
    params = {"status": args.status, "limit": args.limit}
    if args.symbol:
        params["symbol"] = args.symbol
    response = admin_request("incidents", args, "GET", "/incidents", params=params)
    if isinstance(response, int):
        return response
    body = response.json()
    if args.json:
        print(json.dumps(body["incidents"], indent=2))
        return 0
    if not body["incidents"]:
        print("no incidents" if args.status == "all" else f"no {args.status} incidents")
    for incident in body["incidents"]:
        print(_line(incident))
    if args.status != "open" and body["open"]:
        print(f"{body['open']} open")
    return 0


def cmd_incidents_show(args: argparse.Namespace) -> int:
    response = admin_request("incidents", args, "GET", f"/incidents/{args.incident_id}")
    if isinstance(response, int):
        return response
    print(json.dumps(response.json(), indent=2))
    return 0




def cmd_incidents_dismiss(args: argparse.Namespace) -> int:
    response = admin_request("incidents", args, "POST", f"/incidents/{args.incident_id}/dismiss",
                      json={"note": args.note, "by": args.by or operator()})
    if isinstance(response, int):
        return response
    body = response.json()
    print(f"incident #{body['id']} dismissed: {body['resolution']}")
    return 0


def _answer(args: argparse.Namespace, verb: str, body: dict[str, Any]) -> int:
    body |= {"by": args.by or operator()}
    if args.note:
        body["note"] = args.note
    response = admin_request("incidents", args, "POST", f"/incidents/{args.incident_id}/{verb}", json=body)
    if isinstance(response, int):
        return response
    out = response.json()
    print(f"incident #{args.incident_id}: {out['incident']['actions'][-1]['note']}")
    print(f"  trade #{out['trade_id']}: {out['ui_url']}")
    return 0


def cmd_incidents_adopt(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.strategy:
        body["strategy"] = args.strategy
    if args.stop_pct:
        body["stop_pct"] = args.stop_pct  # a string: the API parses it as a Decimal
    return _answer(args, "adopt", body)


def cmd_incidents_flatten(args: argparse.Namespace) -> int:
    return _answer(args, "flatten", {})


def cmd_incidents_resume(args: argparse.Namespace) -> int:
    return _answer(args, "resume", {})
