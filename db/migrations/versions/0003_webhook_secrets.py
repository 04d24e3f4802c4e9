"""webhook secrets, rate limit and source-address allow-list per strategy

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('strategy', sa.Column('secret_hash', sa.String(length=64), nullable=True))
    op.add_column('strategy', sa.Column('secret_rotated_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('strategy', sa.Column('rate_limit_per_min', sa.Integer(), server_default=sa.text('60'), nullable=False))
    op.add_column('strategy', sa.Column('allowed_ips', postgresql.ARRAY(sa.String(length=64)), server_default=sa.text("'{}'"), nullable=False))
    op.add_column('strategy', sa.Column('allow_tradingview_ips', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    # Autogenerate does not see CHECK constraints: this one mirrors the model's by hand.
    op.create_check_constraint(op.f('ck_strategy_rate_limit_positive'), 'strategy', 'rate_limit_per_min > 0')


def downgrade() -> None:
    op.drop_constraint(op.f('ck_strategy_rate_limit_positive'), 'strategy', type_='check')
    op.drop_column('strategy', 'allow_tradingview_ips')
    op.drop_column('strategy', 'allowed_ips')
    op.drop_column('strategy', 'rate_limit_per_min')
    op.drop_column('strategy', 'secret_rotated_at')
    op.drop_column('strategy', 'secret_hash')
