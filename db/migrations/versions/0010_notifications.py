"""notifications: the outbox of messages to the receivers, and a strategy's own receivers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Notifications (docs/design.md#notifications): `notification`, one row per message and kind of
receiver, written with the event it reports and delivered by the worker's sender with retries;
and the strategy's receivers, which replace the account's for its events.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Spelled out as they are at this revision (see 0005 on why).
RECEIVERS = "'webhook', 'telegram'"
STATUSES = "'pending', 'sent', 'skipped', 'failed', 'dropped'"
STRATEGY_COLUMNS = (
    ("notify_webhook_url", sa.Text()),
    ("notify_webhook_secret", sa.Text()),
    ("telegram_bot_token", sa.Text()),
    ("telegram_chat_id", sa.String(length=64)),
)


def upgrade() -> None:
    for name, type_ in STRATEGY_COLUMNS:
        op.add_column("strategy", sa.Column(name, type_, nullable=True))
    op.create_table(
        "notification",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("strategy_id", sa.BigInteger(), nullable=True),
        sa.Column("receiver", sa.String(length=12), nullable=False),
        sa.Column("payload", sa.dialects.postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=12), server_default=sa.text("'pending'"),
                  nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dedupe_key", sa.String(length=120), nullable=True),
        sa.CheckConstraint(f"receiver IN ({RECEIVERS})", name=op.f("ck_notification_receiver")),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_notification_status")),
        sa.ForeignKeyConstraint(["strategy_id"], ["strategy.id"], ondelete="SET NULL",
                                name=op.f("fk_notification_strategy_id_strategy")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    op.create_index("ix_notification_due", "notification", ["next_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("uq_notification_key", "notification", ["dedupe_key"], unique=True,
                    postgresql_where=sa.text("dedupe_key IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("uq_notification_key", table_name="notification")
    op.drop_index("ix_notification_due", table_name="notification")
    op.drop_table("notification")
    for name, _ in reversed(STRATEGY_COLUMNS):
        op.drop_column("strategy", name)
