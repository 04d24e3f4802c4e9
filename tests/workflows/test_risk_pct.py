"""Risk-% sizing on real parts (docs/design.md#exits, issue 23 item 4): a risk_pct trade on the
paper exchange fills the quantity a hand computation gives from the paper's equity, the price
the entry is sized at (and fills at), the stop-loss and the taker fee rate; its stop, when hit,
loses no more than that share of the equity, fees included; a size that breaks a pair rule or
a risk limit, or a stop on the wrong side, ends the trade REFUSED with the reason, unsent."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, localcontext

import pytest

from exchange.models import Account
from tests.workflows.harness import Harness
from tests.workflows.test_risk_limits import strategy_with
from trading.types import Intent, TradeStatus
from workflows.contract import Sizing

D = Decimal


def equity_of(account: Account) -> Decimal:
    """What the paper's account is worth: its wallet (free, frozen and position margin) plus
    what its open positions would realize now."""
    return (account.available + account.frozen + account.margin
            + account.cross_unrealized_pnl + account.isolation_unrealized_pnl)


def by_hand(equity: Decimal, risk_pct: Decimal, entry: Decimal, stop: Decimal, fee: Decimal,
            step: Decimal) -> Decimal:
    """The size whose stop loses risk_pct of the equity: each unit loses the move to the stop
    plus the taker fee entering (entry × fee) and at the stop (stop × fee); down to the step."""
    with localcontext() as ctx:
        ctx.prec = 60
        at_risk = equity * risk_pct / 100
        per_unit = abs(entry - stop) + entry * fee + stop * fee
        return (at_risk / per_unit).quantize(step, rounding=ROUND_DOWN)


async def sizing_inputs(h: Harness, symbol: str, intent: Intent) -> tuple[Decimal, Decimal]:
    """(equity, the price a market entry is sized at: the best ask for a buy, the best bid for
    a sell), read from the paper exchange before the trade."""
    account, book = await h.exchange.account(), await h.exchange.depth(symbol, 1)
    price = book.best_ask if intent is Intent.OPEN_LONG else book.best_bid
    assert price is not None
    return equity_of(account), price


# (symbol, its price, side, risk_pct, the stop: an absolute sl, or sl_pct from the entry price)
CASES = [
    pytest.param("BTCUSDT", "95000", Intent.OPEN_LONG, "0.1", {"sl_pct": D(2)}, id="btc-long"),
    pytest.param("ETHUSDT", "3412.55", Intent.OPEN_SHORT, "0.1", {"sl": D("3480")},
                 id="eth-short"),
    # DOGE: a whole-coin step and a minimum of 53 at 0.18 USDT.
    pytest.param("DOGEUSDT", "0.18234", Intent.OPEN_LONG, "0.05", {"sl": D("0.17")},
                 id="doge-long"),
]


@pytest.mark.parametrize(("symbol", "price", "intent", "risk_pct", "stop"), CASES)
async def test_a_risk_pct_trade_fills_the_hand_computed_size(
    harness: Harness, symbol: str, price: str, intent: Intent, risk_pct: str,
    stop: dict[str, Decimal],
) -> None:
    h = harness
    await h.paper.admin.set_price(symbol, price)
    equity, entry = await sizing_inputs(h, symbol, intent)
    step = (await h.exchange.trading_pairs([symbol]))[0].qty_step
    fee = h.settings.taker_fee_rate
    if "sl" in stop:
        sl = stop["sl"]
    else:  # sl_pct: percent from the price the entry is sized at, on the loss side
        sign = -1 if intent is Intent.OPEN_LONG else 1
        sl = entry * (100 + sign * stop["sl_pct"]) / 100
    expected = by_hand(equity, D(risk_pct), entry, sl, fee, step)
    assert expected > 0

    handle = await h.trade(symbol=symbol, intent=intent, sizing=Sizing(risk_pct=D(risk_pct)),
                           **stop)
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING, "tracking")
    assert st.target_qty == expected and st.filled_qty == expected
    fills = await h.fills(st.trade_id)
    assert sum(f.qty for f in fills) == expected
    # The entry filled at the price it was sized at, and paid the fee rate it was sized with.
    assert {f.price for f in fills} == {entry}
    assert sum(f.fee for f in fills) == expected * entry * fee
    side = "LONG" if intent is Intent.OPEN_LONG else "SHORT"
    assert await h.position_qty(symbol, side) == expected


async def test_the_equity_counts_margin_in_use_and_unrealized_pnl(harness: Harness) -> None:
    """With another trade open (its margin taken from what is available) and in profit, a
    risk_pct trade sizes by the equity, not by the free margin."""
    h = harness
    await h.paper.admin.set_price("ETHUSDT", "3400")
    await h.paper.admin.set_price("BTCUSDT", "95000")
    other = await h.trade(symbol="ETHUSDT", sizing=Sizing(size=D(5)))
    await h.until_state(other, lambda s: s.status is TradeStatus.TRACKING, "tracking")
    await h.paper.admin.set_price("ETHUSDT", "3500")  # about +500 USDT unrealized
    account = await h.exchange.account()
    assert account.margin > 0 and account.cross_unrealized_pnl + account.isolation_unrealized_pnl > 0
    equity, entry = await sizing_inputs(h, "BTCUSDT", Intent.OPEN_LONG)
    assert equity != account.available
    sl, fee = D(90000), h.settings.taker_fee_rate
    expected = by_hand(equity, D("0.5"), entry, sl, fee, D("0.0001"))
    assert expected != by_hand(account.available, D("0.5"), entry, sl, fee, D("0.0001"))
    handle = await h.trade(sizing=Sizing(risk_pct=D("0.5")), sl=sl)
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING, "tracking")
    assert st.filled_qty == expected


@pytest.mark.parametrize(("symbol", "price", "intent", "sl"), [
    ("BTCUSDT", "95000", Intent.OPEN_LONG, D(93000)),
    ("ETHUSDT", "3412.55", Intent.OPEN_SHORT, D("3480")),
], ids=["btc-long", "eth-short"])
async def test_the_stop_hit_loses_the_risked_share_of_the_equity(
    harness: Harness, symbol: str, price: str, intent: Intent, sl: Decimal,
) -> None:
    """The stop fires: the account loses what was risked, fees included, give or take the
    paper's half-spread past the stop (its market close fills one tick beyond the trigger),
    and never less than one step's worth of size short of it."""
    h = harness
    risk_pct = D("0.2")
    await h.paper.admin.set_price(symbol, price)
    equity, entry = await sizing_inputs(h, symbol, intent)
    rules = (await h.exchange.trading_pairs([symbol]))[0]
    fee = h.settings.taker_fee_rate
    qty = by_hand(equity, risk_pct, entry, sl, fee, rules.qty_step)
    handle = await h.trade(symbol=symbol, intent=intent, sizing=Sizing(risk_pct=risk_pct), sl=sl)
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                        and s.protection.order_id is not None and s.protection.sl == sl,
                        "tracking with its stop placed")
    await h.paper.admin.set_price(symbol, sl)
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == qty
    lost = equity - equity_of(await h.exchange.account())
    at_risk = equity * risk_pct / 100
    # The close fills at the touch, a tick past the stop: that tick is the paper's, not sizing's.
    assert lost <= at_risk + qty * rules.price_tick * (1 + fee)
    assert lost > at_risk - rules.qty_step * (abs(entry - sl) + fee * (entry + sl))




