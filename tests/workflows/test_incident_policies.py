"""Incidents resolved, not just reported (docs/design.md#incident-policies), on real parts: the
paper exchange over HTTP, PostgreSQL, the webhook app (its responder applies the account's
policy; its admin API is the operator's way in) and trades running in a real worker.

Unowned quantity is made by hand (a market order no trade sent); the watcher's rounds are
driven by the test (tests/workflows/test_incidents.py's Watch) so each step is visible."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select, text

from activities.incidents import IncidentBook, WorkingOrder, orphan_orders
from db.models import Incident, Order, Strategy, Trade
from tests.workflows.harness import Harness, strategy, until
from tests.workflows.test_incidents import (
    AUTH,
    BTC,
    QTY,
    TOKEN,
    Watch,
    buy_by_hand,
    close_by_hand,
    incidents,
)
from trading.ids import client_order_id
from trading.types import EntryType, IncidentPolicy, OrderType, PositionSide, Side, TradeStatus
from webhook.app import create_app
from workflows.contract import Sizing

HOUR = strategy(tracking_interval_s=3600)
PRICE = Decimal("95000")


@pytest_asyncio.fixture(loop_scope="session")
async def h(harness: Harness) -> AsyncIterator[Harness]:
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE incident"))
    await harness.paper.admin.set_price(BTC, str(PRICE))
    yield harness
    await _stop_adoptions(harness)


async def _stop_adoptions(h: Harness) -> None:
    """The adopting trades the webhook started (the harness stops only its own)."""
    async with h.sessionmaker() as session:
        ids = (await session.scalars(select(Trade.workflow_id).where(
            Trade.workflow_id.like("adopt-%")))).all()
    for wid in ids:
        try:
            await h.client.get_workflow_handle(wid).terminate("test finished")
        except Exception:  # noqa: BLE001 - already ended
            pass


@asynccontextmanager
async def webhook(h: Harness, tmp_path: Path, policy: IncidentPolicy) -> AsyncIterator[httpx.AsyncClient]:
    """The webhook app on the harness's database and task queue, with `policy`."""
    settings = h.settings.model_copy(update={
        "admin_token": SecretStr(TOKEN), "fast_path": False, "state_dir": tmp_path,
        "incident_policy": policy,
    })
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://tw") as http:
            yield http


async def adopting_trade(h: Harness, incident_id: int, attempt: int = 1) -> Trade | None:
    async with h.sessionmaker() as session:
        return await session.scalar(select(Trade).where(
            Trade.workflow_id.like(f"adopt-{incident_id}-{attempt}-%")))


async def tracked(h: Harness, incident_id: int, attempt: int = 1) -> Trade | None:
    trade = await adopting_trade(h, incident_id, attempt)
    return trade if trade is not None and trade.status == TradeStatus.TRACKING else None


async def rows_of(h: Harness, trade_id: int) -> list[Order]:
    async with h.sessionmaker() as session:
        return list((await session.scalars(
            select(Order).where(Order.trade_id == trade_id).order_by(Order.id))).all())


async def long_qty(h: Harness) -> Decimal:
    return sum((p.qty for p in await h.exchange.pending_positions(BTC)
                if p.side is PositionSide.LONG), Decimal(0))


async def stops(h: Harness) -> list[Any]:
    """Every pending TP/SL on BTC with a stop, order- or position-level."""
    return [o for o in await h.exchange.all_pending_tpsl_orders(BTC) if o.sl_price is not None]


async def raised(watch: Watch, h: Harness, kind: str = "unowned_quantity") -> Incident:
    async def one() -> Incident | None:
        rows = [r for r in await incidents(h) if r.kind == kind and r.status == "open"]
        return rows[0] if rows else None

    return await watch.until(one, f"an open {kind} incident")


async def resolved(watch: Watch, h: Harness, incident_id: int) -> Incident:
    async def done() -> Incident | None:
        row = next(r for r in await incidents(h) if r.id == incident_id)
        return row if row.status == "resolved" else None

    return await watch.until(done, f"incident #{incident_id} resolved")


