"""risk: trading states, their audit trail, the day's starting equity, strategy limits

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

The risk engine (docs/design.md#risk): `risk_state` (one row per scope that is not ACTIVE, or
was changed), `risk_event` (every change: who, when, why), `risk_day` (the equity the daily
loss percentage is measured against), the strategy's limits, the notional a trade committed
at its first claim, and the incident kind `daily_loss`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Spelled out as they are at this revision (see 0005 on why).
STATES = "'ACTIVE', 'REDUCE_ONLY', 'HALTED'"
KINDS_BEFORE = "'unowned_quantity', 'missing_quantity', 'orphan_order', 'untracked_trade'"
KINDS_AFTER = KINDS_BEFORE + ", 'daily_loss'"
MONEY_LIMITS = (
    "max_order_usdt", "max_position_usdt", "max_exposure_usdt", "min_free_margin_usdt",
    "daily_loss_usdt", "daily_loss_pct",
)
INT_LIMITS = ("max_open_trades", "max_leverage")


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "risk_state",
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("latched", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("flatten", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=80), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("ck_risk_state_state")),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_risk_state")),
    )
    op.create_table(
        "risk_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("state_before", sa.String(length=12), nullable=False),
        sa.Column("state_after", sa.String(length=12), nullable=False),
        sa.Column("flatten", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("latched", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint(f"state_before IN ({STATES})", name=op.f("ck_risk_event_state_before")),
        sa.CheckConstraint(f"state_after IN ({STATES})", name=op.f("ck_risk_event_state_after")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_event")),
    )
    op.create_index(op.f("ix_risk_event_scope"), "risk_event", ["scope"], unique=False)
    op.create_table(
        "risk_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("equity", sa.Numeric(asdecimal=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_risk_day")),
    )
    for name in MONEY_LIMITS:
        op.add_column("strategy", sa.Column(name, sa.Numeric(asdecimal=True), nullable=True))
    for name in INT_LIMITS:
        op.add_column("strategy", sa.Column(name, sa.Integer(), nullable=True))
    op.add_column("trade", sa.Column("committed_usdt", sa.Numeric(asdecimal=True), nullable=True))
    op.drop_constraint(op.f("ck_incident_kind"), "incident", type_="check")
    op.create_check_constraint(op.f("ck_incident_kind"), "incident", f"kind IN ({KINDS_AFTER})")


def downgrade() -> None:
    op.execute("DELETE FROM incident WHERE kind = 'daily_loss'")
    op.drop_constraint(op.f("ck_incident_kind"), "incident", type_="check")
    op.create_check_constraint(op.f("ck_incident_kind"), "incident", f"kind IN ({KINDS_BEFORE})")
    op.drop_column("trade", "committed_usdt")
    for name in (*MONEY_LIMITS, *INT_LIMITS):
        op.drop_column("strategy", name)
    op.drop_table("risk_day")
    op.drop_index(op.f("ix_risk_event_scope"), table_name="risk_event")
    op.drop_table("risk_event")
    op.drop_table("risk_state")
