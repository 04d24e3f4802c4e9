"""Placements queued behind the account's request budget (a candle-close burst), for the
activity tests: a client whose budget for one endpoint is booked ahead, and the claim row a
placement writes before it waits its turn."""

from __future__ import annotations

import asyncio
import time

from pydantic import SecretStr
from sqlalchemy import select

from db.models import Order as OrderRow
from exchange.budget import Budget
from exchange.client import BitunixClient


def queued_client(paper, path: str, seconds: int) -> BitunixClient:
    """A client whose budget for `path` (the real one) is booked for about `seconds` by other
    requests of the account: its next request there waits that long for its turn."""
    budget = Budget()
    window = budget.window(path)
    for _ in range(window.capacity * seconds):
        window.reserve(time.monotonic())
    return BitunixClient(paper.base_url, paper.api_key, SecretStr(paper.api_secret), budget=budget)


async def until_claimed(sessionmaker, client_id: str, tries: int = 200) -> OrderRow:
    """The claim's row, once the placement has written it."""
    for _ in range(tries):
        async with sessionmaker() as session:
            found = await session.scalar(
                select(OrderRow).where(OrderRow.client_order_id == client_id))
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{client_id} was never claimed")