def actions(row: Incident) -> list[tuple[str, str]]:
    return [(a["by"], a["action"]) for a in row.actions]


async def test_protect_adopts_unowned_quantity_into_a_trade_with_a_stop_5pct_from_mark(
    h: Harness, tmp_path: Path
) -> None:
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.PROTECT):
        await buy_by_hand(h)
        row = await raised(watch, h)
        trade = await until(lambda: tracked(h, row.id), "the policy adopts the quantity")
        assert (trade.filled_qty, trade.closed_qty, trade.strategy_id) == (QTY, 0, None)
        assert (trade.side, trade.intent, trade.signal_id) == ("LONG", "OPEN_LONG", None)
        [adopted] = [o for o in await rows_of(h, trade.id) if o.leg != "protection"]
        assert (adopted.leg, adopted.status, adopted.filled_qty, adopted.exchange_order_id) == (
            "adopted", "FILLED", QTY, None)  # booked, never sent

        [stop] = await until(lambda: _some(stops(h)), "the adopted quantity's stop is placed")
        assert stop.sl_price == PRICE * Decimal("0.95")  # 90250: 5 % below the mark, on the tick
        assert stop.tp_price is None

        done = await resolved(watch, h, row.id)
        assert done.resolution == f"balanced again: trade #{trade.id} owns it (adopt by policy)"
        assert actions(done) == [("watcher", "report"), ("policy", "adopt"), ("watcher", "resolve")]
        assert await long_qty(h) == QTY  # nothing sent: the position is as it was

        # Once balanced, nothing more is raised or adopted.
        await watch.rounds(3)
        assert [r.id for r in await incidents(h)] == [row.id]
        async with h.sessionmaker() as session:
            adoptions = (await session.scalars(
                select(Trade.id).where(Trade.workflow_id.like("adopt-%")))).all()
        assert adoptions == [trade.id]


async def _some(found: Any) -> list[Any] | None:
    rows = await found
    return rows or None


async def test_flatten_closes_unowned_quantity_reduce_only(h: Harness, tmp_path: Path) -> None:
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.FLATTEN):
        await buy_by_hand(h)
        row = await raised(watch, h)

        async def closed() -> Trade | None:
            trade = await adopting_trade(h, row.id)
            return trade if trade is not None and trade.status == TradeStatus.CLOSED else None

        trade = await until(closed, "the policy flattens the quantity")
        assert (trade.filled_qty, trade.closed_qty) == (QTY, QTY)
        assert await long_qty(h) == 0
        legs = [(o.leg, o.reduce_only, o.filled_qty) for o in await rows_of(h, trade.id)]
        # Protected by its stop from the moment it was adopted until the close filled.
        assert legs == [("adopted", False, QTY), ("protection", True, 0), ("flatten", True, QTY)]
        done = await resolved(watch, h, row.id)
        assert actions(done)[1] == ("policy", "flatten")
        assert await stops(h) == []  # the stop (if it was placed) went with the trade


async def test_adoption_takes_only_what_no_trade_owns_beside_a_running_trade(
    h: Harness, tmp_path: Path
) -> None:
    """A trade owns 0.01; 0.01 more is bought by hand. The adopted trade takes 0.01, never the
    trade's own, and both are protected apart (order-level TP/SLs)."""
    handle = await h.trade(sizing=Sizing(size=QTY), entry_type=EntryType.MARKET,
                           sl_pct=Decimal("2"), strat=HOUR)
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                        and s.protection.order_id is not None, "the trade is protected")
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.PROTECT):
        await buy_by_hand(h)
        row = await raised(watch, h)
        assert (row.exchange_qty, row.owned_qty) == (2 * QTY, QTY)
        adopted = await until(lambda: tracked(h, row.id), "the policy adopts the gap")
        assert adopted.filled_qty == QTY
        await resolved(watch, h, row.id)

        async def two_stops() -> list[Any] | None:
            found = await stops(h)
            return found if len(found) == 2 else None

        both = await until(two_stops, "each trade has its own stop")
        assert sorted(s.sl_qty for s in both) == [QTY, QTY]
        own = await h.state(handle)
        assert sorted(s.sl_price for s in both) == [PRICE * Decimal("0.95"), own.protection.sl]
        assert (own.filled_qty, own.protection.qty) == (QTY, QTY)  # the trade's own, untouched


