"""The dashboard over HTTP (in-process, real PostgreSQL and Temporal): sign-in, the cookie's
flags, CSRF, and every page answering once signed in. tests/ui/test_browser.py drives the same
app in Chromium on real trades."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import delete, select

from db.models import RiskEvent, RiskState, Strategy
from tests.ui.conftest import TOKEN, ui_settings
from tests.workflows.test_ladder import ladder, laddered
from ui.app import create_ui_app
from workflows.contract import Sizing

PAGES = ["/", "/trades", "/strategies", "/alerts", "/incidents", "/trades?status=CLOSED",
         "/incidents?status=all"]


async def sign_in(ui: httpx.AsyncClient) -> str:
    """Signs the client in; the CSRF token of its session (from a page's form)."""
    r = await ui.post("/login", data={"token": TOKEN, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    page = await ui.get("/")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "a form with the session's CSRF token"
    return found.group(1)


@pytest.mark.parametrize("path", PAGES + ["/trades/1"])
async def test_every_page_asks_for_sign_in_first(ui: httpx.AsyncClient, path: str) -> None:
    r = await ui.get(path)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/")
    assert (await ui.get("/events")).status_code == 401


async def test_a_wrong_token_is_refused_and_sets_no_cookie(ui: httpx.AsyncClient) -> None:
    r = await ui.post("/login", data={"token": TOKEN + "x", "next": "/"})
    assert r.status_code == 401 and "not the admin token" in r.text
    assert "set-cookie" not in r.headers
    assert (await ui.get("/")).status_code == 303


async def test_the_session_cookie_is_httponly_and_samesite_strict(ui: httpx.AsyncClient) -> None:
    r = await ui.post("/login", data={"token": TOKEN, "next": "https://evil.example/"})
    assert r.headers["location"] == "/"  # no open redirect after sign-in
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("tw_session=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


async def test_every_page_answers_once_signed_in(ui: httpx.AsyncClient) -> None:
    await sign_in(ui)
    for path in PAGES:
        r = await ui.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
    missing = await ui.get("/trades/999999999")
    assert missing.status_code == 200 and "There is no trade #999999999" in missing.text
    bad = await ui.get("/trades?since=yesterday&status=NOPE")
    assert "is not a day" in bad.text and "is not one of" in bad.text


async def test_an_action_without_the_csrf_token_or_from_another_origin_changes_nothing(
    ui: httpx.AsyncClient, db_sessionmaker
) -> None:
    csrf = await sign_in(ui)
    async with db_sessionmaker() as session:
        before = len((await session.scalars(select(RiskEvent))).all())
    assert (await ui.post("/risk/halt", data={"reason": "x"})).status_code == 403
    assert (await ui.post("/risk/halt", data={"csrf": "0" * 64})).status_code == 403
    other = await ui.post("/risk/halt", data={"csrf": csrf},
                          headers={"Origin": "http://evil.example"})
    assert other.status_code == 403
    signed_out = httpx.AsyncClient(transport=ui._transport, base_url=str(ui.base_url))
    assert (await signed_out.post("/risk/halt", data={"csrf": csrf})).status_code == 401
    async with db_sessionmaker() as session:
        assert len((await session.scalars(select(RiskEvent))).all()) == before


async def test_the_kill_switch_over_the_form_records_who_and_why(
    ui: httpx.AsyncClient, db_sessionmaker
) -> None:
    csrf = await sign_in(ui)
    origin = {"Origin": "http://127.0.0.1:8300"}
    r = await ui.post("/risk/halt", data={"csrf": csrf, "reason": "from the form"},
                      headers=origin)
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = await ui.get("/")
    assert "account is HALTED" in page.text and 'id="account-state">HALTED' in page.text
    async with db_sessionmaker() as session:
        row = await session.get(RiskState, "account")
        assert row is not None and (row.state, row.changed_by, row.reason) == (
            "HALTED", "ui", "from the form")
    r = await ui.post("/risk/resume", data={"csrf": csrf}, headers=origin)
    assert r.status_code == 303
    page = await ui.get("/")
    assert 'id="account-state">ACTIVE' in page.text
    async with db_sessionmaker() as session:
        row = await session.get(RiskState, "account")
        assert row is not None and row.state == "ACTIVE"


async def test_an_incident_is_dismissed_from_its_page_with_a_note(
    ui: httpx.AsyncClient, db_sessionmaker
) -> None:
    """The webhook's own dismiss runs (one implementation): the row records who and why; a
    refusal (no note, a wrong action for its kind) comes back as the page's message."""
    from decimal import Decimal

    from db.models import Incident

    async with db_sessionmaker() as session, session.begin():
        row = Incident(fingerprint=f"orphan_order:ui-test-{id(ui)}", kind="orphan_order",
                       symbol="BTCUSDT", order_id="123", exchange_qty=Decimal("0.01"),
                       owned_qty=Decimal(0), detail="a working order no live trade owns")
        session.add(row)
        await session.flush()
        incident_id = row.id
    csrf = await sign_in(ui)
    page = await ui.get("/incidents")
    assert f'id="incident-{incident_id}"' in page.text and f'id="dismiss-{incident_id}"' in page.text
    assert f'id="flatten-{incident_id}"' not in page.text  # only unowned quantity is flattened

    async def post(verb: str, **fields: str) -> str:
        r = await ui.post(f"/incidents/{incident_id}/{verb}", data={"csrf": csrf, **fields})
        assert r.status_code == 303 and r.headers["location"] == "/incidents"
        shown = await ui.get("/incidents?status=all")
        found = re.search(r'<p id="flash" class="flash (ok|bad)">([^<]*)</p>', shown.text)
        assert found, shown.text[:2000]
        return f"{found.group(1)}: {found.group(2)}"

    assert (await post("adopt")).startswith("bad: ")  # not unowned quantity: the API's 409
    assert (await post("dismiss", note="")).startswith("bad: ")
    assert await post("dismiss", note="cancelled it by hand") == (
        f"ok: incident #{incident_id} dismissed")
    async with db_sessionmaker() as session:
        done = await session.get(Incident, incident_id)
    assert done is not None and done.status == "dismissed"
    assert done.actions[-1]["by"] == "ui" and done.actions[-1]["note"] == "cancelled it by hand"
    assert (await post("dismiss", note="again")).startswith("bad: ")  # no longer open: 409
    async with db_sessionmaker() as session, session.begin():
        await session.delete(await session.get(Incident, incident_id))


async def test_the_kill_switch_of_one_strategy_leaves_the_account_active(
    ui: httpx.AsyncClient, db_sessionmaker
) -> None:
    import uuid

    from webhook import strategies

    name = f"ui{uuid.uuid4().hex[:8]}"
    await strategies.add(db_sessionmaker, b"k" * 32, name)
    csrf = await sign_in(ui)
    page = await ui.get("/")
    assert f'<option value="{name}">strategy {name}</option>' in page.text
    r = await ui.post("/risk/halt", data={"csrf": csrf, "strategy": name, "reason": "one only"})
    assert r.status_code == 303
    page = await ui.get("/")
    assert f"strategy '{name}' is HALTED" in html.unescape(page.text)  # the flash
    assert f'<li data-strategy="{name}">strategy {name}: <span class="state-halted">' in page.text
    async with db_sessionmaker() as session:
        row = await session.get(RiskState, f"strategy:{name}")
        account = await session.get(RiskState, "account")
    assert row is not None and (row.state, row.changed_by) == ("HALTED", "ui")
    assert account is None or account.state == "ACTIVE"
    await ui.post("/risk/resume", data={"csrf": csrf, "strategy": name})
    unknown = await ui.post("/risk/halt", data={"csrf": csrf, "strategy": "no-such-strategy"})
    assert unknown.status_code == 303
    shown = html.unescape((await ui.get("/")).text)
    assert "no strategy 'no-such-strategy'" in shown  # the API's 404, shown
    async with db_sessionmaker() as session, session.begin():
        await session.execute(delete(Strategy).where(Strategy.name == name))


async def test_trades_come_a_page_at_a_time_newest_first(
    ui: httpx.AsyncClient, db_sessionmaker, monkeypatch
) -> None:
    import uuid
    from datetime import UTC, datetime
    from decimal import Decimal

    from db.models import Trade, TradingPair
    from ui import queries

    symbol = "UIPAGEUSDT"
    async with db_sessionmaker() as session, session.begin():
        if await session.get(TradingPair, symbol) is None:
            session.add(TradingPair(
                symbol=symbol, base="UIPAGE", quote="USDT", qty_step=Decimal("0.1"),
                price_tick=Decimal("0.01"), min_qty=Decimal("0.1"), max_limit_qty=Decimal(100),
                max_market_qty=Decimal(100), min_leverage=1, max_leverage=20,
                default_leverage=5, status="OPEN", api_supported=True, raw={},
                synced_at=datetime.now(UTC)))
        await session.execute(delete(Trade).where(Trade.symbol == symbol))
        rows = [Trade(workflow_id=f"ui-page-{uuid.uuid4().hex}", symbol=symbol, side="LONG",
                      intent="OPEN_LONG", entry_type="market", status="CLOSED")
                for _ in range(5)]
        session.add_all(rows)
        await session.flush()
        ids = sorted((r.id for r in rows), reverse=True)
    monkeypatch.setattr(queries, "PAGE", 2)
    await sign_in(ui)
    seen: list[int] = []
    url = f"/trades?symbol={symbol}"
    while url:
        page = await ui.get(url)
        assert page.status_code == 200
        seen += [int(x) for x in re.findall(r'<tr data-trade="(\d+)">', page.text)]
        found = re.search(r'<a href="([^"]+)" id="older">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
        assert not url or f"symbol={symbol}" in url  # the filter is kept
    assert seen == ids
    async with db_sessionmaker() as session, session.begin():
        await session.execute(delete(Trade).where(Trade.symbol == symbol))
        await session.execute(delete(TradingPair).where(TradingPair.symbol == symbol))


async def test_the_live_stream_sends_the_overview_parts_to_a_signed_in_browser_only(
    db_url: str, temporal_env, tmp_path
) -> None:
    """Over a real socket (the ASGI transport buffers a whole answer): the first event carries
    every live part of the overview, as the page's script expects them."""
    import json

    from tests.ui.conftest import served, ui_settings
    from ui.live import PARTS

    settings = ui_settings(db_url, temporal_env.client.service_client.config.target_host,
                           tmp_path)
    with served(settings) as base:
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as http:
            assert (await http.get("/events")).status_code == 401
            r = await http.post("/login", data={"token": TOKEN, "next": "/"})
            assert r.status_code == 303
            async with http.stream("GET", "/events") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                event = data = None
                async for line in lines:
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        data = json.loads(line.removeprefix("data: "))
                        break
    assert event == "overview" and data is not None
    assert sorted(data) == sorted(PARTS)
    assert 'id="account-state"' in data["state"]


async def test_a_forged_flash_cookie_is_ignored(ui: httpx.AsyncClient) -> None:
    await sign_in(ui)
    for value in ("not-base64!", "e30=", "eyJtZXNzYWdlIjogMX0="):  # junk, {}, {"message": 1}
        ui.cookies.set("tw_flash", value)
        page = await ui.get("/")
        assert page.status_code == 200 and 'id="flash"' not in page.text


async def test_the_dashboard_connects_to_temporal_only_when_a_page_needs_it(
    db_url: str, temporal_env, tmp_path
) -> None:
    """Its pages read the database; only a trade's live exits and the operators' actions need
    Temporal, so an unopened dashboard holds no client (test below: the first need connects)."""
    settings = ui_settings(db_url, temporal_env.client.service_client.config.target_host,
                           tmp_path)
    app = create_ui_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1:8300") as ui:
            await sign_in(ui)
            for path in PAGES:
                assert (await ui.get(path)).status_code == 200, path
            assert not app.state.tw.temporal.connected
            assert await app.state.tw.temporal.try_connect() is not None


async def test_a_running_trades_page_shows_its_exit_plan(ui_harness, tmp_path) -> None:
    """A trade with a take-profit ladder: its page lists each level (price, size, filled,
    status) and the stop, as the trade itself says (query `exits`)."""
    h = ui_harness
    await h.paper.admin.set_price("BTCUSDT", "95000")
    handle = await h.trade(sizing=Sizing(size=Decimal("0.0100")), sl=Decimal("90000"),
                           exits=ladder())
    await h.until_state(handle, laddered, "three levels working")
    row = await h.trade_row(handle)
    settings = h.settings.model_copy(update={"admin_token": SecretStr(TOKEN),
                                             "state_dir": tmp_path})
    app = create_ui_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1:8300") as ui:
            await sign_in(ui)
            page = await ui.get(f"/trades/{row.id}")
    assert page.status_code == 200, page.text[:500]
    levels = re.findall(r"<tr><td>TP(\d)</td><td class=\"num\">([\d.]+)</td>"
                        r"<td class=\"num\">([\d.]+)</td><td class=\"num\">([\d.]+)</td>"
                        r"<td>(\w+)</td></tr>", page.text)
    assert [(n, qty, status) for n, _, qty, _, status in levels] == [
        ("1", "0.005", "working"), ("2", "0.003", "working"), ("3", "0.002", "working")]
    assert re.search(r'id="exit-stop">90000<', page.text)
