"""Alerts that would put money at risk once accepted are refused at intake, answered 422 and
recorded as refused (review findings 5 and 16):

- a TP/SL percentage that puts the price at or below zero for the trade's side (a short's
  `tp_pct` ≥ 100, a long's `sl_pct` ≥ 100);
- a TradingView reversal without `prev_market_position`: its `size` is old-plus-new contracts,
  which an open would trade whole (doubling the exposure in hedge mode)."""

from __future__ import annotations

from trading.types import SignalOutcome

from .conftest import Webhook


async def _refused(webhook: Webhook, response, text: str):
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["outcome"] == "REFUSED" and text in body["reason"], body["reason"]
    row = await webhook.signal(body["signal_id"])
    assert row.outcome == SignalOutcome.REFUSED and text in (row.reason or "")
    assert row.workflow_id is None
    return row


async def test_a_short_whose_tp_pct_reaches_zero_is_refused(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    short = webhook.alert(
        strat, action="sell", market_position="short", prev_market_position="flat",
        tp_pct="150", sl_pct="2",
    )
    row = await _refused(webhook, await webhook.post(short), "field 'tp_pct'")
    assert "below 100" in row.reason
    assert await webhook.trades_of(strat) == []


async def test_a_long_whose_sl_pct_reaches_zero_is_refused(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    await _refused(webhook, await webhook.post(webhook.alert(strat, sl_pct="100")),
                   "field 'sl_pct'")


async def test_percentages_away_from_zero_are_accepted_for_either_side(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    long = webhook.alert(strat, tp_pct="150", sl_pct="2")  # a long's TP 150 % above: fine
    assert (await webhook.post(long)).status_code == 202
    short = webhook.alert(strat, action="sell", market_position="short",
                          prev_market_position="flat", tp_pct="2", sl_pct="150")
    assert (await webhook.post(short)).status_code == 202


async def test_a_reversal_without_prev_market_position_is_refused(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    # TradingView's short → long reversal: 0.03 contracts bought, 0.01 long held after it.
    reversal = webhook.alert(strat, prev_market_position=None, size="0.03",
                             market_position_size="0.01")
    row = await _refused(webhook, await webhook.post(reversal),
                         "missing field 'prev_market_position'")
    assert "reverses" in row.reason
    # Without market_position_size the same alert cannot be told from an open.
    unclear = webhook.alert(strat, prev_market_position=None, size="0.03")
    await _refused(webhook, await webhook.post(unclear), "missing field 'prev_market_position'")
    assert await webhook.trades_of(strat) == []


async def test_an_open_without_prev_market_position_is_still_an_open(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    fresh = webhook.alert(strat, prev_market_position=None, size="0.01",
                          market_position_size="0.01")
    adding = webhook.alert(strat, prev_market_position=None, size="0.01",
                           market_position_size="0.02")
    own_size = webhook.alert(strat, prev_market_position=None, size=None, size_usdt="100")
    plain = webhook.alert(strat, market_position=None, prev_market_position=None)
    for body in (fresh, adding, own_size, plain):
        r = await webhook.post(body)
        assert r.status_code == 202, r.text
        assert r.json()["intent"] == "OPEN_LONG"
