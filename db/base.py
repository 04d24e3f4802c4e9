"""Declarative base: one naming convention (so Alembic's names are stable) and one money type."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from sqlalchemy import DateTime, MetaData, Numeric, func
from sqlalchemy.orm import DeclarativeBase, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# PostgreSQL `numeric` without a typmod keeps every digit it is given (0.0001 stays 0.0001),
# and SQLAlchemy hands it back as Decimal: money never passes through float.
MONEY = Numeric(asdecimal=True)

Money = Annotated[Decimal, mapped_column(MONEY)]
MaybeMoney = Annotated[Decimal | None, mapped_column(MONEY, nullable=True)]
CreatedAt = Annotated[
    datetime, mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
]
UpdatedAt = Annotated[
    datetime,
    mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    ),
]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def enum_check(column: str, values: type) -> str:
    """SQL for a CHECK that a text column holds one of an enum's values."""
    allowed = ", ".join(f"'{v.value}'" for v in values)  # type: ignore[attr-defined]
    return f"{column} IN ({allowed})"
