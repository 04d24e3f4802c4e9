"""exits: a strategy's default exit plan and risk-% sizing

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Exits (docs/design.md#exits): `strategy.exits`, the default take-profit ladder and trailing
stop (trading/exits.py ExitPlan, as JSON), and `strategy.risk_pct`, a fourth default sizing
(the stop-loss, if hit, loses this share of the equity).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("strategy", sa.Column("exits", JSONB(), nullable=True))
    op.add_column("strategy", sa.Column("risk_pct", sa.Numeric(asdecimal=True), nullable=True))


def downgrade() -> None:
    # A strategy sized by risk_pct falls back to the default sizing.
    op.execute("UPDATE strategy SET size_usdt = 100 WHERE risk_pct IS NOT NULL")
    op.drop_column("strategy", "risk_pct")
    op.drop_column("strategy", "exits")
