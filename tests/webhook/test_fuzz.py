"""Property-based fuzzing of POST /webhook/tradingview from its OpenAPI schema: bodies drawn
from the published request schema, then mutated (dropped, retyped and unknown fields, raw
bytes), sent over real HTTP. Never a 5xx; a refused body is recorded and starts nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.schemas import FIELDS

from .conftest import Live, Strat

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=20),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=6, min_value=-(10**9), max_value=10**9
    ),
)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A hypothesis strategy for the JSON Schema subset pydantic publishes for the alert."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in schema:
        return st.one_of([from_schema(s, defs) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(10**9)))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 10**9))
        if kind == "integer":
            return st.integers(int(low), int(high)).map(Decimal)
        return st.decimals(
            min_value=Decimal(str(low)),
            max_value=Decimal(str(high)),
            allow_nan=False,
            allow_infinity=False,
            places=8,
        )
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) < 80)
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 30), 30)
        )
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs) for k, v in props.items() if k in required},
            optional={k: from_schema(v, defs) for k, v in props.items() if k not in required},
        )
    return ANY_JSON


def dumps(value: Any) -> str:
    """JSON with Decimals as bare numbers (TradingView's rendering), never through float."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


EXIT_FIELDS = ("tps", "sl_after_tp", "trail_pct", "trail_activation_pct",
               "trail_activation_price", "trail_price", "risk_pct", "close_pct")


@st.composite
def alert_bodies(draw: st.DrawFn, schema: st.SearchStrategy[dict], strat: Strat) -> bytes:
    # A body drawn from the schema alone is almost always refused (one bad field of twenty is
    # enough), and whether a run of 300 reaches the accept path at all then depends on the seed
    # (CI derandomizes it). An eighth of the bodies start from a well-formed open instead, so
    # the mutations below run against the accept path on every seed.
    if draw(st.integers(0, 7)):
        body = draw(schema)
    else:
        body = {"action": draw(st.sampled_from(["buy", "sell"])), "ticker": "BTCUSDT"}
    if draw(st.integers(0, 3)):  # mostly authenticated, to reach validation and routing
        body |= {"secret": strat.secret, "strategy": strat.name}
    if draw(st.booleans()):
        body["ticker"] = draw(
            st.sampled_from(["BTCUSDT", "BITUNIX:ETHUSDT.P", "ESPUSDT.P", "btcusdt"])
        )
    if draw(st.integers(0, 3)):
        # The exit plan's fields, risk-% sizing and an exit's part (docs/design.md#exits): each
        # drawn on half the bodies, together they would refuse most opens (a trail option
        # without a trail, risk_pct without a stop, close_pct on an open…) and leave the accept
        # path rarely reached. A quarter of the bodies keep them.
        for name in EXIT_FIELDS:
            body.pop(name, None)
    if draw(st.booleans()):
        body["time"] = datetime.now(UTC).isoformat()
    if draw(st.booleans()):
        body.pop("time", None) if draw(st.booleans()) else body.pop("alert_id", None)
    mutation = draw(st.sampled_from(["none", "drop", "unknown", "retype", "raw"]))
    if mutation == "drop" and body:
        body.pop(draw(st.sampled_from(sorted(body))))
    elif mutation == "unknown":
        body[draw(st.text(min_size=1, max_size=12))] = draw(JSON_LEAVES)
    elif mutation == "retype" and body:
        body[draw(st.sampled_from(sorted(body)))] = draw(ANY_JSON)
    elif mutation == "raw":
        return draw(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
    return dumps(body).encode()


@pytest.fixture(scope="module")
def target(live_webhook: Live) -> tuple[Live, Strat, st.SearchStrategy[bytes]]:
    spec = httpx.get(live_webhook.url + "/openapi.json").json()
    schema = spec["paths"]["/webhook/tradingview"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    strat = live_webhook.add_strategy(rate_limit_per_min=1_000_000, max_alert_age_s=3600)
    return live_webhook, strat, alert_bodies(from_schema(schema, schema.get("$defs", {})), strat)


def test_fuzzed_bodies_never_get_a_5xx_and_refused_ones_start_nothing(target) -> None:
    live, strat, bodies = target
    seen: dict[int, int] = {}

    @settings(
        max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(bodies)
    def check(raw: bytes) -> None:
        before = live.sql("SELECT count(*) FROM trade WHERE strategy_id = %s", strat.id)[0][0]
        r = httpx.post(
            live.url + "/webhook/tradingview",
            content=raw,
            headers={"Content-Type": "text/plain"},
            timeout=10,
        )
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, r.text
        after = live.sql("SELECT count(*) FROM trade WHERE strategy_id = %s", strat.id)[0][0]
        answer = r.json()
        if "signal_id" in answer:
            outcome = live.sql("SELECT outcome FROM signal WHERE id = %s", answer["signal_id"])
        else:  # refused before authentication: no counter in the answer, its row is the newest
            assert 400 <= r.status_code < 500, (r.status_code, answer)
            outcome = live.sql("SELECT outcome FROM signal ORDER BY id DESC LIMIT 1")
        outcome = outcome[0][0]
        if r.status_code == 202 and "trade_id" in answer:
            assert after == before + 1 and outcome == "ACCEPTED"
        else:
            assert after == before, (r.status_code, answer)
            expected = (
                "REFUSED" if r.status_code >= 400 else ("DUPLICATE", "NOTHING_TO_CLOSE", "ACCEPTED")
            )
            assert outcome in expected, (outcome, answer)

    check()
    assert seen.get(202, 0) > 0 and seen.get(422, 0) > 0 and seen.get(400, 0) > 0, seen


def test_the_exit_fields_the_generator_thins_out_are_alert_fields() -> None:
    assert set(EXIT_FIELDS) <= set(FIELDS)