async def test_report_leaves_it_to_the_operator_who_adopts_it_into_a_strategy(
    h: Harness, tmp_path: Path
) -> None:
    watch = Watch(h, settle_s="1")
    async with h.sessionmaker() as session, session.begin():
        strat = Strategy(name="hand-adopted", size_usdt=Decimal(100))
        session.add(strat)
        await session.flush()
        strategy_id = strat.id
    try:
        async with webhook(h, tmp_path, IncidentPolicy.REPORT) as api:
            await buy_by_hand(h)
            row = await raised(watch, h)
            await watch.rounds(3)
            assert await adopting_trade(h, row.id) is None  # report: nothing done on its own

            bad = await api.post(f"/incidents/{row.id}/adopt", headers=AUTH,
                                 json={"strategy": "no-such-strategy"})
            assert (bad.status_code, bad.json()["detail"]) == (404, "no strategy 'no-such-strategy'")
            too_far = await api.post(f"/incidents/{row.id}/adopt", headers=AUTH,
                                     json={"stop_pct": "100"})
            assert too_far.status_code == 422
            answer = await api.post(f"/incidents/{row.id}/adopt", headers=AUTH, json={
                "strategy": "hand-adopted", "stop_pct": "2", "by": "alice", "note": "mine"})
            assert answer.status_code == 202, answer.text
            body = answer.json()
            assert body["workflow_id"].startswith(f"adopt-{row.id}-1-")
            again = await api.post(f"/incidents/{row.id}/flatten", headers=AUTH, json={})
            assert again.status_code == 409
            assert "is being answered by trade" in again.json()["detail"]

            trade = await until(lambda: tracked(h, row.id), "the operator's adoption tracks")
            assert (trade.id, trade.strategy_id) == (body["trade_id"], strategy_id)
            [stop] = await until(lambda: _some(stops(h)), "its stop")
            assert stop.sl_price == PRICE * Decimal("0.98")
            done = await resolved(watch, h, row.id)
            assert actions(done)[1] == ("alice", "adopt")
            assert done.actions[1]["note"].endswith("% from the mark: mine")
    finally:
        await _stop_adoptions(h)
        async with h.sessionmaker() as session, session.begin():
            await session.execute(text('TRUNCATE trade, "order", fill CASCADE'))
            await session.execute(text("DELETE FROM strategy WHERE name = 'hand-adopted'"))


async def test_only_unowned_quantity_can_be_adopted(h: Harness, tmp_path: Path) -> None:
    """An orphan order has no quantity to adopt: the API says so and nothing is written."""
    book = IncidentBook(h.sessionmaker)
    [m] = orphan_orders([WorkingOrder("42", "TWXYZ1", BTC, "BUY LIMIT 0.01 @ 90000", QTY)], {})
    await book.apply({m.fingerprint: m}, {m.fingerprint: (m, datetime.now(UTC))})
    [row] = await incidents(h)
    async with webhook(h, tmp_path, IncidentPolicy.PROTECT) as api:
        for verb in ("adopt", "flatten"):
            answer = await api.post(f"/incidents/{row.id}/{verb}", headers=AUTH, json={})
            assert answer.status_code == 409
            assert "only unowned quantity can be adopted or flattened" in answer.json()["detail"]
        missing = await api.post("/incidents/999999/adopt", headers=AUTH, json={})
        assert missing.status_code == 404
    async with h.sessionmaker() as session:
        assert (await session.scalars(select(Trade))).all() == []
    [same] = await incidents(h)
    assert actions(same) == [("watcher", "report")]



