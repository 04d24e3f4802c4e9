"""foundation schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('strategy',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategy')),
    sa.UniqueConstraint('name', name=op.f('uq_strategy_name'))
    )
    op.create_table('trading_pair',
    sa.Column('symbol', sa.String(length=40), nullable=False),
    sa.Column('base', sa.String(length=20), nullable=False),
    sa.Column('quote', sa.String(length=20), nullable=False),
    sa.Column('qty_step', sa.Numeric(), nullable=False),
    sa.Column('price_tick', sa.Numeric(), nullable=False),
    sa.Column('min_qty', sa.Numeric(), nullable=False),
    sa.Column('max_limit_qty', sa.Numeric(), nullable=False),
    sa.Column('max_market_qty', sa.Numeric(), nullable=False),
    sa.Column('min_leverage', sa.Integer(), nullable=False),
    sa.Column('max_leverage', sa.Integer(), nullable=False),
    sa.Column('default_leverage', sa.Integer(), nullable=False),
    sa.Column('min_buy_price_offset', sa.Numeric(), nullable=True),
    sa.Column('max_sell_price_offset', sa.Numeric(), nullable=True),
    sa.Column('price_protect_scope', sa.Numeric(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('api_supported', sa.Boolean(), nullable=False),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('OPEN', 'CANCEL_ONLY', 'STOP', 'PREVIEW')", name=op.f('ck_trading_pair_status')),
    sa.CheckConstraint('min_qty >= 0 AND max_limit_qty >= min_qty', name=op.f('ck_trading_pair_qty_bounds')),
    sa.CheckConstraint('qty_step > 0 AND price_tick > 0', name=op.f('ck_trading_pair_steps_positive')),
    sa.PrimaryKeyConstraint('symbol', name=op.f('pk_trading_pair'))
    )
    op.create_table('position',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('exchange_position_id', sa.String(length=64), nullable=False),
    sa.Column('symbol', sa.String(length=40), nullable=False),
    sa.Column('side', sa.String(length=10), nullable=False),
    sa.Column('position_mode', sa.String(length=10), nullable=False),
    sa.Column('margin_mode', sa.String(length=10), nullable=False),
    sa.Column('leverage', sa.Integer(), nullable=False),
    sa.Column('qty', sa.Numeric(), nullable=False),
    sa.Column('avg_open_price', sa.Numeric(), nullable=True),
    sa.Column('realized_pnl', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('unrealized_pnl', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('fee', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('open', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("margin_mode IN ('ISOLATION', 'CROSS')", name=op.f('ck_position_margin_mode')),
    sa.CheckConstraint("position_mode IN ('ONE_WAY', 'HEDGE')", name=op.f('ck_position_position_mode')),
    sa.CheckConstraint("side IN ('LONG', 'SHORT')", name=op.f('ck_position_side')),
    sa.CheckConstraint('qty >= 0', name=op.f('ck_position_qty_nonnegative')),
    sa.ForeignKeyConstraint(['symbol'], ['trading_pair.symbol'], name=op.f('fk_position_symbol_trading_pair')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_position')),
    sa.UniqueConstraint('exchange_position_id', name=op.f('uq_position_exchange_position_id'))
    )
    op.create_index(op.f('ix_position_symbol'), 'position', ['symbol'], unique=False)
    op.create_table('signal',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('strategy_id', sa.BigInteger(), nullable=True),
    sa.Column('strategy_name', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=128), nullable=True),
    sa.Column('symbol', sa.String(length=40), nullable=True),
    sa.Column('intent', sa.String(length=20), nullable=True),
    sa.Column('alert_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source_ip', sa.String(length=64), nullable=True),
    sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('workflow_id', sa.String(length=200), nullable=True),
    sa.CheckConstraint("outcome IN ('ACCEPTED', 'DUPLICATE', 'REFUSED', 'NOT_STARTED', 'NOTHING_TO_CLOSE')", name=op.f('ck_signal_outcome')),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategy.id'], name=op.f('fk_signal_strategy_id_strategy')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signal'))
    )
    op.create_index(op.f('ix_signal_strategy_id'), 'signal', ['strategy_id'], unique=False)
    op.create_index('uq_signal_accepted_key', 'signal', ['strategy_id', 'dedupe_key'], unique=True, postgresql_where=sa.text("outcome = 'ACCEPTED'"))
    op.create_table('trade',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('signal_id', sa.BigInteger(), nullable=True),
    sa.Column('strategy_id', sa.BigInteger(), nullable=True),
    sa.Column('symbol', sa.String(length=40), nullable=False),
    sa.Column('side', sa.String(length=10), nullable=False),
    sa.Column('intent', sa.String(length=20), nullable=False),
    sa.Column('entry_type', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('target_qty', sa.Numeric(), nullable=True),
    sa.Column('filled_qty', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('avg_entry_price', sa.Numeric(), nullable=True),
    sa.Column('closed_qty', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('avg_exit_price', sa.Numeric(), nullable=True),
    sa.Column('realized_pnl', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('fees', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('leverage', sa.Integer(), nullable=True),
    sa.Column('tp_price', sa.Numeric(), nullable=True),
    sa.Column('sl_price', sa.Numeric(), nullable=True),
    sa.Column('warning', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("entry_type IN ('market', 'limit', 'chase')", name=op.f('ck_trade_entry_type')),
    sa.CheckConstraint("intent IN ('OPEN_LONG', 'OPEN_SHORT', 'CLOSE_LONG', 'CLOSE_SHORT', 'REVERSE_TO_LONG', 'REVERSE_TO_SHORT')", name=op.f('ck_trade_intent')),
    sa.CheckConstraint("side IN ('LONG', 'SHORT')", name=op.f('ck_trade_side')),
    sa.CheckConstraint("status IN ('PENDING', 'ENTERING', 'TRACKING', 'CLOSING', 'CLOSED', 'CANCELLED', 'FAILED', 'REFUSED')", name=op.f('ck_trade_status')),
    sa.CheckConstraint('filled_qty >= 0 AND closed_qty >= 0', name=op.f('ck_trade_qty_nonnegative')),
    sa.ForeignKeyConstraint(['signal_id'], ['signal.id'], name=op.f('fk_trade_signal_id_signal')),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategy.id'], name=op.f('fk_trade_strategy_id_strategy')),
    sa.ForeignKeyConstraint(['symbol'], ['trading_pair.symbol'], name=op.f('fk_trade_symbol_trading_pair')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trade')),
    sa.UniqueConstraint('workflow_id', name=op.f('uq_trade_workflow_id'))
    )
    op.create_index('ix_trade_open_by_strategy_symbol', 'trade', ['strategy_id', 'symbol', 'status'], unique=False)
    op.create_index(op.f('ix_trade_signal_id'), 'trade', ['signal_id'], unique=False)
    op.create_index(op.f('ix_trade_status'), 'trade', ['status'], unique=False)
    op.create_table('order',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('trade_id', sa.BigInteger(), nullable=False),
    sa.Column('client_order_id', sa.String(length=40), nullable=False),
    sa.Column('exchange_order_id', sa.String(length=64), nullable=True),
    sa.Column('symbol', sa.String(length=40), nullable=False),
    sa.Column('leg', sa.String(length=20), nullable=False),
    sa.Column('side', sa.String(length=10), nullable=False),
    sa.Column('order_type', sa.String(length=10), nullable=False),
    sa.Column('effect', sa.String(length=12), nullable=True),
    sa.Column('reduce_only', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('qty', sa.Numeric(), nullable=False),
    sa.Column('price', sa.Numeric(), nullable=True),
    sa.Column('filled_qty', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('avg_price', sa.Numeric(), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('fee', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('realized_pnl', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("order_type IN ('LIMIT', 'MARKET')", name=op.f('ck_order_order_type')),
    sa.CheckConstraint("side IN ('BUY', 'SELL')", name=op.f('ck_order_side')),
    sa.CheckConstraint("status IN ('SENDING', 'INIT', 'NEW', 'PART_FILLED', 'FILLED', 'CANCELED', 'PART_FILLED_CANCELED', 'EXPIRED', 'SYSTEM_CANCELED', 'REJECTED')", name=op.f('ck_order_status')),
    sa.CheckConstraint('qty > 0 AND filled_qty >= 0 AND filled_qty <= qty', name=op.f('ck_order_qty_bounds')),
    sa.ForeignKeyConstraint(['trade_id'], ['trade.id'], name=op.f('fk_order_trade_id_trade'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order')),
    sa.UniqueConstraint('client_order_id', name=op.f('uq_order_client_order_id'))
    )
    op.create_index(op.f('ix_order_exchange_order_id'), 'order', ['exchange_order_id'], unique=False)
    op.create_index(op.f('ix_order_trade_id'), 'order', ['trade_id'], unique=False)
    op.create_table('fill',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('exchange_trade_id', sa.String(length=64), nullable=False),
    sa.Column('qty', sa.Numeric(), nullable=False),
    sa.Column('price', sa.Numeric(), nullable=False),
    sa.Column('fee', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('realized_pnl', sa.Numeric(), server_default=sa.text('0'), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=True),
    sa.Column('filled_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('qty > 0 AND price > 0', name=op.f('ck_fill_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_fill_order_id_order'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fill')),
    sa.UniqueConstraint('exchange_trade_id', name=op.f('uq_fill_exchange_trade_id'))
    )
    op.create_index(op.f('ix_fill_order_id'), 'fill', ['order_id'], unique=False)
    


def downgrade() -> None:
    
    op.drop_index(op.f('ix_fill_order_id'), table_name='fill')
    op.drop_table('fill')
    op.drop_index(op.f('ix_order_trade_id'), table_name='order')
    op.drop_index(op.f('ix_order_exchange_order_id'), table_name='order')
    op.drop_table('order')
    op.drop_index(op.f('ix_trade_status'), table_name='trade')
    op.drop_index(op.f('ix_trade_signal_id'), table_name='trade')
    op.drop_index('ix_trade_open_by_strategy_symbol', table_name='trade')
    op.drop_table('trade')
    op.drop_index('uq_signal_accepted_key', table_name='signal', postgresql_where=sa.text("outcome = 'ACCEPTED'"))
    op.drop_index(op.f('ix_signal_strategy_id'), table_name='signal')
    op.drop_table('signal')
    op.drop_index(op.f('ix_position_symbol'), table_name='position')
    op.drop_table('position')
    op.drop_table('trading_pair')
    op.drop_table('strategy')
    
