"""incident: mismatches between the exchange and what the open trades own

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The CHECKs spell out trading.types' values as they are today: a migration is a record of the
# schema at its revision, so it must not change when an enum grows (a later migration will).
KINDS = "'unowned_quantity', 'missing_quantity', 'orphan_order'"
STATUSES = "'open', 'resolved', 'dismissed'"


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("client_order_id", sa.String(length=40), nullable=True),
        sa.Column("exchange_qty", sa.Numeric(asdecimal=True), nullable=False),
        sa.Column("owned_qty", sa.Numeric(asdecimal=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column(
            "first_seen", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "last_seen", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=12), server_default=sa.text("'open'"), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column(
            "actions", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'"),
            nullable=False,
        ),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_incident_kind")),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_incident_status")),
        sa.CheckConstraint("side IS NULL OR side IN ('LONG', 'SHORT')", name=op.f("ck_incident_side")),
        sa.CheckConstraint(
            "exchange_qty >= 0 AND owned_qty >= 0", name=op.f("ck_incident_qty_nonnegative")
        ),
        sa.CheckConstraint(
            "status <> 'open' OR cleared_at IS NULL", name=op.f("ck_incident_open_is_current")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
    )
    op.create_index(op.f("ix_incident_status"), "incident", ["status"], unique=False)
    op.create_index(
        "uq_incident_current", "incident", ["fingerprint"], unique=True,
        postgresql_where=sa.text("cleared_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_incident_current", table_name="incident")
    op.drop_index(op.f("ix_incident_status"), table_name="incident")
    op.drop_table("incident")
