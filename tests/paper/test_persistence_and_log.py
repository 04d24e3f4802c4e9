"""State survives a restart through Settings.paper_state_file; the request log for benchmarks."""

from __future__ import annotations

import stat
import time
from pathlib import Path

from paper import persistence
from paper.engine import Engine
from tests.paper.helpers import data, detail, place, positions
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperExchange, paper_settings, run_paper_exchange


async def test_restart_keeps_orders_positions_tpsl_and_prices(tmp_path: Path) -> None:
    state_file = tmp_path / "paper-state.json"
    async with run_paper_exchange(paper_state_file=state_file) as paper:
        client = WireClient(paper.base_url, paper.api_key, paper.api_secret)
        try:
            await paper.admin.set_price("BTCUSDT", "96000")
            data(await client.post("account/change_position_mode", {"positionMode": "HEDGE"}))
            resting = data(
                await place(
                    client,
                    side="BUY",
                    tradeSide="OPEN",
                    orderType="LIMIT",
                    qty="0.01",
                    price="95000",
                    clientId="keep-1",
                )
            )
            data(await place(client, side="SELL", tradeSide="OPEN", qty="0.02"))
            (short,) = await positions(client)
            data(
                await client.post(
                    "tpsl/position/place_order",
                    {"symbol": "BTCUSDT", "positionId": short["positionId"], "slPrice": "99000"},
                )
            )
            before_account = data(await client.get("account", {"marginCoin": "USDT"}))
        finally:
            await client.aclose()
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    async with run_paper_exchange(paper_state_file=state_file) as paper:
        client = WireClient(paper.base_url, paper.api_key, paper.api_secret)
        try:
            assert (await detail(client, resting["orderId"]))["status"] == "NEW"
            assert (await positions(client)) == [short]
            assert len(data(await client.get("tpsl/get_pending_orders", {}))) == 1
            assert data(await client.get("account", {"marginCoin": "USDT"})) == before_account
            dup = await place(client, side="BUY", tradeSide="OPEN", qty="0.01", clientId="keep-1")
            assert dup["code"] == 30042
            # Ids continue, never reused.
            fresh = data(await place(client, side="BUY", tradeSide="OPEN", qty="0.01"))
            assert int(fresh["orderId"]) > int(resting["orderId"])
            await paper.admin.set_price("BTCUSDT", "95000")
            assert (await detail(client, resting["orderId"]))["status"] == "FILLED"
        finally:
            await client.aclose()


def test_codec_round_trip(tmp_path: Path) -> None:
    engine = Engine(paper_settings(), frozen=True)
    from paper import orders

    orders.place_order(
        engine,
        {
            "symbol": "ETHUSDT",
            "side": "SELL",
            "orderType": "MARKET",
            "qty": "0.5",
            "clientId": "codec",
        },
    )
    path = tmp_path / "s.json"
    persistence.save(path, engine.state, {"ETHUSDT": engine.market.price("ETHUSDT")})
    loaded = persistence.load(path)
    assert loaded is not None
    state, prices = loaded
    assert state == engine.state
    assert prices == {"ETHUSDT": engine.market.price("ETHUSDT")}
    assert persistence.load(tmp_path / "missing.json") is None


async def test_request_log_records_receipt_times(paper: PaperExchange, api: WireClient) -> None:
    t0 = time.time_ns()
    data(await place(api, side="BUY", qty="0.001", clientId="log-1"))
    dup = await place(api, side="BUY", qty="0.001", clientId="log-1")
    await api.public("market/tickers")
    t1 = time.time_ns()
    log = await paper.admin.requests(since_ns=t0)
    assert [(e["path"].rsplit("/", 1)[-1], e["client_id"], e["code"]) for e in log] == [
        ("place_order", "log-1", 0),
        ("place_order", "log-1", dup["code"]),
        ("tickers", None, 0),
    ]
    assert all(t0 <= e["t_ns"] <= t1 for e in log)
    assert log[0]["t_ns"] < log[1]["t_ns"] < log[2]["t_ns"]
    assert await paper.admin.requests(since_ns=t1) == []
