"""trade.position_id: the exchange position a trade's quantity is in

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

A trade resumed after its workflow was gone must track the position it was in, never whatever
position is open on its side now (docs/design.md#resuming-a-trade).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("trade", sa.Column("position_id", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("trade", "position_id")
