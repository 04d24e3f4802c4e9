"""Readable one-glance texts for the Temporal UI: the static summary given at start and the
current details the workflow keeps up to date."""

from __future__ import annotations

from decimal import Decimal

from trading.errors import show
from trading.risk import ACCOUNT, scope_label
from trading.types import TradingState
from workflows.contract import TradeInput
from workflows.state import ExitsView, TradeState


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


def exit_lines(exits: ExitsView) -> list[str]:
    """The exit plan as it stands (docs/design.md#exits), for the Temporal UI and `tradewire
    trades show --exits`: the current stop and trail on one line, then one line per level, e.g.

        exits: stop 95057.1 · trail 1.5% active, best 97000 → stop 95545
        TP1 96000 × 0.005 · filled 0.005 · filled
        TP2 - × 0.005 · filled 0 · waiting
    """
    head = [f"stop {_n(exits.stop)}"]
    t = exits.trail
    if t is not None:
        head.append(f"trail {show(t.pct)}% " + (
            f"active, best {_n(t.best_price)} → stop {_n(t.stop)}" if t.active
            else "waiting for its activation"))
    lines = ["exits: " + " · ".join(head)]
    lines += [f"TP{n} {_n(lv.price)} × {_n(lv.qty)} · filled {_n(lv.filled_qty)} · {lv.status}"
              for n, lv in enumerate(exits.levels, start=1)]
    return lines


def details(state: TradeState, strategy: str) -> str:
    """For `workflow.set_current_details`: status, trading state, quantities, PnL, protection,
    the exit plan, warnings."""
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
    if state.exits is not None:
        lines += exit_lines(state.exits)
    if state.open_orders:
        lines.append("open orders: " + ", ".join(
            f"{o.leg} {o.side} {show(o.qty)}" + (f"@{show(o.price)}" if o.price else "")
            for o in state.open_orders
        ))
    lines += [f"⚠ {w}" for w in state.warnings]
    if state.error:
        lines.append(f"error: {state.error}")
    return "\n".join(lines)
