"""The randomized fault test (issue 19, deliverable 5): generated runs of alerts and faults
against one real stack; after each, the books balance or an incident names the difference, no
order is doubled and no trade is stuck (tests/chaos/checks.py).

The default is a handful of fixed seeds. The long version (README, "When something goes wrong"):

    TRADEWIRE_FAULT_RUNS=1000 TRADEWIRE_FAULT_SEED=1 TRADEWIRE_FAULT_LOG=/tmp/chaos.jsonl \\
        .venv/bin/python -m pytest tests/chaos -m slow -s

runs seeds SEED .. SEED+RUNS-1, writes one JSON line per run to the log (so a long run can be
read while it goes) and prints the tally at the end.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from tests.chaos.runner import Runner, Tally
from tests.chaos.scenario import generate
from tests.chaos.stack import ChaosStack, env_int
from trading.types import OrderType, Side

pytestmark = pytest.mark.slow
# Fixed seeds of the short version: together they inject every kind of fault and send every
# kind of alert and delivery (tests/chaos/test_scenario.py checks that).
SHORT_SEEDS = (61, 100, 543, 670)


def seeds() -> list[int]:
    runs = env_int("TRADEWIRE_FAULT_RUNS", 0)
    if not runs:
        return list(SHORT_SEEDS)
    first = env_int("TRADEWIRE_FAULT_SEED", 1)
    return list(range(first, first + runs))


def _append(path: Path, line: str) -> None:
    with path.open("a") as log:
        log.write(line + "\n")


async def test_random_faults_leave_the_books_balanced(stack: ChaosStack, tmp_path: Path) -> None:
    log_path = Path(os.environ.get("TRADEWIRE_FAULT_LOG") or tmp_path / "chaos.jsonl")
    runner = Runner(stack)
    tally = Tally()
    failures = []
    for seed in seeds():
        run = generate(seed)
        outcome = await runner.run(run)
        tally.add(outcome)
        _append(log_path, json.dumps(outcome.as_json()))
        if not outcome.ok:
            failures.append(f"{run.describe()}\n{json.dumps(outcome.as_json(), indent=1)}")
    print("\n".join(["", *tally.lines()]))
    assert not failures, "\n\n".join([*tally.lines(), *failures])


async def test_the_checks_see_a_position_and_an_order_no_trade_owns(stack: ChaosStack) -> None:
    """The checks are not vacuous: a market order placed behind Tradewire's back, under a
    Tradewire-looking client id, is a difference an incident then names, and an order no
    trade sent."""
    runner = Runner(stack)
    await stack.restore()
    await stack.paper.admin.set_price("BTCUSDT", "95000")
    since_ms = time.time_ns() // 1_000_000 - 1000
    await stack.exchange.place_order(symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.001"),
                                     order_type=OrderType.MARKET,
                                     client_id=f"TW{uuid.uuid4().hex[:20].upper()}E0")
    try:
        found = await runner._differences()
        assert list(found) == ["unowned_quantity:BTCUSDT:LONG"], found
        assert await runner._unnamed(found) == {}
        doubled = await runner._doubled("no-such-strategy", since_ms)
        assert len(doubled) == 1 and "has no order row" in doubled[0], doubled
    finally:
        await runner._force_clean()
    assert await runner._differences() == {}
