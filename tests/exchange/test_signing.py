from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from exchange.signing import canonical_query, query_items, sign

# The documentation's sample inputs, digest and sign computed from the algorithm
# (docs/bitunix.md#request-signing).
DOC_BODY = '{"uid":"2899","arr":[{"id":1,"name":"maple"},{"id":2,"name":"lily"}]}'
DOC_DIGEST = "75099831ac6803e9c5b79dd3cde2c3c529b4750bd3508186afdde0dd13599b38"
DOC_SIGN = "00397cd1e52c7dce3258067324363b6361fabc9178a0912b330c138db8745655"


def test_worked_example_from_the_reference() -> None:
    params = {"uid": "200", "id": "1"}
    assert canonical_query(params) == "id1uid200"
    digest = hashlib.sha256(
        ("123456" + "20241120123045" + "yourApiKey" + "id1uid200" + DOC_BODY).encode()
    ).hexdigest()
    assert digest == DOC_DIGEST
    assert sign("yourApiKey", "yourSecretKey", "123456", "20241120123045", params, DOC_BODY) == (
        DOC_SIGN
    )


def test_canonical_query_sorts_drops_empty_and_renders_booleans_lowercase() -> None:
    params = {
        "symbol": "BTCUSDT",
        "queryCanceled": True,
        "limit": 100,
        "clientId": None,
        "orderId": "",
        "reduceOnly": False,
    }
    assert canonical_query(params) == "limit100queryCanceledtruereduceOnlyfalsesymbolBTCUSDT"
    assert query_items(params)[0] == ("limit", "100")


def test_canonical_query_never_signs_a_sign_parameter() -> None:
    assert canonical_query({"sign": "abc", "a": "1"}) == "a1"


def test_empty_query_for_a_post() -> None:
    assert canonical_query({}) == ""


def test_sign_is_lowercase_hex_and_depends_on_every_input() -> None:
    base = ("k", "s", "n", "1", {"a": "1"}, "{}")
    reference = sign(*base)
    assert len(reference) == 64 and reference == reference.lower()
    for i, changed in enumerate(("k2", "s2", "n2", "2", {"a": "2"}, '{"x":1}')):
        args = list(base)
        args[i] = changed
        assert sign(*args) != reference


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=6))
def test_canonical_query_ignores_insertion_order(params: dict[str, str]) -> None:
    reordered = dict(reversed(list(params.items())))
    assert canonical_query(reordered) == canonical_query(params)