async def test_protect_cancels_an_orphan_order_of_ours_and_reports_one_nobody_knows(
    h: Harness,
) -> None:
    """A working order whose trade ended is certainly ours: cancelled. One whose client id no
    row knows may be another installation's on the account: reported only."""
    watch = Watch(h, settle_s="1", policy=IncidentPolicy.PROTECT)
    stray = await h.exchange.place_order(
        symbol=BTC, side=Side.BUY, qty=QTY, order_type=OrderType.LIMIT, price=Decimal("89000"),
        client_id=client_order_id("trade-nobody-knows", "E", 1))
    ended_id = client_order_id("trade-that-ended", "E", 1)
    async with h.sessionmaker() as session, session.begin():
        row = Trade(workflow_id="trade-that-ended", symbol=BTC, side="LONG", intent="OPEN_LONG",
                    entry_type="limit", status=TradeStatus.CLOSED.value)
        session.add(row)
        await session.flush()
        session.add(Order(trade_id=row.id, client_order_id=ended_id, symbol=BTC, leg="entry",
                          side="BUY", order_type="LIMIT", qty=QTY, price=Decimal("88000"),
                          status="NEW"))
    ended = await h.exchange.place_order(symbol=BTC, side=Side.BUY, qty=QTY,
                                         order_type=OrderType.LIMIT, price=Decimal("88000"),
                                         client_id=ended_id)

    async def cancelled() -> Incident | None:
        rows = {r.order_id: r for r in await incidents(h)}
        done = rows.get(ended.order_id)
        return done if done is not None and done.status == "resolved" else None

    done = await watch.until(cancelled, "the orphan of an ended trade is cancelled")
    assert actions(done) == [("watcher", "report"), ("watcher", "cancel"), ("watcher", "resolve")]
    assert done.actions[1]["note"].startswith(f"cancelled order {ended.order_id} (policy protect)")
    assert done.resolution == "the order is no longer working"
    working = {o.order_id for o in await h.exchange.pending_orders(symbol=BTC)}
    assert stray.order_id in working and ended.order_id not in working
    [kept] = [r for r in await incidents(h) if r.order_id == stray.order_id]
    assert (kept.status, actions(kept)) == ("open", [("watcher", "report")])
    await h.exchange.cancel_orders(BTC, order_ids=[stray.order_id])


async def protected_trade(h: Harness) -> Any:
    handle = await h.trade(sizing=Sizing(size=QTY), entry_type=EntryType.MARKET,
                           sl_pct=Decimal("2"), strat=HOUR)
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                        and s.protection.order_id is not None, "the trade is protected")

    async def recorded() -> bool:  # what a resumed run reads back is on its row
        row = await adopting_trade_by_wid(h, handle.id)
        return row.position_id is not None and row.sl_price is not None

    await until(recorded, "its position and stop recorded")
    return handle


async def test_protect_resumes_a_trade_whose_workflow_is_gone_from_its_rows(
    h: Harness, tmp_path: Path
) -> None:
    """Terminated by hand while it owns 0.01 under its stop: a new run of the same workflow id
    rebuilds its books from its rows, keeps its stop (never a second one) and closes it on
    request with a client id the first run never used."""
    handle = await protected_trade(h)
    before = await h.state(handle)
    first_run = (await handle.describe()).run_id
    await handle.terminate("by hand, in the Temporal UI")
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.PROTECT):
        row = await raised(watch, h, kind="untracked_trade")
        assert row.fingerprint == f"untracked_trade:{handle.id}"

        async def resumed() -> Any:
            desc = await h.client.get_workflow_handle(handle.id).describe()
            return desc if desc.run_id != first_run and desc.status.name == "RUNNING" else None

        await until(resumed, "the policy resumes the trade")
        again = h.client.get_workflow_handle(handle.id)
        st = await h.until_state(again, lambda s: s.status is TradeStatus.TRACKING,
                                 "the resumed run tracks")
        assert (st.filled_qty, st.avg_entry_price) == (before.filled_qty, before.avg_entry_price)
        assert st.protection.order_id == before.protection.order_id  # the same stop, kept
        assert any(w.startswith("resumed by policy") for w in st.warnings)
        done = await resolved(watch, h, row.id)
        assert actions(done) == [("watcher", "report"), ("policy", "resume"), ("watcher", "resolve")]
        assert len(await stops(h)) == 1

        await again.signal("close", {"reason": "exit alert"})
        await until(lambda: _final(h, handle.id), "the resumed trade closes")
        assert await long_qty(h) == 0 and await stops(h) == []
        trade = await adopting_trade_by_wid(h, handle.id)
        ids = [o.client_order_id for o in await rows_of(h, trade.id)]
        assert len(ids) == len(set(ids)) == 3  # entry, its stop, the exit: none reused


