"""The dashboard's actions, each the webhook's own handler called in-process with the same
AppState shape (webhook/deps.py): the kill switch is webhook/risk.py's halt/reduce-only/resume
(recorded with who and why, then the cancels signalled to the trades it stops), an incident's
answer is webhook/incidents.py's adopt/flatten/dismiss. One implementation of every action;
the dashboard only turns a form into the handler's request and its answer into a message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from webhook import risk
from webhook.deps import AppState

ACTOR = "ui"  # the `by` of what the dashboard does (the risk events and incident actions show it)


@dataclass(frozen=True)
class Done:
    ok: bool
    message: str
    body: dict[str, Any] | None = None


def _body(response: JSONResponse) -> dict[str, Any]:
    return json.loads(bytes(response.body))  # type: ignore[no-any-return]


async def _run(call: Any, describe: Any) -> Done:
    try:
        body = _body(await call())
    except HTTPException as exc:
        return Done(False, str(exc.detail))
    except ValidationError as exc:
        return Done(False, "; ".join(e["msg"] for e in exc.errors()))
    return Done(True, describe(body), body)


async def set_trading_state(state: AppState, verb: str, *, strategy: str | None,
                            reason: str | None, flatten: bool = False) -> Done:
    """`verb`: halt, reduce-only or resume, for the account (strategy None) or one strategy."""
    by = ACTOR

    def said(body: dict[str, Any]) -> str:
        s = body["state"]
        return (f"{s['label']} is {s['state']}{' with flatten' if s['flatten'] else ''}: "
                f"{body['signalled']} trade(s) signalled")

    if verb == "halt":
        return await _run(lambda: risk.halt(
            risk.HaltRequest(strategy=strategy, reason=reason, by=by, flatten=flatten), state), said)
    def request() -> risk.ChangeRequest:
        return risk.ChangeRequest(strategy=strategy, reason=reason, by=by)

    if verb == "reduce-only":
        return await _run(lambda: risk.reduce_only(request(), state), said)
    if verb == "resume":
        return await _run(lambda: risk.resume(request(), state), said)
    return Done(False, f"unknown action {verb!r}")


async def answer_incident(state: AppState, incident_id: int, verb: str, *, note: str | None,
                          stop_pct: Decimal | None = None) -> Done:
    """`verb`: dismiss (a note is required), adopt or flatten."""
    # Imported on the first answer: adopting or flattening starts a trade (Temporal's SDK), which
    # the dashboard's pages never need (tests/test_cli_lean.py).
    from webhook import incidents

    if verb == "dismiss":
        return await _run(lambda: incidents.dismiss_incident(
            incident_id, incidents.DismissRequest(note=note or "", by=ACTOR), state),
            lambda b: f"incident #{incident_id} dismissed")

    def started(body: dict[str, Any]) -> str:
        return f"incident #{incident_id}: trade #{body['trade_id']} {verb}s it"

    def request() -> incidents.AdoptRequest:
        return incidents.AdoptRequest(note=note or None, by=ACTOR, stop_pct=stop_pct)

    if verb == "adopt":
        return await _run(lambda: incidents.adopt_incident(incident_id, request(), state), started)
    if verb == "flatten":
        return await _run(lambda: incidents.flatten_incident(incident_id, request(), state),
                          started)
    return Done(False, f"unknown action {verb!r}")
