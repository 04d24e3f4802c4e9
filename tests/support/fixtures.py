"""pytest fixtures for the paper exchange. Use them from a conftest.py:

    from tests.support.fixtures import paper, paper_exchange  # noqa: F401

* `paper_exchange` (session): one simulator for the whole session (run_paper_exchange()).
* `paper` (function): the same simulator, reset (`admin.reset()`) before the test, so each
  test starts with no orders/positions/faults, start prices, full balance, walk frozen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.support.paper import PaperExchange, run_paper_exchange


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def paper_exchange() -> AsyncIterator[PaperExchange]:
    async with run_paper_exchange() as exchange:
        yield exchange


@pytest_asyncio.fixture(loop_scope="session")
async def paper(paper_exchange: PaperExchange) -> PaperExchange:
    await paper_exchange.admin.reset()
    return paper_exchange
