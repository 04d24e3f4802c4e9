"""The dashboard in a real browser: the system's headless Chromium (Debian's `chromium` and
`chromium-driver`) driven through selenium, against the dashboard served over a real socket, on
real trades (a worker with every activity, the paper exchange over HTTP, PostgreSQL, Temporal)
that real alerts started through the webhook app.

Each page visited is written as a PNG to a folder named at the end of the run (pytest's summary:
"dashboard screenshots: …"; TRADEWIRE_UI_SCREENSHOTS chooses it, e.g. docs/img to refresh the
README's). Without Chromium these tests skip, saying what to install; `.ci/run` installs it."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from db.models import Incident, RiskState, Trade
from tests.ui.conftest import SCREENSHOTS, TOKEN, served
from tests.webhook.conftest import Strat, Webhook
from tests.workflows.harness import Harness, until
from tests.workflows.test_incidents import Watch
from trading.types import IncidentPolicy, OrderType, Side, TradeStatus
from webhook import strategies
from webhook.app import create_app
from webhook.auth import server_key
from webhook.schemas import render_alert

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BTC, ETH, SOL = "BTCUSDT", "ETHUSDT", "SOLUSDT"
WAIT_S = 60  # a condition in the page, polled (never a fixed sleep)
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="headless Chromium is not installed (/usr/bin/chromium, /usr/bin/chromedriver): "
           "`apt-get install -y chromium chromium-driver` runs these browser tests "
           "(.ci/run installs them)",
)


# --- the browser -------------------------------------------------------------------------------


class Browser:
    """A Chromium session; every call runs in a thread, so the test's event loop (the worker,
    the webhook) keeps running while the browser works or waits."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    async def get(self, path: str) -> None:
        await self.run(lambda: self.driver.get(self.base + path))

    async def wait(self, check: Callable[[Any], Any], what: str) -> Any:
        """`check` until it answers; the live parts of a page are replaced as they change, so
        an element found a moment ago may be gone (stale): found again."""
        from selenium.common.exceptions import (
            NoAlertPresentException,
            NoSuchElementException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        ignored = (NoSuchElementException, StaleElementReferenceException, NoAlertPresentException)
        return await self.run(lambda: WebDriverWait(
            self.driver, WAIT_S, ignored_exceptions=ignored).until(check, what))

    async def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return await self.wait(lambda d: d.find_element(By.CSS_SELECTOR, selector), selector)

    async def leave(self) -> None:
        """A blank page: nothing holds the dashboard's event stream open."""
        await self.run(lambda: self.driver.get("about:blank"))

    async def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return await self.run(lambda: self.driver.find_elements(By.CSS_SELECTOR, selector))

    async def text(self, selector: str) -> str:
        from selenium.webdriver.common.by import By

        return str(await self.wait(
            lambda d: d.find_element(By.CSS_SELECTOR, selector).text or " ", selector)).strip()

    async def type(self, selector: str, value: str) -> None:
        el = await self.css(selector)
        await self.run(lambda: (el.clear(), el.send_keys(value)))

    async def click(self, selector: str) -> None:
        el = await self.css(selector)
        await self.run(el.click)

    async def select(self, selector: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        el = await self.css(selector)
        await self.run(lambda: Select(el).select_by_value(value))

    async def path(self) -> str:
        url = str(await self.run(lambda: self.driver.current_url))
        return url.removeprefix(self.base)

    async def shot(self, name: str) -> Path:
        """The whole page as a PNG (the window is sized to the page first)."""
        target = self.shots / f"{name}.png"
        height = await self.run(lambda: self.driver.execute_script(
            "return document.documentElement.scrollHeight"))
        # the window's frame is not page: a little more than the page, so nothing scrolls
        await self.run(lambda: self.driver.set_window_size(1400, min(int(height) + 140, 4000)))
        await self.run(lambda: self.driver.save_screenshot(str(target)))
        return target


def start_chromium(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager: never download a browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1400,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TRADEWIRE_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "ui-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    if folder not in SCREENSHOTS:
        SCREENSHOTS.append(folder)
    return folder


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    driver = start_chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


# --- the real parts around it ------------------------------------------------------------------


def settings_for(h: Harness, tmp_path: Path, **more: Any):  # type: ignore[no-untyped-def]
    return h.settings.model_copy(update={"admin_token": SecretStr(TOKEN), "state_dir": tmp_path,
                                         "fast_path": False, **more})


@asynccontextmanager
async def webhook(h: Harness, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The webhook app on the harness's database and task queue; no automatic incident policy
    (the tests answer incidents from the dashboard)."""
    app = create_app(settings_for(h, tmp_path, incident_policy=IncidentPolicy.REPORT))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://tw") as http:
            yield http


async def alert(api: httpx.AsyncClient, strat: Strat, **fields: Any) -> httpx.Response:
    body = render_alert(Webhook.alert(strat, **fields)).encode()
    return await api.post("/webhook/tradingview", content=body,
                          headers={"Content-Type": "application/json"})


async def trade_row(h: Harness, trade_id: int) -> Trade:
    async with h.sessionmaker() as session:
        row = await session.get(Trade, trade_id)
    assert row is not None
    return row


async def reaches(h: Harness, trade_id: int, done: Callable[[Trade], bool], what: str) -> Trade:
    async def probe() -> Trade | None:
        row = await trade_row(h, trade_id)
        return row if done(row) else None

    return await until(probe, f"trade #{trade_id} {what}")


def tracking(row: Trade) -> bool:
    return row.status == TradeStatus.TRACKING and row.filled_qty > 0


def ended(row: Trade) -> bool:
    return TradeStatus(row.status).is_final


async def sign_in(b: Browser) -> None:
    await b.get("/")
    assert (await b.path()).startswith("/login?next=/")
    await b.type("#token", TOKEN)
    await b.click("#signin-button")
    await b.css("#live-state")


# --- the tests ---------------------------------------------------------------------------------


async def test_a_trader_signs_in_watches_the_book_live_filters_trades_and_reads_a_timeline(
    ui_harness: Harness, tmp_path: Path, chromium: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    h = ui_harness
    for symbol, price in ((BTC, "95000"), (ETH, "3000"), (SOL, "150")):
        await h.paper.admin.set_price(symbol, price)
    settings = settings_for(h, tmp_path)
    row, secret = await strategies.add(h.sessionmaker, server_key(settings),
                                       f"trend{uuid.uuid4().hex[:6]}",
                                       params={"tracking_interval_s": 2})
    strat = Strat(row.id, row.name, secret)
    async with webhook(h, tmp_path) as api:
        btc = await alert(api, strat, price="95000", sl="90000")
        eth = await alert(api, strat, ticker="ETHUSDT.P", action="sell", market_position="short",
                          size="0.1", price="3000", tp="2900")
        refused = await alert(api, strat, ticker="NOPEUSDT.P", price="1")
        assert (btc.status_code, eth.status_code, refused.status_code) == (202, 202, 422), (
            btc.text, eth.text, refused.text)
        btc_id, eth_id = btc.json()["trade_id"], eth.json()["trade_id"]
        for tid in (btc_id, eth_id):
            await reaches(h, tid, tracking, "tracks its position")
        await h.paper.admin.set_price(ETH, "2990")  # the short gains before its exit alert
        out = await alert(api, strat, ticker="ETHUSDT.P", action="buy", market_position="flat",
                          prev_market_position="short", size="0.1", price="2990")
        assert out.status_code == 202, out.text
        eth_row = await reaches(h, eth_id, ended, "ends")
        assert eth_row.status == TradeStatus.CLOSED and eth_row.realized_pnl > 0
        await h.paper.admin.set_price(BTC, "95400")  # the long is 400 up: +4 USDT unrealized

        with served(settings) as base:
            b = Browser(chromium, base, screenshot_dir(tmp_path_factory))
            # Sign-in: a wrong token is refused on the page, the right one opens the overview.
            await b.get("/")
            assert (await b.path()).startswith("/login?next=/")
            await b.type("#token", "not-the-token")
            await b.click("#signin-button")
            assert "not the admin token" in await b.text("#signin-error")
            await b.type("#token", TOKEN)
            await b.click("#signin-button")
            assert await b.text("#account-state") == "ACTIVE"
            positions = await b.text("#positions")
            assert BTC in positions and f"#{btc_id}" in positions and ETH not in positions
            assert "NOPEUSDT" in await b.text("#recent-alerts")  # the refusal, with its reason
            # Live: a new alert and its position appear without a reload of the page.
            await b.run(lambda: b.driver.execute_script("window.__samePage = 'yes'"))
            sol = await alert(api, strat, ticker="SOLUSDT.P", size="1", price="150")
            assert sol.status_code == 202, sol.text
            signal_id = sol.json()["signal_id"]
            await b.css(f'#recent-alerts li[data-signal="{signal_id}"]')
            await reaches(h, sol.json()["trade_id"], tracking, "tracks its position")
            await b.wait(lambda d: SOL in d.find_element("id", "live-positions").text,
                         "the SOL position shown live")
            # The long's unrealized PnL, the exchange's figure as its tracking read it.
            await b.wait(lambda d: d.find_element(
                "css selector", f'#positions tr[data-symbol="{BTC}"] .unrealized').text
                .startswith("+3.99"), "the BTC position's unrealized gain shown live")
            assert await b.run(lambda: b.driver.execute_script("return window.__samePage")) == "yes"
            await b.shot("overview")

            # Trades: the filter by symbol leaves the ETH trade only.
            await b.get("/trades")
            assert len(await b.all("#trades tbody tr[data-trade]")) == 3
            await b.select("#f-symbol", ETH)
            await b.click("#f-apply")
            await b.wait(lambda d: "symbol=ETHUSDT" in d.current_url, "the filter applied")
            rows = await b.all("#trades tbody tr[data-trade]")
            assert [await b.run(lambda r=r: r.get_attribute("data-trade")) for r in rows] == [
                str(eth_id)]
            await b.shot("trades")
            await b.select("#f-status", "TRACKING")
            await b.select("#f-symbol", "")
            await b.click("#f-apply")
            await b.wait(lambda d: "status=TRACKING" in d.current_url, "the status filter")
            tracked = {await b.run(lambda r=r: r.get_attribute("data-trade"))
                       for r in await b.all("#trades tbody tr[data-trade]")}
            assert tracked == {str(btc_id), str(sol.json()["trade_id"])}

            # A trade's timeline: from its alert to every order, fill and its exit.
            await b.get(f"/trades?symbol={ETH}")
            await b.click(f'#trades a[href="/trades/{eth_id}"]')
            timeline = await b.text("#timeline")
            lines = timeline.splitlines()
            assert lines[0].split(" ", 2)[2].startswith("ALERT"), lines[0]
            assert "→ ACCEPTED" in lines[0] and "price 3000" in lines[0]
            assert any("FILL" in x and "SELL 0.1" in x and "(entry)" in x for x in lines)
            assert any("FILL" in x and "BUY 0.1" in x and "(exit)" in x for x in lines)
            assert "trade closed" in lines[-1] and "net PnL" in lines[-1]
            assert await b.text("#trade-status") == "CLOSED"
            link = await b.css("#workflow-link")
            href = await b.run(lambda: link.get_attribute("href"))
            assert href.startswith(settings.temporal_ui_base) and eth_row.workflow_id in href
            assert "bps" in await b.text("#slippage")
            assert (await b.text("#alert-to-fill")).endswith("ms")
            await b.shot("trade-timeline")

            # Strategies (charts drawn by the vendored library) and alerts (the refusal's reason).
            await b.get("/strategies")
            for chart in ("pnl", "slippage", "latency"):
                await b.css(f'.chart[data-chart="{chart}"][data-drawn="1"]')
            await b.shot("strategies")
            await b.get("/alerts")
            row_of = f'#alerts tr[data-signal="{refused.json()["signal_id"]}"]'
            assert await b.text(row_of + " .outcome") == "REFUSED"
            assert await b.text(row_of + " .reason") == refused.json()["reason"]
            await b.shot("alerts")
            await b.leave()


async def test_an_operator_halts_and_resumes_trading_and_flattens_an_incident(
    ui_harness: Harness, tmp_path: Path, chromium: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    h = ui_harness
    await h.paper.admin.set_price(SOL, "150")
    # Quantity no trade owns (a manual buy), found by the account watcher's rounds.
    await h.exchange.place_order(symbol=SOL, side=Side.BUY, qty=Decimal("2"),
                                 order_type=OrderType.MARKET, client_id="by-hand-ui")
    watch = Watch(h, settle_s="1")

    async def raised() -> list[Incident] | None:
        async with h.sessionmaker() as session:
            rows = list((await session.scalars(select(Incident))).all())
        return rows or None

    [incident] = await watch.until(raised, "the unowned SOL quantity becomes an incident")
    assert (incident.kind, incident.symbol, incident.status) == ("unowned_quantity", SOL, "open")

    with served(settings_for(h, tmp_path)) as base:
        b = Browser(chromium, base, screenshot_dir(tmp_path_factory))
        await sign_in(b)
        assert f"#{incident.id}" in await b.text("#live-incidents")

        # The kill switch: halt with a reason, then resume; each recorded with who and why.
        await b.type('#halt-form input[name="reason"]', "dashboard drill")
        await b.click("#halt")
        await b.wait(lambda d: d.find_element("id", "account-state").text.startswith("HALTED"),
                     "the overview shows HALTED")
        assert "account is HALTED" in await b.text("#flash")
        async with h.sessionmaker() as session:
            state = await session.get(RiskState, "account")
        assert state is not None and (state.state, state.changed_by, state.reason) == (
            "HALTED", "ui", "dashboard drill")
        await b.shot("halted")
        await b.click("#resume")
        await b.wait(lambda d: d.find_element("id", "account-state").text == "ACTIVE",
                     "the overview shows ACTIVE")
        async with h.sessionmaker() as session:
            state = await session.get(RiskState, "account")
        assert state is not None and (state.state, state.changed_by) == ("ACTIVE", "ui")

        # The incident: flattened from its page by a trade that closes the quantity.
        await b.get("/incidents")
        await b.css(f"#incident-{incident.id}")
        await b.shot("incidents")
        await b.click(f"#flatten-{incident.id}")
        asked = await b.wait(lambda d: d.switch_to.alert, "the page asks before it flattens")
        assert await b.run(lambda: asked.text) == "Close 2 SOLUSDT LONG at market now?"
        await b.run(asked.accept)
        flash = await b.text("#flash")
        assert f"incident #{incident.id}: trade #" in flash and "flattens it" in flash, flash
        trade_id = int(flash.split("trade #", 1)[1].split(" ", 1)[0])
        closed = await reaches(h, trade_id, ended, "ends")
        assert closed.status == TradeStatus.CLOSED and closed.closed_qty == Decimal("2")
        assert not [p for p in await h.exchange.pending_positions(SOL) if p.qty > 0]
        async with h.sessionmaker() as session:
            row = await session.get(Incident, incident.id)
        assert row is not None and any(a["by"] == "ui" and a["action"] == "flatten"
                                       for a in row.actions), row.actions
        await b.leave()
