"""Readable one-glance texts for the Temporal UI: the static summary given at start and the
current details the workflow keeps up to date."""

from __future__ import annotations

from decimal import Decimal

from trading.errors import show
from trading.risk import ACCOUNT, scope_label
from trading.types import TradingState
from workflows.contract import TradeInput
from workflows.state import TradeState


def _n(value: Decimal | None) -> str:
    return "-" if value is None else show(value)


def static_summary(inp: TradeInput) -> str:
    """For `start_workflow(static_summary=...)`: what the alert asked for."""
    entry = inp.entry_type.value if inp.entry_type else inp.strategy.entry_type.value
    return f"{inp.strategy.name}: {inp.intent.value} {inp.symbol} ({entry})"


# What a trading state means for a trade that holds it (docs/design.md#risk).
_EFFECT = {
    TradingState.REDUCE_ONLY: "nothing new opens; exits, closes and TP/SL go through",
    TradingState.HALTED: "exits refused, nothing new opens; TP/SL stay",
}


def risk_line(state: TradeState) -> str | None:
    """The trading state that affects the trade, e.g. `risk: account HALTED (cli:alice: end of
    day) — exits refused, nothing new opens; TP/SL stay`; None while it is ACTIVE."""
    ts = state.trading_state
    if ts is TradingState.ACTIVE:
        return None
    why = f" ({state.trading_state_reason})" if state.trading_state_reason else ""
    return (f"risk: {scope_label(state.trading_state_scope or ACCOUNT)} {ts.value}{why}"
            f" — {_EFFECT[ts]}")


def details(state: TradeState, strategy: str) -> str:
    """For `workflow.set_current_details`: status, trading state, quantities, PnL, protection,
    warnings."""
    p = state.protection
    lines = [
        f"**{state.status.value}** · {state.symbol} {state.side.value} · {strategy} · {state.phase}"
    ]
    risk = risk_line(state)
    if risk is not None:
        lines.append(risk)
    lines += [
        f"filled {_n(state.filled_qty)}/{_n(state.target_qty)} @ {_n(state.avg_entry_price)}"
        f" · closed {_n(state.closed_qty)} @ {_n(state.avg_exit_price)}"
        f" · PnL {_n(state.realized_pnl)} · fees {_n(state.fees)}",
        f"TP {_n(p.tp)} · SL {_n(p.sl)} · protection {p.level} {_n(p.qty)}",
    ]
    if state.open_orders:
        lines.append("open orders: " + ", ".join(
            f"{o.leg} {o.side} {show(o.qty)}" + (f"@{show(o.price)}" if o.price else "")
            for o in state.open_orders
        ))
    lines += [f"⚠ {w}" for w in state.warnings]
    if state.error:
        lines.append(f"error: {state.error}")
    return "\n".join(lines)