async def assert_refused_unsent(h: Harness, handle, starts: str) -> str:
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert (result.error or "").startswith(starts), result.error
    row = await h.trade_row(handle)
    assert row.status == "REFUSED" and row.error == result.error
    assert not await h.orders(row.id)
    assert not await h.placed_by(handle)
    return result.error or ""


async def test_a_risk_pct_size_above_max_order_usdt_is_refused_with_the_reason(
    harness: Harness,
) -> None:
    """The strategy's default sizing is risk_pct 1 % of the paper's 100 000 with a stop 1 %
    away: about 89 000 USDT of BTC, above its max_order_usdt of 10 000: refused at the claim."""
    h = harness
    await h.paper.admin.set_price("BTCUSDT", "95000")
    strategy_id, strat = await strategy_with(h, risk_pct=D(1), max_order_usdt=D(10000))
    assert strat.sizing == Sizing(risk_pct=D(1))
    handle = await h.trade(strat=strat, strategy_id=strategy_id, sl_pct=D(1))
    await assert_refused_unsent(
        h, handle, f"risk: max_order_usdt of the strategy {strat.name!r} is 10000: this order is")


async def test_a_risk_pct_size_below_the_pairs_minimum_is_refused_with_what_it_was_sized_from(
    harness: Harness,
) -> None:
    """DOGE's minimum is 53: 0.001 % of the paper's 100 000 (1 USDT) with a stop 10 % away
    buys about 49."""
    h = harness
    await h.paper.admin.set_price("DOGEUSDT", "0.2")
    handle = await h.trade(symbol="DOGEUSDT", sizing=Sizing(risk_pct=D("0.001")), sl=D("0.18"))
    error = await assert_refused_unsent(h, handle, "min_qty: ")
    assert "49.4119 DOGE (rounds down to 49) is below the pair's minimum 53 for an opening" in error
    assert "(risk_pct 0.001 % of the equity" in error and "stop 0.18," in error


@pytest.mark.parametrize(("intent", "sl", "says"), [
    (Intent.OPEN_LONG, D(96000), "the stop-loss 96000 is not below the entry price"),
    (Intent.OPEN_SHORT, D(94000), "the stop-loss 94000 is not above the entry price"),
    (Intent.OPEN_LONG, None, "risk_pct sizing needs a stop-loss: give sl or sl_pct"),
], ids=["long-stop-above", "short-stop-below", "no-stop"])
async def test_a_risk_pct_trade_without_a_usable_stop_is_refused_unsent(
    harness: Harness, intent: Intent, sl: Decimal | None, says: str,
) -> None:
    """The webhook refuses a risk_pct alert without a stop; a trade started otherwise (the
    Temporal UI, a strategy changed in between) is refused by the trade itself."""
    h = harness
    await h.paper.admin.set_price("BTCUSDT", "95000")
    handle = await h.trade(intent=intent, sizing=Sizing(risk_pct=D(1)), sl=sl)
    error = await assert_refused_unsent(h, handle, "risk_pct sizing")
    assert says in error
