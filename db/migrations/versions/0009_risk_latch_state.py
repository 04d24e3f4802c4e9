"""risk: the latch's acknowledged loss and its figure of today's PnL per scope

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

The daily loss latch (docs/design.md#risk) keeps in PostgreSQL what it kept in memory: the loss
an operator's change of a latched scope acknowledged (`risk_state.acknowledged_loss`, with the
`changed_at` of that change in `acknowledged_at`), so a restarted watcher and the worker's
startup round hold one level; and `risk_pnl`, each checked scope's PnL today as the latch last
computed it, which `GET /risk` shows next to the scope's daily loss limits.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("risk_state", sa.Column("acknowledged_loss", sa.Numeric(asdecimal=True),
                                          nullable=True))
    op.add_column("risk_state", sa.Column("acknowledged_at", sa.DateTime(timezone=True),
                                          nullable=True))
    op.create_table(
        "risk_pnl",
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("realized", sa.Numeric(asdecimal=True), nullable=False),
        sa.Column("unrealized", sa.Numeric(asdecimal=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_risk_pnl")),
    )


def downgrade() -> None:
    op.drop_table("risk_pnl")
    op.drop_column("risk_state", "acknowledged_at")
    op.drop_column("risk_state", "acknowledged_loss")
