"""The dashboard over HTTP (in-process, real PostgreSQL and Temporal): sign-in, the cookie's
flags, CSRF, and every page answering once signed in. tests/ui/test_browser.py drives the same
app in Chromium on real trades."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from db.models import RiskEvent, RiskState
from tests.ui.conftest import TOKEN

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
