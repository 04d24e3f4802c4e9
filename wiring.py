"""How a process builds its parts from `Settings`. The exchange client takes plain arguments and
knows nothing of the settings: this is the one place where the two meet, for the worker, the
webhook's fast path and health check, the CLI and `tradewire up`."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    """The client for `settings.exchange`: the paper exchange or BitUnix, same code path."""
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
        clock=ClockWatch(settings.clock_skew_warn_ms, settings.clock_skew_max_ms),
    )
