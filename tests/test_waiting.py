"""The tests' polling helper (tests/support/waiting.py) waits, returns, and fails as it says."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.waiting import NotYet, eventually


async def test_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, "", "ready"])

    async def probe() -> str | int | None:
        return next(answers)

    assert await eventually(probe, "ready", 5, interval_s=0.001) == "ready"


async def test_times_out_naming_the_condition_and_the_last_value() -> None:
    async def probe() -> int:
        return 0

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NotYet, match=r"timed out after 0.05 s waiting for the light \(last: 0\)"):
        await eventually(probe, "the light", 0.05, interval_s=0.01, detail=lambda: "context")
    assert loop.time() - started >= 0.05


async def test_listed_exceptions_mean_not_yet_and_others_propagate() -> None:
    calls = 0

    async def booting() -> bool:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("refused")
        return True

    assert await eventually(booting, "up", 5, interval_s=0.001, not_yet=(ConnectionError,))

    async def broken() -> bool:
        raise ValueError("a bug, not a wait")

    with pytest.raises(ValueError, match="a bug"):
        await eventually(broken, "never", 5, interval_s=0.001, not_yet=(ConnectionError,))


async def test_give_up_fails_at_once_with_the_detail() -> None:
    async def probe() -> None:
        return None

    with pytest.raises(NotYet, match=r"(?s)gave up waiting for PostgreSQL: up exited \(1\)\nlog"):
        await eventually(probe, "PostgreSQL", 60, give_up=lambda: "up exited (1)", detail=lambda: "log")
