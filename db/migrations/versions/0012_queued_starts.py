"""queued starts: a signal answered 202 during a burst before its workflow started

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

`signal.outcome` gains QUEUED (webhook/start_queue.py): recorded and answered from the durable
record, its start queued behind the answer. It holds its dedupe key like ACCEPTED, so the
unique index covers both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_OLD = "'ACCEPTED', 'DUPLICATE', 'REFUSED', 'NOT_STARTED', 'NOTHING_TO_CLOSE'"
_NEW = _OLD + ", 'QUEUED'"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_signal_outcome"), "signal", type_="check")
    op.create_check_constraint(op.f("ck_signal_outcome"), "signal", f"outcome IN ({_NEW})")
    op.drop_index("uq_signal_accepted_key", table_name="signal")
    op.create_index("uq_signal_accepted_key", "signal", ["strategy_id", "dedupe_key"],
                    unique=True, postgresql_where=sa.text("outcome IN ('ACCEPTED', 'QUEUED')"))


def downgrade() -> None:
    # A queued alert not started yet is what an unanswered start was before: NOT_STARTED,
    # which the outbox starts from its record.
    op.execute("UPDATE signal SET outcome = 'NOT_STARTED' WHERE outcome = 'QUEUED'")
    op.drop_index("uq_signal_accepted_key", table_name="signal")
    op.create_index("uq_signal_accepted_key", "signal", ["strategy_id", "dedupe_key"],
                    unique=True, postgresql_where=sa.text("outcome = 'ACCEPTED'"))
    op.drop_constraint(op.f("ck_signal_outcome"), "signal", type_="check")
    op.create_check_constraint(op.f("ck_signal_outcome"), "signal", f"outcome IN ({_OLD})")
