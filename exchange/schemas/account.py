"""Account endpoints (docs/bitunix.md#account-endpoints)."""

from __future__ import annotations

from exchange.schemas.base import Amount, Request, Wire


class Account(Wire):
    marginCoin: str
    available: Amount
    frozen: Amount = "0"
    margin: Amount = "0"
    transfer: Amount | None = None
    positionMode: str
    crossUnrealizedPNL: Amount = "0"
    isolationUnrealizedPNL: Amount = "0"
    bonus: Amount | None = None


class LeverageMarginMode(Wire):
    symbol: str
    marginCoin: str | None = None
    leverage: int
    marginMode: str


class ChangeLeverageRequest(Request):
    symbol: str
    marginCoin: str
    leverage: int


class ChangeMarginModeRequest(Request):
    symbol: str
    marginCoin: str
    marginMode: str


class ChangePositionModeRequest(Request):
    positionMode: str