async def adopting_trade_by_wid(h: Harness, workflow_id: str) -> Trade:
    async with h.sessionmaker() as session:
        trade = await session.scalar(select(Trade).where(Trade.workflow_id == workflow_id))
    assert trade is not None
    return trade


async def _final(h: Harness, workflow_id: str) -> Trade | None:
    trade = await adopting_trade_by_wid(h, workflow_id)
    return trade if trade.status == TradeStatus.CLOSED else None


async def test_a_workflow_gone_on_a_quiet_position_is_found_without_a_restart(
    h: Harness,
) -> None:
    """Nothing moves at the exchange, yet the watcher finds the trade whose workflow ended:
    it holds the open trades against Temporal's running workflows every LIVENESS_S."""
    handle = await protected_trade(h)
    watch = Watch(h, settle_s="1", liveness_s=0.5)
    await watch.rounds(2)  # the first round signals everyone: found running
    assert await incidents(h) == []
    await handle.terminate("a bug")
    row = await raised(watch, h, kind="untracked_trade")
    assert row.fingerprint == f"untracked_trade:{handle.id}"


async def test_report_leaves_an_untracked_trade_to_the_operator_who_resumes_it(
    h: Harness, tmp_path: Path
) -> None:
    handle = await protected_trade(h)
    await handle.terminate("by hand")
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.REPORT) as api:
        row = await raised(watch, h, kind="untracked_trade")
        await watch.rounds(3)
        assert actions(next(r for r in await incidents(h) if r.id == row.id)) == [
            ("watcher", "report")]
        wrong = await api.post(f"/incidents/{row.id}/adopt", headers=AUTH, json={})
        assert wrong.status_code == 409
        answer = await api.post(f"/incidents/{row.id}/resume", headers=AUTH,
                                json={"by": "carol"})
        assert answer.status_code == 202, answer.text
        assert answer.json()["workflow_id"] == handle.id
        soon = await api.post(f"/incidents/{row.id}/resume", headers=AUTH, json={})
        assert soon.status_code == 409 and "less than 60 s ago" in soon.json()["detail"]
        done = await resolved(watch, h, row.id)
        assert actions(done)[1] == ("carol", "resume")


async def _final_any(h: Harness, workflow_id: str) -> Trade | None:
    trade = await adopting_trade_by_wid(h, workflow_id)
    return trade if TradeStatus(trade.status).is_final else None


async def test_a_resumed_trade_whose_position_closed_meanwhile_never_takes_a_later_trades(
    h: Harness, tmp_path: Path
) -> None:
    """T1 owns 0.01; its workflow is terminated and, while nothing tracks it, its position is
    closed. T2 then opens 0.01 on the same side: a new position. Resumed, T1 tracks the
    position its row names (gone), never T2's: it records its quantity as closed and ends;
    T2's quantity and stop stay T2's (found by review; on the first resume code T1 took T2's
    position and its exit flattened T2)."""
    t1 = await protected_trade(h)
    await t1.terminate("by hand, in the Temporal UI")
    await close_by_hand(h)
    t2 = await protected_trade(h)
    t2_before = await h.state(t2)
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.REPORT) as api:
        row = await raised(watch, h, kind="untracked_trade")
        answer = await api.post(f"/incidents/{row.id}/resume", headers=AUTH, json={})
        assert answer.status_code == 202, answer.text
        ended = await until(lambda: _final_any(h, t1.id), "T1, resumed, ends")
        assert ended.filled_qty - ended.closed_qty == 0
        await watch.rounds(3)
        t2_now = await h.state(t2)
        assert (t2_now.status, t2_now.filled_qty - t2_now.closed_qty) == (TradeStatus.TRACKING, QTY)
        assert t2_now.protection.order_id == t2_before.protection.order_id
        assert await long_qty(h) == QTY and len(await stops(h)) == 1


