"""The fast path: a small worker inside the webhook process, on the webhook's own client.

With it, a start requested eagerly (`request_eager_start=True`) hands the first workflow task
straight back to this process, and the first placement runs as a local activity here: the first
order leaves within milliseconds of the alert (docs/design.md#the-fast-path). The venue reads the
entry decides with start when the intake knows an open's symbol (`AppState.warm_venue`), so they
overlap the recording of the alert and the start of its workflow. It registers only `TradeWorkflow`
and that local activity, takes no remote activity tasks and keeps few slots, so the ack stays fast.
It needs the exchange keys in this process; `fast_path = False` (TRADEWIRE_FAST_PATH=false) keeps
them out, and alerts then start by the default path.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from webhook.deps import AppState

log = logging.getLogger("webhook")


@asynccontextmanager
async def hosted(state: AppState) -> AsyncIterator[None]:
    """Run the fast-path worker for the lifetime of the app, when enabled and possible."""
    if not state.settings.fast_path:
        log.info("fast path off: the worker places every order; this process holds no exchange "
                 "keys (TRADEWIRE_FAST_PATH=true opts in)")
        yield
        return
    client = await state.temporal.try_connect()
    if client is None:
        log.warning(
            "fast path off: Temporal was not reachable at start; alerts use the default path"
        )
        yield
        return
    from activities.venue_reads import VenueReader
    from db.budget_ledger import BudgetLedger
    from wiring import exchange_client, shared_budget
    from worker import Deps, build_worker, startup_round

    # The account's request budget, shared with the worker (docs/design.md#request-budgets).
    ledger = BudgetLedger.connect(state.engine.url.render_as_string(hide_password=False))
    exchange = exchange_client(state.settings, budget=shared_budget(state.settings, ledger))
    reader = VenueReader(exchange)
    deps = Deps(exchange=exchange, sessionmaker=state.sessionmaker, temporal=client,
                venue_reader=reader)
    try:
        # Trades this process starts eagerly wait for the books to be held against the exchange
        # once, as the main worker's do (one try: the webhook must come up to take alerts).
        await startup_round(deps, state.settings, tries=1)
        async with build_worker(client, state.settings, deps, fast_path=True):
            state.warm_venue = reader.warm
            log.info("fast path on: this process hosts TradeWorkflow and its first placement")
            yield
    finally:
        state.warm_venue = None
        await exchange.aclose()
        await ledger.aclose()
