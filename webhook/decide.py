"""Deciding what one delivery is, inside one transaction: parse, authenticate, check the
strategy's limits, validate, resolve the symbol, then dedupe and route (routing.py). Every
refusal is a `Refused`; intake.py records it as the delivery's `signal` row."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Strategy, TradingPair
from trading.errors import UnknownSymbol
from trading.risk import (
    RiskLimits,
)
from trading.symbols import resolve_symbol, ticker_candidates
from trading.types import Intent
from webhook import queries, risk_gate, routing
from webhook.auth import ip_allowed, verify_secret
from webhook.intent import (
    CLOSES,
    check_exit_fields,
    check_ladder,
    check_percent_targets,
    exit_part,
    intent_of,
)
from webhook.plans import Plan, Refused
from webhook.queries import Delivery
from webhook.ratelimit import RateLimiter
from webhook.schemas import (
    Alert,
    AlertRefused,
    anonymous_body,
    dedupe_key,
    parse_json,
    stored_body,
    validate,
)

log = logging.getLogger("webhook")
UNAUTHORIZED = "unauthorized: unknown strategy or wrong secret"


async def decide(
    session: AsyncSession,
    d: Delivery,
    raw: bytes,
    key: bytes,
    limiter: RateLimiter,
    warm_venue: Callable[[str], None] | None = None,
    account_limits: RiskLimits | None = None,
    queue_start: Callable[[str, str], bool] | None = None,
) -> Plan:
    """`warm_venue` (the fast path's hook) gets the symbol of an open or a reverse as soon as
    the alert is authenticated, allowed and resolved, before anything is committed.
    `account_limits`: the account's risk limits (TRADEWIRE_RISK_*), of which intake decides
    `max_open_trades`. `queue_start(strategy, symbol)`: whether a new trade is recorded
    QUEUED, to be answered before its start (a burst, or starts of its strategy and symbol
    still queued ahead of it: webhook/start_queue.py)."""
    body, candidates, (strategy, pair) = await _front_door(session, d, raw, key)
    d.body = stored_body(body)
    if not strategy.enabled:
        raise Refused(403, f"strategy {strategy.name!r} is disabled")
    if not ip_allowed(d.source_ip, strategy.allowed_ips, strategy.allow_tradingview_ips):
        raise Refused(
            403, f"source address {d.source_ip} is not allowed for strategy {strategy.name!r}"
        )
    wait = limiter.allow(strategy.id, strategy.rate_limit_per_min)
    if wait is not None:
        raise Refused(
            429,
            f"rate limit: strategy {strategy.name!r} takes {strategy.rate_limit_per_min} alerts "
            f"per minute; retry in {wait:.1f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    try:
        alert = validate(body)
        d.alert_time = alert.time
        d.intent = intent_of(
            alert.action, alert.market_position, alert.prev_market_position,
            size=alert.size, market_position_size=alert.market_position_size,
        )
        check_percent_targets(d.intent, alert.tp_pct, alert.sl_pct)
        check_ladder(d.intent, alert.tps, alert.price, alert.sl)
        check_exit_fields(d.intent, alert.close_pct)
        part = None if d.intent not in CLOSES else exit_part(
            alert.action, alert.market_position, size=alert.size, close_pct=alert.close_pct)
    except AlertRefused as exc:
        raise Refused(exc.status, exc.message) from None
    _check_age(alert, d.received_at, strategy.max_alert_age_s)
    _check_risk_stop(d.intent, alert, strategy)
    d.symbol = await _resolve(session, alert.ticker, d.intent, (candidates, pair))
    queued = queue_start is not None and queue_start(strategy.name, d.symbol)
    if warm_venue is not None and d.intent not in CLOSES and not queued:
        # Not for a queued start (a burst): it is not started here, so nothing here would use
        # the reads, and they cost the answers still owed (8% of the webhook's CPU in a burst).
        _warm(warm_venue, d.symbol)
    key_text, windowed = dedupe_key(alert, body)
    d.dedupe_key = f"{key_text}:{uuid4().hex[:12]}" if windowed else key_text

    await queries.lock_strategy_symbol(session, strategy.id, d.symbol)
    holder, exits = await queries.key_holder_and_latest_exit(
        session,
        strategy.id,
        d.symbol,
        key_text,
        windowed,
        strategy.dedupe_window_s,
        d.received_at,
    )
    if holder is not None and holder.outcome in queries.ANSWERED_ACCEPTED:
        return await routing.duplicate(session, d, strategy, holder)
    if holder is not None and holder.trade_id is None:
        holder = None  # an exit Temporal did not take holds nothing: claim the key afresh
    # After the duplicate check: a redelivery of an alert already accepted sends nothing new,
    # so it is answered as the duplicate it is, whatever the trading state is now.
    note = await risk_gate.admit(session, d, strategy, account_limits or RiskLimits(),
                                 recorded=holder is not None)
    if d.intent in CLOSES:
        return await routing.close(session, d, strategy, alert, note=note, part=part)
    return await routing.open_(session, d, strategy, alert, holder, exits,
                               queue_start=queued)


async def _front_door(
    session: AsyncSession, d: Delivery, raw: bytes, key: bytes
) -> tuple[dict[str, Any], tuple[str, ...], tuple[Strategy, TradingPair | None]]:
    """All an anonymous caller can make us do: a bounded parse (numbers and depth checked in
    the parser) and one secret check. A refusal here is `anonymous`; its stored body is cut
    short (schemas.anonymous_body)."""
    try:
        body = parse_json(raw)
    except AlertRefused as exc:
        raise Refused(exc.status, exc.message, anonymous=True) from None
    try:
        candidates = _candidates(body.get("ticker"))
        return body, candidates, await _authenticate(session, d, body, key, candidates)
    except Refused as refused:
        d.body = anonymous_body(body)
        refused.anonymous = True
        raise


def _check_risk_stop(intent: Intent, alert: Alert, strategy: Strategy) -> None:
    """A risk_pct entry (the alert's, or the strategy's default sizing) is sized by what its
    stop-loss loses: without `sl` or `sl_pct` there is nothing to size by (strategies have no
    default stop), so it is refused here rather than by the trade."""
    if intent in CLOSES or alert.sl is not None or alert.sl_pct is not None:
        return
    risk_pct = routing.sizing_used(alert, intent, strategy).risk_pct
    if risk_pct is not None:
        whose = "this alert's" if alert.risk_pct is not None else f"strategy {strategy.name!r}'s"
        raise Refused(
            422,
            f"missing field 'sl' or 'sl_pct': {whose} risk_pct {format(risk_pct, 'f')} sizes the "
            "entry by what its stop-loss loses if hit, and the alert gives no stop-loss",
        )


def _warm(warm_venue: Callable[[str], None], symbol: str) -> None:
    try:
        warm_venue(symbol)
    except Exception as exc:  # noqa: BLE001 - a warm-up is an optimisation, never a refusal
        log.warning("venue warm-up for %s failed: %s", symbol, type(exc).__name__)


def _candidates(ticker: Any) -> tuple[str, ...]:
    """The symbols the raw body's ticker may mean, so that the strategy and the pair are read
    together; () when the ticker is not usable yet (validation then says why)."""
    if not isinstance(ticker, str) or not ticker.strip():
        return ()
    try:
        return ticker_candidates(ticker.strip())
    except UnknownSymbol:
        return ()


async def _authenticate(
    session: AsyncSession,
    d: Delivery,
    body: dict[str, Any],
    key: bytes,
    candidates: tuple[str, ...],
) -> tuple[Strategy, TradingPair | None]:
    """The strategy, once the secret matches, and the pair `candidates` found (read in the
    same round trip, used only after the alert is validated)."""
    name, secret = body.get("strategy"), body.get("secret")
    if isinstance(name, str):
        d.strategy_name = name.strip()[:64]
    for field_name, value in (("secret", secret), ("strategy", name)):
        if value is None:
            raise Refused(422, f"missing field {field_name!r}")
        if not isinstance(value, str) or not value.strip():
            raise Refused(422, f"field {field_name!r}: must be a non-empty string")
    strategy, pair = await queries.find_strategy_and_pair(session, name.strip(), candidates)
    if not verify_secret(key, secret.strip(), strategy.secret_hash if strategy else None):
        # The same work either way (a dummy HMAC for a missing strategy, verify_secret), and
        # no strategy_id on the row: its foreign-key check would tell the names apart by time.
        stored = f"unknown strategy {name.strip()!r}" if strategy is None else "wrong secret"
        raise Refused(401, UNAUTHORIZED, stored=f"unauthorized: {stored}")
    d.strategy_id = strategy.id
    return strategy, pair


def _check_age(alert: Alert, received_at: datetime, max_age_s: int) -> None:
    if alert.time is None:
        return
    age = (received_at - alert.time).total_seconds()
    if age > max_age_s:
        raise Refused(
            422,
            f"alert too old: its time {alert.time.isoformat()} is {age:.0f} s before it arrived; "
            f"this strategy refuses alerts older than {max_age_s} s (max_alert_age_s)",
        )
    if -age > max_age_s:
        raise Refused(
            422,
            f"alert time {alert.time.isoformat()} is {-age:.0f} s in the future: check the "
            "sender's clock and that `time` is {{timenow}} in UTC",
        )


async def _resolve(
    session: AsyncSession,
    ticker: str,
    intent: Intent,
    prefetched: tuple[tuple[str, ...], TradingPair | None],
) -> str:
    try:
        candidates = ticker_candidates(ticker)
        read_for, pair = prefetched
        if candidates != read_for:  # validation changed the ticker: read it again
            pair = await queries.find_pair(session, candidates)
        if pair is None:  # refused with the closest known symbols as suggestions
            resolve_symbol(ticker, await queries.all_symbols(session))
            raise AssertionError("resolve_symbol accepts only what find_pair finds")
    except UnknownSymbol as exc:
        raise Refused(422, exc.message) from None
    if intent not in CLOSES and not queries.tradable(pair):
        raise Refused(
            422,
            f"symbol {pair.symbol} does not accept new positions now (status {pair.status}"
            f"{'' if pair.api_supported else ', not tradable through the API'})",
        )
    return pair.symbol
