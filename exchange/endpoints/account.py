"""Account endpoints (docs/bitunix.md#account-endpoints): balance, leverage, margin and position
mode."""

from __future__ import annotations

from typing import Any

from exchange import parse
from exchange import schemas as w
from exchange.endpoints.base import Endpoints
from exchange.models import Account, LeverageMarginMode
from trading.types import MarginMode, PositionMode


class AccountEndpoints(Endpoints):
    async def account(self, margin_coin: str = "USDT") -> Account:
        return await self._request(
            "GET",
            "account",
            lambda d: parse.account(
                w.Account.model_validate(w.as_object(d, key="marginCoin", value=margin_coin))
            ),
            params={"marginCoin": margin_coin},
        )

    async def leverage_margin_mode(
        self, symbol: str, margin_coin: str = "USDT"
    ) -> LeverageMarginMode:
        return await self._request(
            "GET",
            "account/get_leverage_margin_mode",
            lambda d: parse.leverage_margin_mode(
                w.LeverageMarginMode.model_validate(w.as_object(d, key="symbol", value=symbol))
            ),
            params={"symbol": symbol, "marginCoin": margin_coin},
        )

    async def change_leverage(self, symbol: str, leverage: int, margin_coin: str = "USDT") -> None:
        """Fails with 20006 while the symbol has open orders (and positions, per venue)."""
        await self._request(
            "POST",
            "account/change_leverage",
            _ignore,
            body=w.ChangeLeverageRequest(symbol=symbol, marginCoin=margin_coin, leverage=leverage),
        )

    async def change_margin_mode(
        self, symbol: str, margin_mode: MarginMode, margin_coin: str = "USDT"
    ) -> None:
        await self._request(
            "POST",
            "account/change_margin_mode",
            _ignore,
            body=w.ChangeMarginModeRequest(
                symbol=symbol, marginCoin=margin_coin, marginMode=str(margin_mode)
            ),
        )

    async def change_position_mode(self, position_mode: PositionMode) -> None:
        """Applies to every symbol; fails with 20009 while any position or order exists."""
        await self._request(
            "POST",
            "account/change_position_mode",
            _ignore,
            body=w.ChangePositionModeRequest(positionMode=str(position_mode)),
        )


def _ignore(_data: Any) -> None:
    # Echo endpoints (change_*): the echo proves nothing more than code 0 does.
    return None
