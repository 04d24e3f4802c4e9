"""Each paper-exchange fault maps to the error that tells the caller what to do."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from exchange.client import BitunixClient
from exchange.errors import (
    AuthFailed,
    DuplicateClientId,
    NotFoundYet,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Unavailable,
)
from tests.exchange.contract.conftest import SYMBOL, client_for
from tests.support.waiting import eventually
from trading.types import OrderStatus, OrderType, Side, StopType

PLACE_PATH = "/api/v1/futures/trade/place_order"
PENDING_PATH = "/api/v1/futures/trade/get_pending_orders"


async def client_for_lookup(paper, client_id: str):
    async with client_for(paper) as other:
        return await other.order_detail(client_id=client_id)


async def place(client: BitunixClient, client_id: str, price: str = "90000"):
    return await client.place_order(
        symbol=SYMBOL,
        side=Side.BUY,
        qty=Decimal("0.01"),
        order_type=OrderType.LIMIT,
        price=Decimal(price),
        client_id=client_id,
    )


async def place_attempts(paper, since_ns: int) -> list[dict]:
    return [r for r in await paper.admin.requests(since_ns=since_ns) if r["path"] == PLACE_PATH]


async def test_rate_limit_is_rate_limited(paper, client: BitunixClient) -> None:
    await paper.admin.faults(rate_limit=1)
    with pytest.raises(RateLimited) as info:
        await client.account()
    assert info.value.code == 10006 and info.value.retryable
    assert (await client.account()).margin_coin == "USDT"  # only the next one


async def test_http_503_on_a_placement_leaves_the_outcome_unknown(paper, client) -> None:
    since = time.time_ns()
    await paper.admin.faults(http_5xx=1)
    with pytest.raises(OutcomeUnknown) as info:
        await place(client, "ctF503")
    assert info.value.http_status == 503 and info.value.endpoint == "trade/place_order"
    # the client never retried on its own: exactly one attempt reached the exchange
    assert len(await place_attempts(paper, since)) == 1


async def test_http_503_on_a_read_is_unavailable(paper, client: BitunixClient) -> None:
    await paper.admin.faults(http_5xx=1)
    with pytest.raises(Unavailable) as info:
        await client.pending_orders(SYMBOL)
    assert info.value.http_status == 503 and info.value.retryable


async def test_error_rate_500_on_a_placement_is_outcome_unknown(paper, client) -> None:
    await paper.admin.faults(error_rate="1")
    with pytest.raises(OutcomeUnknown) as info:
        await place(client, "ctF500")
    assert info.value.http_status == 500


async def test_network_error_code_10001(paper, client: BitunixClient) -> None:
    await paper.admin.faults(network_error=2)
    with pytest.raises(OutcomeUnknown) as placing:
        await place(client, "ctF10001")
    assert placing.value.code == 10001 and placing.value.http_status is None
    with pytest.raises(Unavailable) as reading:
        await client.pending_orders(SYMBOL)
    assert reading.value.code == 10001


async def test_dropped_answer_http_504_then_lookup_and_duplicate(paper, client) -> None:
    await paper.admin.faults(drop_response={"target": "order", "count": 1, "mode": "http_504"})
    with pytest.raises(OutcomeUnknown) as info:
        await place(client, "ctDrop504")
    assert info.value.http_status == 504
    # The order was executed: the caller finds it by client id, and a blind re-send is refused.
    found = await client.order_detail(client_id="ctDrop504")
    assert found.status is OrderStatus.NEW and found.client_id == "ctDrop504"
    with pytest.raises(DuplicateClientId):
        await place(client, "ctDrop504")


async def test_dropped_tpsl_answer(paper, client: BitunixClient) -> None:
    await paper.admin.set_price(SYMBOL, Decimal("95000"))
    await client.place_order(
        symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.05"), order_type=OrderType.MARKET
    )
    (position,) = await client.pending_positions(SYMBOL)
    await paper.admin.faults(drop_response={"target": "tpsl", "count": 1, "mode": "http_504"})
    with pytest.raises(OutcomeUnknown):
        await client.place_tpsl_order(
            symbol=SYMBOL,
            position_id=position.position_id,
            sl_price=Decimal("90000"),
            sl_stop_type=StopType.MARK_PRICE,
            sl_qty=Decimal("0.02"),
        )
    # TP/SL orders carry no client id: the caller adopts the pending one it finds.
    (adopted,) = await client.pending_tpsl_orders(SYMBOL, position.position_id)
    assert adopted.sl_price == Decimal(90000) and adopted.sl_qty == Decimal("0.02")


async def test_hung_answer_times_out_as_outcome_unknown(paper) -> None:
    await paper.admin.faults(drop_response={"target": "order", "count": 1, "mode": "hang"})
    async with client_for(paper, timeout_s="0.5") as impatient:
        with pytest.raises(OutcomeUnknown) as info:
            await place(impatient, "ctHang1")
    assert "Timeout" in info.value.msg
    assert (await client_for_lookup(paper, "ctHang1")).client_id == "ctHang1"


async def test_latency_beyond_the_timeout_is_outcome_unknown(paper) -> None:
    since = time.time_ns()
    await paper.admin.faults(latency_ms=1500)
    async with client_for(paper, timeout_s="0.3") as impatient:
        with pytest.raises(OutcomeUnknown):
            await place(impatient, "ctSlow1")
        with pytest.raises(Unavailable):
            await impatient.pending_orders(SYMBOL)

    # The exchange went on to process both after the client gave up: that is why a timed-out
    # placement is "outcome unknown" and never "failed".
    async def both_processed() -> bool:
        paths = [r["path"] for r in await paper.admin.requests(since_ns=since)]
        return PLACE_PATH in paths and PENDING_PATH in paths

    await eventually(both_processed, "both requests processed", 15.0, interval_s=0.05)
    await paper.admin.clear_faults()
    assert (await client_for_lookup(paper, "ctSlow1")).client_id == "ctSlow1"


async def test_visibility_delay_is_not_found_yet(paper, client: BitunixClient) -> None:
    await paper.admin.faults(visibility_delay_ms=600_000)
    placed = await place(client, "ctInvisible1")
    with pytest.raises(NotFoundYet) as info:
        await client.order_detail(order_id=placed.order_id)
    assert info.value.code == 20007 and info.value.retryable
    with pytest.raises(NotFoundYet):
        await client.order_detail(client_id="ctInvisible1")


async def test_cancel_fill_race_reports_the_failure(paper, client: BitunixClient) -> None:
    await paper.admin.set_price(SYMBOL, Decimal("95000"))
    placed = await place(client, "ctRace1", price="94000")
    await paper.admin.faults(cancel_fill_race=True)
    result = await client.cancel_orders(SYMBOL, order_ids=[placed.order_id])
    assert result.succeeded == ()
    (failure,) = result.failed
    assert failure.order_id == placed.order_id and isinstance(failure.error, Rejected)
    assert failure.error.code is not None and failure.error.endpoint == "cancel_orders"
    assert (await client.order_detail(order_id=placed.order_id)).status is OrderStatus.FILLED


async def test_wrong_secret_is_auth_failed(paper) -> None:
    async with client_for(paper, secret="not-the-secret") as wrong:
        with pytest.raises(AuthFailed) as info:
            await wrong.account()
    assert info.value.code == 10007 and not info.value.retryable
    assert "not-the-secret" not in str(info.value) and "not-the-secret" not in repr(info.value)


async def test_unknown_key_is_auth_failed(paper) -> None:
    async with client_for(paper, key="someone-elses-key") as wrong:
        with pytest.raises(AuthFailed):
            await wrong.pending_positions()


async def test_connection_refused_is_unavailable(closed_port_url: str, paper) -> None:
    from pydantic import SecretStr

    async with BitunixClient(closed_port_url, "k", SecretStr("s"), timeout_s=2) as nowhere:
        with pytest.raises(Unavailable) as info:
            await nowhere.place_order(
                symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.01"), order_type=OrderType.MARKET
            )
    assert "not sent" in info.value.msg


async def test_budget_keeps_a_burst_under_the_exchange_limit(paper, client) -> None:
    """25 concurrent reads on one endpoint: the client's budget spaces them, so the paper
    exchange (which enforces BitUnix's 10/s) never answers 10006."""
    results = await asyncio.gather(
        *(client.pending_orders(SYMBOL) for _ in range(25)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, Exception)] == []
