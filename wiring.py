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

    from exchange.budget import Budget
    from settings import Settings


def exchange_client(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    budget: Budget | None = None,
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
