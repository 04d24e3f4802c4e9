"""`tradewire exchange check`: what to verify before the first live order, read-only.

BitUnix has no testnet, so this is how a trader learns the setup is right without risking an
order. Every line is `ok` or says what to fix; the exit code is 0 only when every line is ok.
Nothing is changed at the exchange: one public read (tickers), one signed read (account), one
position read, and the database's pair table.

    keys and signature   a signed read is accepted (10003 unknown key, 10007 bad signature,
                         403 a key without futures trading)
    IP allow-list        BitUnix answers 10004 when this server's address is not on the key's
                         IP whitelist (docs/bitunix.md#error-codes)
    account              the position mode, the margin coin's free balance, open positions
    clock                the skew read from the answers' Date headers (exchange/clock.py)
    pairs                `trading_pair` non-empty and synced within PAIRS_FRESH
    request budget       what this process's share and scale allow per endpoint
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from settings import Settings

MARGIN_COIN = "USDT"
# The worker re-syncs the pairs hourly: older than this, the sync is not running.
PAIRS_FRESH = timedelta(hours=2)
AUTH_FIXES = {
    10003: "the API key is missing or unknown: check TRADEWIRE_{KIND}_API_KEY",
    10007: "the signature was refused: check TRADEWIRE_{KIND}_API_SECRET (for BitUnix, the "
           "secret shown once when the key was created)",
    403: "the key may not do this: give it futures trading permission in BitUnix's API "
         "management",
}
IP_CODE = 10004


@dataclass(frozen=True)
class Line:
    name: str
    ok: bool
    detail: str

    def render(self) -> str:
        return f"{'ok ' if self.ok else 'FIX'}  {self.name}: {self.detail}"


async def run_checks(settings: Settings) -> list[Line]:
    from exchange.errors import AuthFailed, ExchangeError
    from wiring import exchange_client

    lines: list[Line] = []
    missing = settings.missing_exchange_keys()
    if missing:
        return [Line("keys and signature", False, f"set {' and '.join(missing)} (this process "
                     "has no exchange keys: run the check where the worker's settings are)"),
                *await _offline_lines(settings)]
    async with exchange_client(settings) as client:
        try:
            await client.tickers()
        except ExchangeError as exc:
            return [Line("exchange", False, f"cannot read {settings.exchange_url}: {exc}"),
                    *await _offline_lines(settings)]
        account = None
        try:
            account = await client.account(MARGIN_COIN)
        except AuthFailed as exc:
            if exc.code == IP_CODE:
                lines.append(Line("keys and signature", True,
                                  "not refused (the address was refused first)"))
                lines.append(Line("IP allow-list", False,
                                  "BitUnix refused this server's address (code 10004): add its "
                                  "public IP to the API key's IP whitelist"))
            else:
                fix = AUTH_FIXES.get(exc.code or 0, "refused").replace(
                    "{KIND}", settings.exchange.upper())
                lines.append(Line("keys and signature", False, f"{fix} ({exc})"))
                lines.append(Line("IP allow-list", False, "not checked: fix the keys first"))
        except ExchangeError as exc:
            lines.append(Line("keys and signature", False, f"the signed read failed: {exc}"))
            lines.append(Line("IP allow-list", False, "not checked: the signed read failed"))
        else:
            lines.append(Line("keys and signature", True, "a signed read (GET account) was "
                              "accepted"))
            lines.append(Line("IP allow-list", True, "this server's address is accepted"))
        lines.append(await _account_line(client, account))
        lines.append(_clock_line(client.clock))
    return lines + await _offline_lines(settings)


async def _account_line(client, account) -> Line:  # client: BitunixClient, account: Account
    from exchange.errors import ExchangeError

    if account is None:
        return Line("account", False, "not checked: the signed read failed")
    if account.available <= 0:
        return Line("account", False,
                    f"no free {MARGIN_COIN} in the futures account (available "
                    f"{account.available}): transfer margin to the futures wallet")
    detail = (f"position mode {account.position_mode}, {account.available} {MARGIN_COIN} "
              "available")
    try:
        positions = await client.pending_positions()
    except ExchangeError as exc:
        return Line("account", False, f"{detail}; positions unreadable: {exc}")
    if positions:
        symbols = ", ".join(sorted({p.symbol for p in positions}))
        detail += (f"; {len(positions)} position(s) open ({symbols}): Tradewire treats "
                   "quantity no trade owns per TRADEWIRE_INCIDENT_POLICY")
    return Line("account", True, detail)


def _clock_line(clock) -> Line:  # clock: exchange.clock.ClockWatch
    from exchange.clock import ClockState

    state = clock.state
    if state is ClockState.UNKNOWN:
        return Line("clock", False, "no answer carried a Date header: the skew is unknown")
    if state is ClockState.OK:
        return Line("clock", True, clock.summary())
    bound = ("TRADEWIRE_CLOCK_SKEW_MAX_MS" if state is ClockState.REFUSE
             else "TRADEWIRE_CLOCK_SKEW_WARN_MS")
    return Line("clock", False, f"{clock.summary()}, over {bound}: sync it with NTP "
                "(e.g. `timedatectl set-ntp true`)")


async def _offline_lines(settings: Settings) -> list[Line]:
    return [await _pairs_line(settings), _budget_line(settings)]


async def _pairs_line(settings: Settings) -> Line:
    if not settings.database_url:
        return Line("pairs", False, "not checked: set TRADEWIRE_DATABASE_URL")
    from sqlalchemy import func, select

    from db.models import TradingPair
    from db.session import make_engine

    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            count, newest = (await conn.execute(
                select(func.count(), func.max(TradingPair.synced_at)))).one()
    except Exception as exc:  # noqa: BLE001 - any failure: the line says what happened
        return Line("pairs", False, f"cannot read the database: {type(exc).__name__}: {exc}")
    finally:
        await engine.dispose()
    if not count:
        return Line("pairs", False, "no pairs in the database: every alert would be refused "
                    "as an unknown symbol; run `tradewire pairs sync`")
    age = datetime.now(UTC) - newest
    if age > PAIRS_FRESH:
        return Line("pairs", False, f"{count} pairs, last synced {_ago(age)} ago: the hourly "
                    "sync is not running (is the worker up?); run `tradewire pairs sync`")
    return Line("pairs", True, f"{count} pairs, synced {_ago(age)} ago")


def _budget_line(settings: Settings) -> Line:
    from exchange.budget import PRIVATE_DEFAULT, rate_for

    share, scale = settings.exchange_budget_share, settings.exchange_budget_scale
    cancel = rate_for("/api/v1/futures/trade/cancel_orders", share=share, scale=scale)
    private = rate_for("/api/v1/futures/account", share=share, scale=scale)
    detail = (f"share {share} × scale {scale}: this process sends at most {_n(private)}/s per "
              f"signed endpoint (BitUnix allows {PRIVATE_DEFAULT}/s per account) and "
              f"{_n(cancel)}/s to cancel_orders (5/s) on its own share; the worker and the "
              "fast path share one budget in the database and use their own share only while "
              "it does not answer, so keep the shares adding up to at most 1")
    if scale != 1 and settings.exchange == "bitunix":
        return Line("request budget", False,
                    f"{detail}. TRADEWIRE_EXCHANGE_BUDGET_SCALE is for benchmarks: set it to 1")
    return Line("request budget", True, detail)


def _n(rate: Decimal) -> str:
    return f"{rate.normalize():f}"


def _ago(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def check(settings: Settings) -> int:
    """Print every line; 0 when all are ok, 1 otherwise."""
    lines = asyncio.run(run_checks(settings))
    print(f"tradewire exchange check: {settings.exchange} at {settings.exchange_url}")
    for line in lines:
        print("  " + line.render())
    bad = [line.name for line in lines if not line.ok]
    print("all ok: ready for a first order" if not bad else f"to fix: {', '.join(bad)}")
    return 0 if not bad else 1
