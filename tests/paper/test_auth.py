"""Signature, key and timestamp checks (docs/bitunix.md#request-signing), over real HTTP."""

from __future__ import annotations

import json
import time

from paper import auth, errors
from tests.paper.helpers import data
from tests.paper.wire_client import PREFIX, WireClient


def test_reference_worked_example() -> None:
    # The documentation's sample inputs (docs/bitunix.md#request-signing) and the values
    # computed from the algorithm.
    body = '{"uid":"2899","arr":[{"id":1,"name":"maple"},{"id":2,"name":"lily"}]}'
    assert auth.sign(
        "123456", "20241120123045", "yourApiKey", "id1uid200", body, "yourSecretKey"
    ) == ("00397cd1e52c7dce3258067324363b6361fabc9178a0912b330c138db8745655")


def test_canonical_query_sorts_and_drops_empty_values() -> None:
    assert auth.canonical_query("uid=200&id=1") == "id1uid200"
    assert auth.canonical_query("b=&a=x%20y&sign=zz") == "ax y"


async def test_compact_and_spaced_bodies_both_verify(api: WireClient) -> None:
    body = {"positionMode": "ONE_WAY"}
    compact = await api.post("account/change_position_mode", body)
    spaced = await api.post("account/change_position_mode", body, spaced=True)
    assert data(compact) == data(spaced) == [{"positionMode": "ONE_WAY"}]


async def test_body_must_be_the_signed_string(api: WireClient) -> None:
    signed = json.dumps({"positionMode": "ONE_WAY"})  # with spaces
    sent = json.dumps({"positionMode": "ONE_WAY"}, separators=(",", ":"))
    response = await api.http.post(
        PREFIX + "account/change_position_mode", content=sent, headers=api.headers("", signed)
    )
    assert response.json()["code"] == errors.SIGNATURE_ERROR


async def test_get_with_query_params_verifies_in_any_url_order(api: WireClient) -> None:
    params = {"symbol": "BTCUSDT", "marginCoin": "USDT"}
    query = "marginCoin" + "USDT" + "symbol" + "BTCUSDT"
    response = await api.http.get(
        PREFIX + "account/get_leverage_margin_mode?symbol=BTCUSDT&marginCoin=USDT",
        headers=api.headers(query, ""),
    )
    assert data(response.json())["symbol"] == params["symbol"]


async def test_mis_signed_is_10007(api: WireClient) -> None:
    answer = await api.get("account", {"marginCoin": "USDT"}, sign="0" * 64)
    assert answer["code"] == errors.SIGNATURE_ERROR == 10007
    wrong_secret = await api.get("account", {"marginCoin": "USDT"}, secret="not-the-secret")
    assert wrong_secret["code"] == 10007


async def test_stale_timestamp_is_the_named_code(api: WireClient) -> None:
    stale = time.time_ns() // 1_000_000 - auth.TIMESTAMP_WINDOW_MS - 5_000
    answer = await api.get("account", {"marginCoin": "USDT"}, timestamp=stale)
    assert answer["code"] == errors.STALE_TIMESTAMP_CODE
    future = time.time_ns() // 1_000_000 + auth.TIMESTAMP_WINDOW_MS + 5_000
    assert (await api.get("account", {"marginCoin": "USDT"}, timestamp=future))["code"] == (
        errors.STALE_TIMESTAMP_CODE
    )


async def test_missing_and_unknown_key_are_10003(api: WireClient) -> None:
    assert (await api.get("account", {"marginCoin": "USDT"}, key=""))["code"] == 10003
    unknown = await api.get("account", {"marginCoin": "USDT"}, key="someone-else")
    assert unknown["code"] == errors.UNKNOWN_KEY_CODE == 10003


async def test_public_endpoints_need_no_signature(api: WireClient) -> None:
    answer = await api.public("market/tickers", {"symbols": "BTCUSDT"})
    assert data(answer)[0]["symbol"] == "BTCUSDT"