async def test_a_resumed_trade_whose_stop_went_missing_is_protected_again_at_its_price(
    h: Harness, tmp_path: Path
) -> None:
    """Its TP/SL prices are on its row (recorded once the TP/SL was placed), so a resumed run
    places the lost stop again at the same price (found by review: the row had none)."""
    t1 = await protected_trade(h)
    before = await h.state(t1)
    await t1.terminate("by hand")
    [stop] = await stops(h)
    await h.exchange.cancel_tpsl_order(BTC, stop.id)
    row = await adopting_trade_by_wid(h, t1.id)
    assert (row.sl_price, row.position_id) == (before.protection.sl, stop.position_id)
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.PROTECT):
        await raised(watch, h, kind="untracked_trade")
        [again] = await until(lambda: _some(stops(h)), "the stop is placed again")
        assert (again.sl_price, again.sl_qty is None or again.sl_qty == QTY) == (
            before.protection.sl, True)


async def test_a_trade_without_a_recorded_position_is_not_resumed_blindly(
    h: Harness, tmp_path: Path
) -> None:
    """A trade recorded before position ids were kept cannot be told apart from another
    trade's quantity on its side: resuming it is refused, and says what to do."""
    t1 = await protected_trade(h)
    await t1.terminate("by hand")
    async with h.sessionmaker() as session, session.begin():
        await session.execute(text("UPDATE trade SET position_id = NULL WHERE workflow_id = :w"),
                              {"w": t1.id})
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.REPORT) as api:
        row = await raised(watch, h, kind="untracked_trade")
        answer = await api.post(f"/incidents/{row.id}/resume", headers=AUTH, json={})
        assert answer.status_code == 409
        assert "position id was never recorded" in answer.json()["detail"]


async def test_adoption_beside_a_resting_limit_entry_counts_what_it_filled_and_adopts(
    h: Harness, tmp_path: Path
) -> None:
    """A limit entry resting on the same side is not "in flight" for ever: the adoption reads
    what it filled at the exchange (before and after the position) and adopts at once (found
    by review: every attempt waited 5 minutes and gave up)."""
    resting = await h.trade(entry_type=EntryType.LIMIT, reference_price=Decimal("90000"),
                            sizing=Sizing(size=QTY), strat=HOUR)
    await h.until_state(resting, lambda s: bool(s.open_orders), "the limit entry rests")
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.PROTECT):
        await buy_by_hand(h)
        row = await raised(watch, h)
        adopted = await until(lambda: tracked(h, row.id), "adopted beside the resting entry")
        assert adopted.filled_qty == QTY
        assert bool((await h.state(resting)).open_orders)  # the entry still rests, its own


async def test_an_adoption_whose_workflow_was_terminated_is_counted_and_tried_again(
    h: Harness, tmp_path: Path
) -> None:
    """An attempt's workflow ended before it booked anything: its trade is ended CANCELLED
    and noted on the incident, and the next attempt adopts (found by review: the PENDING row
    was restarted for ever, refused as a duplicate)."""
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.REPORT) as api:
        await buy_by_hand(h)
        row = await raised(watch, h)
        # An operator's attempt whose workflow is terminated at once.
        await h.paper.admin.faults(http_5xx=1000)  # it cannot book while the exchange fails
        answer = await api.post(f"/incidents/{row.id}/adopt", headers=AUTH, json={})
        assert answer.status_code == 202, answer.text
        await h.client.get_workflow_handle(answer.json()["workflow_id"]).terminate("by hand")
        await h.paper.admin.faults(http_5xx=0)
    async with webhook(h, tmp_path, IncidentPolicy.PROTECT):
        second = await until(lambda: tracked(h, row.id, attempt=2), "the second attempt adopts")
        assert second.filled_qty == QTY
        first = await adopting_trade(h, row.id, 1)
        assert first is not None and first.status == TradeStatus.CANCELLED
        assert "before it adopted anything" in (first.error or "")
        noted = next(r for r in await incidents(h) if r.id == row.id)
        assert any(a["action"] == "note" and "attempt 1" in a["note"] for a in noted.actions)
