"""The precision fuzz, small: random alerts through sizing and conforming onto the paper
exchange (real HTTP) must draw no rule rejection there; and the fuzz must notice when an
order that was not conformed goes out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bench import fuzz_pipeline
from bench.limits import BenchLimits
from bench.precision_fuzz import REAL_PAIRS_FILE, run_fuzz
from bench.stack import ExchangeEndpoint
from tests.support.paper import run_paper_exchange
from trading.precision import ConformedOrder

LIMITS = BenchLimits()


async def _endpoint(**overrides: object) -> AsyncIterator[ExchangeEndpoint]:
    async with run_paper_exchange(
        paper_rate_limit_scale=LIMITS.paper_rate_limit_scale,
        paper_balance=LIMITS.paper_balance,
        **overrides,
    ) as paper:
        yield ExchangeEndpoint(paper.base_url, paper.api_key, paper.api_secret)


@pytest.fixture
async def bundled() -> AsyncIterator[ExchangeEndpoint]:
    async for endpoint in _endpoint():
        yield endpoint


@pytest.fixture
async def real_rows() -> AsyncIterator[ExchangeEndpoint]:
    async for endpoint in _endpoint(paper_pairs_file=REAL_PAIRS_FILE):
        yield endpoint


async def test_no_rule_rejection_on_the_bundled_pairs(bundled: ExchangeEndpoint) -> None:
    result = await run_fuzz(bundled, n=500, seed=11, limits=LIMITS, round_size=125)

    assert result["exchange_rule_rejections"] == 0, result["rule_rejection_examples"]
    assert result["exchange_balance_rejections_by_code"] == {}
    assert result["exchange_other_rejections_by_code"] == {}
    # The fuzz reached the exchange in both position modes, with both order types, both ways.
    accepted = result["accepted_by"]
    for mode in ("ONE_WAY", "HEDGE"):
        for kind in ("MARKET open", "LIMIT open", "MARKET close", "LIMIT close"):
            assert accepted.get(f"{mode} {kind}", 0) > 0, (mode, kind, accepted)
    # And it also produced orders the rules refuse, refused before sending.
    refused = result["local_refusals_by_rule"]
    for rule in ("status", "api_supported", "min_qty", "price_protect_scope"):
        assert refused.get(rule, 0) > 0, (rule, refused)


async def test_no_rule_rejection_on_real_bitunix_rows(real_rows: ExchangeEndpoint) -> None:
    result = await run_fuzz(real_rows, n=300, seed=12, limits=LIMITS, round_size=100)

    assert result["symbols"] == ["BTCUSDT"]
    assert result["exchange_rule_rejections"] == 0, result["rule_rejection_examples"]
    assert result["orders_accepted"] > 100


async def test_an_order_sent_unconformed_is_counted_as_a_rule_rejection(
    bundled: ExchangeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness can fail: skip the rounding (send the raw size and price) and the
    exchange's rule check must show up in the count, with examples."""

    def unconformed(rules, *, qty, price, **_: object) -> ConformedOrder:
        off_grid = qty + rules.qty_step / Decimal(7)
        return ConformedOrder(qty=off_grid, price=price)

    monkeypatch.setattr(fuzz_pipeline, "conform_order", unconformed)
    result = await run_fuzz(bundled, n=150, seed=13, limits=LIMITS, round_size=150)

    assert result["exchange_rule_rejections"] > 0
    assert result["exchange_rule_rejections_by_code"].get("10002", 0) > 0
    assert result["rule_rejection_examples"][0]["code"] == 10002
