"""How a process builds its parts from `Settings`. The exchange client takes plain arguments and
knows nothing of the settings: this is the one place where the two meet, for the worker, the
webhook's fast path and health check, the CLI and `tradewire up`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

import metrics
from exchange.client import BitunixClient
from exchange.clock import ClockWatch

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from activities.notify_sender import Receivers, Sender
    from db.budget_ledger import BudgetLedger
    from exchange.budget import RequestBudget
    from exchange.shared_budget import SharedBudget
    from settings import Settings


def exchange_client(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    budget: RequestBudget | None = None,
) -> BitunixClient:
    """The client for `settings.exchange`: the paper exchange or BitUnix, same code path.
    Needs the exchange keys (raises saying which are missing)."""
    api_key, api_secret = settings.exchange_credentials()
    return BitunixClient(
        settings.exchange_url,
        api_key,
        api_secret,
        timeout_s=settings.exchange_timeout_s,
        budget_share=settings.exchange_budget_share,
        budget_scale=settings.exchange_budget_scale,
        transport=transport,
        budget=budget,
        observer=metrics.exchange_request,
        clock=ClockWatch(settings.clock_skew_warn_ms, settings.clock_skew_max_ms),
    )


def shared_budget(settings: Settings, ledger: BudgetLedger) -> SharedBudget:
    """The account's request budget, leased from `ledger` (the database every process of the
    install shares), falling back to this process's share when the database does not answer
    (docs/design.md#request-budgets). Close the ledger when the process stops."""
    from exchange.budget import Budget
    from exchange.shared_budget import SharedBudget

    return SharedBudget(ledger, fallback=Budget(share=settings.exchange_budget_share,
                                                scale=settings.exchange_budget_scale))


def public_exchange_client(settings: Settings) -> BitunixClient:
    """A client for the exchange's public reads only (tickers, depth): it holds no keys, for a
    process that must not (the webhook off the fast path probes the exchange with it)."""
    return BitunixClient(
        settings.exchange_url,
        "",
        SecretStr(""),
        timeout_s=settings.exchange_timeout_s,
        budget_share=settings.exchange_budget_share,
        budget_scale=settings.exchange_budget_scale,
        observer=metrics.exchange_request,
        clock=ClockWatch(settings.clock_skew_warn_ms, settings.clock_skew_max_ms),
    )


def notify_receivers(settings: Settings) -> Receivers:
    """The account's notification receivers (TRADEWIRE_NOTIFY_*, TRADEWIRE_TELEGRAM_*)."""
    from activities.notify_sender import Receivers

    return Receivers.of(
        webhook_url=settings.notify_webhook_url,
        webhook_secret=settings.notify_webhook_secret,
        telegram_token=settings.telegram_bot_token,
        telegram_chat_id=settings.telegram_chat_id,
        telegram_api_url=settings.telegram_api_url,
    )


def notify_sender(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> Sender:
    """The worker's sender of the notification outbox (docs/design.md#notifications)."""
    from activities.notify_sender import Sender

    return Sender(sessionmaker, notify_receivers(settings), queue_max=settings.notify_queue_max,
                  max_attempts=settings.notify_max_attempts,
                  timeout_s=float(settings.notify_timeout_s),  # float-ok: seconds
                  day_timezone=settings.risk_day_timezone)
