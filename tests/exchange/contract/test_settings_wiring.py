from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from pydantic import SecretStr

from exchange.errors import Unavailable
from settings import BITUNIX_BASE_URL, Settings
from wiring import exchange_client


def paper_settings(paper, **overrides) -> Settings:
    return Settings(
        _env_file=None,
        exchange="paper",
        exchange_base_url=paper.base_url,
        paper_api_key=paper.api_key,
        paper_api_secret=SecretStr(paper.api_secret),
        **overrides,
    )


async def test_from_settings_points_at_the_paper_exchange(paper) -> None:
    settings = paper_settings(paper, exchange_timeout_s=Decimal("2"))
    async with exchange_client(settings) as client:
        assert client.base_url == paper.base_url
        assert (await client.account()).margin_coin == "USDT"


async def test_live_settings_point_at_bitunix_and_never_show_the_key() -> None:
    settings = Settings(
        _env_file=None,
        exchange="bitunix",
        bitunix_api_key=SecretStr("LIVEKEY1234567890"),
        bitunix_api_secret=SecretStr("LIVESECRET0987654321"),
    )
    client = exchange_client(settings)
    assert client.base_url == BITUNIX_BASE_URL
    text = repr(client)
    assert text == "BitunixClient(base_url='https://fapi.bitunix.com', api_key='LIVE…')"
    assert "LIVESECRET" not in text and "1234567890" not in text
    await client.aclose()


async def test_logs_never_carry_secrets_or_signatures(paper, caplog) -> None:
    settings = paper_settings(paper)
    with caplog.at_level(logging.DEBUG):
        async with exchange_client(settings) as client:
            await client.account()
            await paper.admin.faults(http_5xx=1)
            with pytest.raises(Unavailable):
                await client.account()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "account" in text  # the client does log its requests
    assert paper.api_secret not in text and paper.api_key not in text
    assert "sign" not in text.lower()
