"""strategy parameters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.add_column('strategy', sa.Column('size', sa.Numeric(), nullable=True))
    op.add_column('strategy', sa.Column('size_usdt', sa.Numeric(), server_default=sa.text('100'), nullable=True))
    op.add_column('strategy', sa.Column('size_pct', sa.Numeric(), nullable=True))
    op.add_column('strategy', sa.Column('entry_type', sa.String(length=10), server_default=sa.text("'market'"), nullable=False))
    op.add_column('strategy', sa.Column('leverage', sa.Integer(), nullable=True))
    op.add_column('strategy', sa.Column('margin_mode', sa.String(length=10), nullable=True))
    op.add_column('strategy', sa.Column('chase_interval_s', sa.Numeric(), server_default=sa.text('2'), nullable=False))
    op.add_column('strategy', sa.Column('max_chases', sa.Integer(), server_default=sa.text('10'), nullable=False))
    op.add_column('strategy', sa.Column('max_slippage_bps', sa.Numeric(), server_default=sa.text('50'), nullable=False))
    op.add_column('strategy', sa.Column('chase_fallback', sa.String(length=10), server_default=sa.text("'market'"), nullable=False))
    op.add_column('strategy', sa.Column('exit_entry_type', sa.String(length=10), server_default=sa.text("'market'"), nullable=False))
    op.add_column('strategy', sa.Column('max_alert_age_s', sa.Integer(), server_default=sa.text('60'), nullable=False))
    op.add_column('strategy', sa.Column('dedupe_window_s', sa.Integer(), server_default=sa.text('60'), nullable=False))
    op.add_column('strategy', sa.Column('notional_floor', sa.Numeric(), nullable=True))
    op.add_column('strategy', sa.Column('allow_split', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('strategy', sa.Column('on_protection_refused', sa.String(length=10), server_default=sa.text("'flatten'"), nullable=False))
    op.add_column('strategy', sa.Column('tracking_interval_s', sa.Integer(), server_default=sa.text('300'), nullable=False))
    op.add_column('strategy', sa.Column('stop_type', sa.String(length=12), server_default=sa.text("'MARK_PRICE'"), nullable=False))
    


def downgrade() -> None:
    
    op.drop_column('strategy', 'stop_type')
    op.drop_column('strategy', 'tracking_interval_s')
    op.drop_column('strategy', 'on_protection_refused')
    op.drop_column('strategy', 'allow_split')
    op.drop_column('strategy', 'notional_floor')
    op.drop_column('strategy', 'dedupe_window_s')
    op.drop_column('strategy', 'max_alert_age_s')
    op.drop_column('strategy', 'exit_entry_type')
    op.drop_column('strategy', 'chase_fallback')
    op.drop_column('strategy', 'max_slippage_bps')
    op.drop_column('strategy', 'max_chases')
    op.drop_column('strategy', 'chase_interval_s')
    op.drop_column('strategy', 'margin_mode')
    op.drop_column('strategy', 'leverage')
    op.drop_column('strategy', 'entry_type')
    op.drop_column('strategy', 'size_pct')
    op.drop_column('strategy', 'size_usdt')
    op.drop_column('strategy', 'size')
    
