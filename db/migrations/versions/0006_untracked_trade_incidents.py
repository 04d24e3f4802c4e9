"""incident kind untracked_trade: an open trade whose workflow no longer runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The kinds as they are at this revision (see 0005 on why they are spelled out).
BEFORE = "'unowned_quantity', 'missing_quantity', 'orphan_order'"
AFTER = "'unowned_quantity', 'missing_quantity', 'orphan_order', 'untracked_trade'"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_incident_kind"), "incident", type_="check")
    op.create_check_constraint(op.f("ck_incident_kind"), "incident", f"kind IN ({AFTER})")


def downgrade() -> None:
    op.execute("DELETE FROM incident WHERE kind = 'untracked_trade'")
    op.drop_constraint(op.f("ck_incident_kind"), "incident", type_="check")
    op.create_check_constraint(op.f("ck_incident_kind"), "incident", f"kind IN ({BEFORE})")
