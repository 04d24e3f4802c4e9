"""The chaos tests' one long-lived stack (tests/chaos/stack.py), started once per session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.chaos.stack import ChaosStack, chaos_stack


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(pg_server, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChaosStack]:
    async with chaos_stack(pg_server, tmp_path_factory.mktemp("chaos")) as running:
        yield running
