"""Names that cross a boundary are declared once: the workflow's messages (workflows/messages.py)
and the strategy's parameters (workflows.contract.StrategySnapshot). These tests fail when a
second list drifts from the first."""

from __future__ import annotations

import argparse
from decimal import Decimal

from temporalio.workflow import _Definition

from cli import build_parser
from db.models import Strategy
from webhook.strategies import PARAMETERS, TRADE_PARAMETERS
from workflows.contract import SIZINGS, StrategySnapshot
from workflows.messages import TradeMessages
from workflows.trade import TradeWorkflow


def test_the_trade_workflow_registers_exactly_the_declared_message_names() -> None:
    defn = _Definition.from_class(TradeWorkflow)
    assert defn is not None and defn.name == TradeMessages.WORKFLOW
    assert set(defn.signals) == {TradeMessages.CANCEL, TradeMessages.CLOSE,
                                 TradeMessages.EXCHANGE_CHANGED, TradeMessages.PREDECESSOR_CLOSED,
                                 TradeMessages.TRADING_STATE}
    assert set(defn.updates) == {TradeMessages.SET_PROTECTION, TradeMessages.SET_EXITS}
    assert set(defn.queries) == {TradeMessages.STATE, TradeMessages.EXITS}


def test_every_parameter_a_trade_keeps_is_a_strategy_column() -> None:
    columns = set(Strategy.__table__.columns.keys())
    assert set(PARAMETERS) <= columns
    assert set(TRADE_PARAMETERS) | set(SIZINGS) <= columns
    assert set(TRADE_PARAMETERS) <= set(StrategySnapshot.model_fields)


def test_a_strategy_row_becomes_the_snapshot_with_every_parameter() -> None:
    row = Strategy(
        id=3, name="s", size=None, size_usdt=None, size_pct="2.5", entry_type="chase",
        leverage=7, margin_mode="ISOLATION", chase_interval_s="0.5", max_chases=4,
        max_slippage_bps="12", chase_fallback="give_up", exit_entry_type="limit",
        max_alert_age_s=30, dedupe_window_s=90, notional_floor="6", allow_split=True,
        on_protection_refused="warn", tracking_interval_s=120, stop_type="LAST_PRICE",
        max_leverage=9, exits={"tps": [{"pct": "1", "qty_pct": "50"}, {"pct": "2"}]},
    )
    snap = StrategySnapshot.model_validate(row, from_attributes=True)
    defaults = StrategySnapshot(name="default")
    for name in TRADE_PARAMETERS:  # every parameter read from the row, none left at its default
        assert getattr(snap, name) != getattr(defaults, name), name
    assert snap.sizing.size_pct == Decimal("2.5")
    assert snap.sizing.size is None and snap.sizing.size_usdt is None


def _option_dests(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    strategy = sub.choices["strategy"]
    inner = next(a for a in strategy._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest for a in inner.choices[command]._actions if a.option_strings}


def test_strategy_add_and_set_take_every_parameter() -> None:
    for command in ("add", "set"):
        assert set(PARAMETERS) <= _option_dests(command), command


def _server_default(column_name: str) -> str | None:
    default = Strategy.__table__.columns[column_name].server_default
    return None if default is None else str(default.arg.text).strip("'")


def test_a_new_strategy_row_and_the_snapshot_have_the_same_defaults() -> None:
    snap = StrategySnapshot(name="defaults")
    for name in TRADE_PARAMETERS:
        value = getattr(snap, name)
        expected = None if value is None else str(value).lower() if isinstance(value, bool) \
            else str(value)
        assert _server_default(name) == expected, name
    assert _server_default("size_usdt") == str(snap.sizing.size_usdt)
