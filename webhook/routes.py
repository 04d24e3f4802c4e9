"""POST /webhook/tradingview: TradingView's alert, answered once Temporal holds the trade."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

import logs
import metrics
from webhook.apidoc import AlertAnswer
from webhook.auth import source_address
from webhook.deps import AppState, app_state
from webhook.intake import Answer, Intake
from webhook.queries import Delivery
from webhook.schemas import MAX_BODY_BYTES, Alert, received_now

router = APIRouter()
log = logging.getLogger("webhook")


class BodyTooLarge(Exception):
    pass


class SenderGone(Exception):
    """The connection closed before the body was complete; `received` bytes had come."""

    def __init__(self, received: int) -> None:
        super().__init__(f"connection closed after {received} bytes")
        self.received = received


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, or BodyTooLarge as soon as it passes `limit` (never read to the end), or
    SenderGone when the sender left before its end."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge
    except ClientDisconnect:
        raise SenderGone(len(body)) from None
    return bytes(body)


def _gone(received: int, declared: str) -> str:
    length = f"{received} of {declared} bytes" if declared.isdigit() else f"{received} bytes"
    # The sender left, or the server closed a body too slow to arrive (serving.py): the same
    # to the record, which cannot tell them apart.
    return (f"the connection closed before its body was complete ({length}): nothing in it "
            "was read or acted on")


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each `{"$ref": "#/$defs/X"}` replaced by X itself and `$defs` dropped.
    pydantic's refs point into the model's own `$defs`, which an OpenAPI document cannot
    resolve where the schema is embedded (review D15: schemathesis skipped the route). The
    alert's defs are flat enums, never recursive."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_defs(Alert.model_json_schema())},
            "text/plain": {
                "schema": {
                    "type": "string",
                    "minLength": 2,  # "{}", the shortest JSON object
                    "contentMediaType": "application/json",
                    "description": "the same JSON, as text (TradingView's alert message)",
                }
            },
        },
    }
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}


@router.post(
    "/webhook/tradingview",
    openapi_extra=_DOC,
    summary="Receive a TradingView alert",
    responses={
        202: {
            "model": AlertAnswer,
            "description": "accepted: the trade's workflow is started (or the close sent)",
        },
        200: {"model": AlertAnswer, "description": "duplicate delivery, or nothing to close"},
        400: {"model": AlertAnswer, "description": "not JSON, or not a JSON object"},
        401: {"model": AlertAnswer, "description": "unknown strategy or wrong secret"},
        403: {
            "model": AlertAnswer,
            "description": "strategy disabled or source address not allowed",
        },
        409: {
            "model": AlertAnswer,
            "description": "an exit whose trades cannot be closed now (not delivered)",
        },
        413: {"model": AlertAnswer, "description": f"body larger than {MAX_BODY_BYTES} bytes"},
        422: {
            "model": AlertAnswer,
            "description": "unknown, missing or contradictory fields; a number out of range; "
            "nested too deep; stale; unknown symbol",
        },
        429: {
            "model": AlertAnswer,
            "description": "the strategy's rate limit, or too many deliveries without a valid "
            "secret from this address",
            "headers": _RETRY_AFTER,
        },
        503: {
            "model": AlertAnswer,
            "description": "Temporal or the database unavailable; the alert is recorded "
            "(NOT_STARTED) when the database is there",
        },
    },
)
async def tradingview(request: Request, state: AppState = Depends(app_state)) -> JSONResponse:
    with logs.context():  # the intake binds the alert's ids as it learns them
        response, outcome = await _tradingview(request, state)
    metrics.alert_answered(outcome)
    return response


async def _tradingview(request: Request, state: AppState) -> tuple[JSONResponse, str]:
    received_at = received_now()
    intake: Intake = request.app.state.intake
    peer = request.client.host if request.client else None
    ip = source_address(
        peer, request.headers.get("x-forwarded-for"), state.settings.trusted_proxies
    )
    throttled = intake.throttled(ip)
    if throttled is not None:  # before the body is parsed: a flood costs one lookup each
        return _respond(throttled, close=True), _outcome(throttled)
    try:
        raw = await read_limited(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        answer = await intake.refuse_unread(
            Delivery(received_at=received_at, source_ip=ip),
            413,
            f"body larger than {MAX_BODY_BYTES} bytes: an alert message is a few hundred bytes",
        )
        return _respond(answer, close=True), _outcome(answer)
    except SenderGone as gone:  # the answer reaches nobody; the record says what came
        answer = await intake.refuse_unread(
            Delivery(received_at=received_at, source_ip=ip), 400,
            _gone(gone.received, request.headers.get("content-length", "")),
        )
        return _respond(answer, close=True), _outcome(answer)
    try:
        answer = await intake.handle(raw, ip, received_at)
    except Exception as exc:  # noqa: BLE001 - one line, never a caller-sized traceback
        answer = _failed(exc)
    return _respond(answer), _outcome(answer)


def _outcome(answer: Answer) -> str:
    return str(answer.body.get("outcome", "NOT_RECORDED"))


def _failed(exc: Exception) -> Answer:
    """An unexpected error: one log line (its type and where), not a traceback whose size the
    caller's body decides (a deep body once wrote 120 KB of log per request)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    log.error("alert not handled: %s at %s", type(exc).__name__, where)
    return Answer(500, {"outcome": "NOT_RECORDED", "reason": "internal error: retry later"})


def _respond(answer: Answer, close: bool = False) -> JSONResponse:
    headers = dict(answer.headers)
    if close:  # the rest of the body was never read: do not reuse the connection
        headers["Connection"] = "close"
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)
