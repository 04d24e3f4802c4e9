"""Managing strategies: create, change, rotate the secret, enable/disable, list.

Used by `tradewire strategy …` and by `tradewire up` (the demo strategy). A secret is returned
to the caller exactly once, when it is set; only its HMAC is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.notify_sender import shown_url
from db.models import Strategy
from settings import Settings
from trading.exits import ExitPlan
from trading.risk import RiskLimits, option
from webhook.auth import check_secret, generate_secret, hash_secret, parse_network
from webhook.schemas import STRATEGY_NAME_PATTERN
from workflows.contract import SIZINGS, StrategySnapshot

# Parameters an operator may set (columns of `strategy`); everything else is managed here.
# What a trade keeps of them is declared once, by StrategySnapshot; the rest is the webhook's.
_NOT_SET_BY_OPERATORS = ("id", "name", "sizing", "rules_max_age_s")
TRADE_PARAMETERS = tuple(n for n in StrategySnapshot.model_fields if n not in _NOT_SET_BY_OPERATORS)
# The risk limits (docs/design.md#risk), named by RiskLimits; a trade's snapshot carries only
# max_leverage (checked before the leverage is set), the claim reads the others from the row.
LIMITS = RiskLimits.names()
PARAMETERS = (
    *SIZINGS,
    *TRADE_PARAMETERS,
    *(n for n in LIMITS if n not in TRADE_PARAMETERS),
    "rate_limit_per_min",
    "allowed_ips",
    "allow_tradingview_ips",
)
# The strategy's own notification receivers (docs/design.md#notifications): they replace the
# account's for its events. Set and removed like parameters, never shown (but whether set).
RECEIVERS = ("notify_webhook_url", "notify_webhook_secret", "telegram_bot_token",
             "telegram_chat_id")
RECEIVER_SECRETS = ("notify_webhook_secret", "telegram_bot_token")


class StrategyError(Exception):
    """What went wrong, in words an operator can act on."""


def check_name(name: str) -> str:
    if not re.fullmatch(STRATEGY_NAME_PATTERN, name):
        raise StrategyError(
            f"invalid strategy name {name!r}: 1-64 letters, digits, '_', '.', '-' "
            "(it becomes part of each trade's workflow id)"
        )
    return name


def _limit_adapter(name: str) -> TypeAdapter[Any]:
    # A strategy's limit takes the values its account setting (TRADEWIRE_RISK_<NAME>) takes:
    # the bounds are declared once, on the setting.
    field = Settings.model_fields[f"risk_{name}"]
    return TypeAdapter(Annotated[(field.annotation, *field.metadata)])


_LIMIT_ADAPTERS = {name: _limit_adapter(name) for name in LIMITS}


def limit_value(name: str, value: Any) -> Any:
    """A risk limit's value as stored (Decimal or int; None: no limit), or a StrategyError
    saying what it must be."""
    try:
        return _LIMIT_ADAPTERS[name].validate_python(value)
    except ValidationError as exc:
        why = "; ".join(e["msg"] for e in exc.errors()).lower()
        raise StrategyError(f"{option(name)} {value}: {why}") from None


def _normalise(params: dict[str, Any]) -> dict[str, Any]:
    unknown = set(params) - set(PARAMETERS) - set(RECEIVERS)
    if unknown:
        raise StrategyError(f"unknown strategy parameters: {', '.join(sorted(unknown))}")
    out = dict(params)
    for name in LIMITS:
        if out.get(name) is not None:
            out[name] = limit_value(name, out[name])
    given = [n for n in SIZINGS if out.get(n) is not None]
    if len(given) > 1:
        raise StrategyError(f"give one default sizing, not {' and '.join(given)}")
    if given:  # one sizing replaces the others (a CHECK allows exactly one)
        out.update({n: out.get(n) for n in SIZINGS})
    else:
        for n in SIZINGS:
            out.pop(n, None)
    if out.get("exits") is not None:  # stored as JSON, checked as the trade will read it
        try:
            plan = ExitPlan.model_validate(out["exits"])
        except ValidationError as exc:
            why = "; ".join(e["msg"] for e in exc.errors())
            raise StrategyError(f"exits: {why}") from None
        out["exits"] = None if plan.empty else plan.model_dump(mode="json", exclude_defaults=True)
    url = out.get("notify_webhook_url")
    if url is not None and not re.match(r"https?://[^/\s]+", url):
        raise StrategyError("--notify-webhook-url: give an http:// or https:// URL")
    if out.get("allowed_ips") is not None:
        try:
            out["allowed_ips"] = [str(parse_network(e)) for e in out["allowed_ips"]]
        except ValueError as exc:
            raise StrategyError(str(exc)) from None
    return out


def _constraint(exc: IntegrityError) -> str:
    return str(getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or exc.orig)


async def _flush(session: AsyncSession, what: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise StrategyError(f"{what} refused by the database ({_constraint(exc)})") from None


async def _get(session: AsyncSession, name: str) -> Strategy:
    strategy = (
        await session.execute(select(Strategy).where(Strategy.name == name))
    ).scalar_one_or_none()
    if strategy is None:
        raise StrategyError(f"no strategy named {name!r} (`tradewire strategy list` shows them)")
    return strategy


async def add(
    sessionmaker: async_sessionmaker[AsyncSession],
    key: bytes,
    name: str,
    secret: str | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[Strategy, str]:
    """Create a strategy; returns it and its secret (generated unless given)."""
    check_name(name)
    secret = check_secret(secret) if secret is not None else generate_secret()
    values = {k: v for k, v in _normalise(params or {}).items() if v is not None or k in SIZINGS}
    values |= {
        "name": name,
        "secret_hash": hash_secret(key, secret),
        "secret_rotated_at": datetime.now(UTC),
    }
    async with sessionmaker.begin() as session:
        if (await session.execute(select(Strategy.id).where(Strategy.name == name))).first():
            raise StrategyError(f"strategy {name!r} exists: use `strategy set` or `rotate-secret`")
        try:
            # A Core insert: explicit NULLs (the sizings not chosen) must win over server defaults.
            new_id = (
                await session.execute(insert(Strategy).values(values).returning(Strategy.id))
            ).scalar_one()
        except IntegrityError as exc:
            raise StrategyError(
                f"strategy {name!r} refused by the database ({_constraint(exc)})"
            ) from None
        strategy = await session.get(Strategy, new_id)
    assert strategy is not None
    return strategy, secret


async def update(
    sessionmaker: async_sessionmaker[AsyncSession], name: str, params: dict[str, Any],
    clear: tuple[str, ...] | list[str] = (),
) -> Strategy:
    """Change parameters, and remove the risk limits named in `clear`. Running trades keep the
    snapshot they started with; the other limits apply to every entry claimed from now on."""
    unknown = set(clear) - set(LIMITS) - set(RECEIVERS)
    if unknown:
        raise StrategyError(f"only risk limits can be removed, not {', '.join(sorted(unknown))}")
    both = set(clear) & {k for k, v in params.items() if v is not None}
    if both:
        raise StrategyError(f"{', '.join(sorted(both))}: set or removed, not both")
    values = {k: v for k, v in _normalise(params).items() if v is not None or k in SIZINGS}
    values |= dict.fromkeys(clear)
    async with sessionmaker.begin() as session:
        strategy = await _get(session, name)
        for column, value in values.items():
            setattr(strategy, column, value)
        await _flush(session, f"the change to {name!r}")
        await session.refresh(strategy)
    return strategy


async def rotate_secret(
    sessionmaker: async_sessionmaker[AsyncSession], key: bytes, name: str, secret: str | None = None
) -> str:
    """Replace the secret at once: alerts with the old one are refused from now on."""
    secret = check_secret(secret) if secret is not None else generate_secret()
    async with sessionmaker.begin() as session:
        strategy = await _get(session, name)
        strategy.secret_hash = hash_secret(key, secret)
        strategy.secret_rotated_at = datetime.now(UTC)
    return secret


async def set_enabled(
    sessionmaker: async_sessionmaker[AsyncSession], name: str, enabled: bool
) -> Strategy:
    async with sessionmaker.begin() as session:
        strategy = await _get(session, name)
        strategy.enabled = enabled
    return strategy


async def get(sessionmaker: async_sessionmaker[AsyncSession], name: str) -> Strategy:
    async with sessionmaker() as session:
        return await _get(session, name)


async def all_strategies(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Strategy]:
    async with sessionmaker() as session:
        return list((await session.execute(select(Strategy).order_by(Strategy.name))).scalars())


def describe(strategy: Strategy) -> dict[str, Any]:
    """Everything an operator may want to see; the secret only as whether one is set."""
    out: dict[str, Any] = {"name": strategy.name, "enabled": strategy.enabled}
    out |= {p: getattr(strategy, p) for p in PARAMETERS}
    url = strategy.notify_webhook_url
    out["notify_webhook"] = (
        f"{shown_url(url)} ({'signed' if strategy.notify_webhook_secret else 'unsigned'})"
        if url else "the account's")
    out["telegram"] = (
        f"bot {'set' if strategy.telegram_bot_token else 'of the account'}, chat "
        f"{strategy.telegram_chat_id or 'of the account'}"
        if strategy.telegram_bot_token or strategy.telegram_chat_id else "the account's")
    out["secret"] = (
        f"set (HMAC stored; last set {strategy.secret_rotated_at.isoformat()})"
        if strategy.secret_hash and strategy.secret_rotated_at
        else ("set" if strategy.secret_hash else "NOT SET: alerts are refused until rotate-secret")
    )
    return out
