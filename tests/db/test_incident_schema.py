"""The `incident` table as the migration builds it: its CHECKs accept exactly the values of
trading.types' enums, and one mismatch has at most one current row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from trading.types import IncidentKind, IncidentStatus, PositionSide

INSERT = text(
    "INSERT INTO incident (fingerprint, kind, symbol, side, exchange_qty, owned_qty, detail,"
    " status, cleared_at) VALUES (:fp, :kind, 'SCHEMATEST', :side, 1, 0, 'test', :status,"
    " :cleared_at)"
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incident WHERE symbol = 'SCHEMATEST'"))
        engine.dispose()


def _insert(engine: Engine, fp: str, kind: str = "unowned_quantity", side: str | None = "LONG",
            status: str = "open", cleared_at: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(INSERT, {"fp": fp, "kind": kind, "side": side, "status": status,
                              "cleared_at": cleared_at})


def test_every_enum_value_is_accepted_and_nothing_else(engine: Engine) -> None:
    for kind in IncidentKind:
        for side in (*PositionSide, None):
            _insert(engine, f"schema:{kind}:{side}", kind.value, side and side.value)
    for status in IncidentStatus:
        cleared = None if status is IncidentStatus.OPEN else "2026-12-01"
        _insert(engine, f"schema:status:{status}", status=status.value, cleared_at=cleared)
    for column, bad, constraint in (("kind", {"kind": "lost"}, "ck_incident_kind"),
                                    ("side", {"side": "BUY"}, "ck_incident_side"),
                                    ("status", {"status": "closed"}, "ck_incident_status")):
        with pytest.raises(IntegrityError, match=constraint):
            _insert(engine, f"schema:bad:{column}", **bad)


def test_one_current_row_per_mismatch_and_an_open_one_is_current(engine: Engine) -> None:
    _insert(engine, "schema:one", status="resolved", cleared_at="2026-12-01")
    _insert(engine, "schema:one")
    with pytest.raises(IntegrityError, match="uq_incident_current"):
        _insert(engine, "schema:one", status="dismissed")
    with pytest.raises(IntegrityError, match="ck_incident_open_is_current"):
        _insert(engine, "schema:two", cleared_at="2026-12-01")
