"""One trade state: `TradeMemory` is carried whole across continue-as-new (every field, whatever
is added later), an earlier version's carry still resumes, and workflow code starts its
activities in one place."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from activities.contract import ProtectionClaim, ProtectionLevel
from activities.contract_tracking import ExternalCloseRequest
from trading.exits import ExitPlan, TakeProfit, Trailing
from trading.types import Leg, PositionMode, PositionSide, TradeStatus, TradingState
from workflows.contract import StrategySnapshot, TradeInput
from workflows.ledger import TradeLedger
from workflows.messages import CancelRequest, CloseRequest
from workflows.state import Exits, Inbox, Protection, TradeMemory, TradeState, Venue

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def _memory() -> TradeMemory:
    claim = ProtectionClaim(client_id="TWP6", position_id="p1", level=ProtectionLevel.ORDER,
                            qty=Decimal("0.001"), tp=Decimal("70000.5"))
    estimate = ExternalCloseRequest(
        trade_id=7, client_id="TWT7", leg=Leg.TRIGGERED, symbol="BTCUSDT",
        side=PositionSide.LONG, position_mode=PositionMode.ONE_WAY, position_id="p1",
        qty=Decimal("0.001"), since_ms=1_765_000_000_000, protection_order_id="19",
        sl=Decimal("60000"), refine=True,
    )
    ledger = TradeLedger(trade_id=7, workflow_id="trade-s-7", symbol="BTCUSDT",
                         side=PositionSide.LONG, seq=5, position_id="p1", unsettled=[claim],
                         estimates={"TWT7": estimate})
    ledger.next_client_id(Leg.ENTRY)
    return TradeMemory(
        inbox=Inbox(cancel=CancelRequest(flatten=True), close=CloseRequest(reason="exit alert"),
                    flatten="protection refused", exchange_changed=True,
                    predecessors_ended={"trade-s-5": TradeStatus.CLOSED},
                    predecessor_closed=True, predecessor_status=TradeStatus.CLOSED,
                    notify=["trade-s-6"],
                    partials=[CloseRequest(reason="part", pct=Decimal("50")),
                              CloseRequest(reason="base", qty=Decimal("0.001"))]),
        ledger=ledger,
        protection=Protection(tp=Decimal("70000.5"), sl=Decimal("60000"), override=True,
                              disabled=True),
        venue=Venue(mode=PositionMode.HEDGE, mark=Decimal("65000.1"),
                    position_qty=Decimal("0.002"), available=Decimal("1234.5"),
                    taker_fee_rate=Decimal("0.0005")),
        exits=Exits(plan=ExitPlan(tps=(TakeProfit(pct=Decimal(1), qty_pct=Decimal(50)),
                                       TakeProfit(pct=Decimal(2))),
                                  trail=Trailing(pct=Decimal("1"))),
                    trail_active=True, trail_best=Decimal("66000"), trail_wanted=Decimal("65340"),
                    trail_stop=Decimal("65300"),
                    trail_moved_at=datetime(2026, 12, 6, 12, 0, 20, tzinfo=UTC),
                    level_orders=[["TWL2"], []], levels_done=[True, False]),
        state=TradeState(trade_id=7, symbol="BTCUSDT", side=PositionSide.LONG,
                         status=TradeStatus.TRACKING, phase="tracking",
                         warnings=["a warning"], trading_state=TradingState.HALTED,
                         trading_state_scope="strategy:s", trading_state_reason="alice: why"),
        placed_any=True,
        final_status=TradeStatus.CANCELLED,
        exit_retry_at=datetime(2026, 12, 6, 12, 0, 30, tzinfo=UTC),
        tpsl_unknown_since=datetime(2026, 12, 6, 12, 0, 10, tzinfo=UTC),
        runs=3,
    )


def _input(carry: object) -> TradeInput:
    return TradeInput.model_validate({
        "trade_id": 7, "strategy": StrategySnapshot(name="s").model_dump(mode="json"),
        "symbol": "BTCUSDT", "intent": "OPEN_LONG",
        "received_at": datetime(2026, 12, 6, tzinfo=UTC).isoformat(), "carry": carry,
    })


def test_the_whole_memory_survives_continue_as_new() -> None:
    memory = _memory()
    carried = _input(memory.next_run().model_dump(mode="json")).carry
    assert carried is not None
    # Every field of every part, compared whole: a field added later is carried too.
    assert carried.model_dump() == {**memory.model_dump(), "runs": memory.runs + 1}


def test_every_field_of_the_memory_has_a_non_default_value_in_the_round_trip_test() -> None:
    """The round trip above proves nothing for a field left at its default: keep it complete."""
    memory, defaults = _memory(), TradeMemory(
        ledger=TradeLedger(trade_id=1, workflow_id="w", symbol="X", side=PositionSide.LONG),
        state=TradeState(trade_id=1, symbol="X", side=PositionSide.LONG),
    )
    for part in ("inbox", "protection", "venue", "exits"):
        for name in type(getattr(memory, part)).model_fields:
            assert getattr(getattr(memory, part), name) != getattr(getattr(defaults, part), name), (
                f"{part}.{name} keeps its default in _memory()")
    for name in ("trading_state", "trading_state_scope", "trading_state_reason"):
        assert getattr(memory.state, name) != getattr(defaults.state, name), f"state.{name}"
    for name in ("placed_any", "final_status", "exit_retry_at", "tpsl_unknown_since", "runs"):
        assert getattr(memory, name) != getattr(defaults, name), name


def test_an_earlier_versions_carry_resumes_with_what_it_knew() -> None:
    """`TradeCarry` (before one trade state): a trade that continued as new across the upgrade."""
    memory = _memory()
    old = {
        "ledger": memory.ledger.model_dump(mode="json"),
        "state": {**memory.state.model_dump(mode="json"), "position_mode": "HEDGE",
                  "mark_price": "65000.1"},
        "tp": "70000.5", "sl": "60000", "notify": ["trade-s-6"],
        "protection_override": True, "protection_disabled": False, "runs": 4,
    }
    carried = _input(old).carry
    assert carried is not None
    assert carried.ledger == memory.ledger
    assert carried.protection == Protection(tp=Decimal("70000.5"), sl=Decimal("60000"),
                                            override=True, disabled=False)
    assert carried.inbox == Inbox(notify=["trade-s-6"])
    assert carried.venue == Venue(mode=PositionMode.HEDGE, mark=Decimal("65000.1"))
    assert carried.placed_any is True and carried.runs == 4
    assert carried.final_status is TradeStatus.CLOSED


def _starts_an_activity(tree: ast.AST) -> list[int]:
    names = {"execute_activity", "execute_activity_method", "execute_local_activity",
             "execute_local_activity_method", "start_activity", "start_activity_method",
             "start_local_activity", "start_local_activity_method"}
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in names]


def test_the_trade_starts_activities_only_in_workflows_calls() -> None:
    """TradeWorkflow's activity calls, with their timeouts and retries, have one home. (The
    account watcher and the pair sync are workflows of their own, each with its one call, in
    workflows/watcher.py and workflows/pairs_sync.py.)"""
    found = {
        path.name: lines
        for path in sorted(WORKFLOWS.glob("*.py"))
        if path.name not in ("calls.py", "watcher.py", "pairs_sync.py")
        and (lines := _starts_an_activity(ast.parse(path.read_text())))
    }
    assert found == {}
    assert _starts_an_activity(ast.parse((WORKFLOWS / "calls.py").read_text()))
