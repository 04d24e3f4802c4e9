"""The database: what Tradewire knows about pairs, strategies, alerts, trades and their orders.

Every amount is `numeric` (Decimal), every timestamp is timezone-aware, and every column whose
value has a domain carries a CHECK built from the enum in `trading.types`, so the database and
the code cannot drift apart silently.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, CreatedAt, MaybeMoney, Money, UpdatedAt, enum_check
from trading.types import (
    ChaseFallback,
    EntryType,
    IncidentKind,
    IncidentStatus,
    Intent,
    MarginMode,
    NotifyReceiver,
    NotifyStatus,
    OnProtectionRefused,
    OrderStatus,
    OrderType,
    PairStatus,
    PositionMode,
    PositionSide,
    Side,
    SignalOutcome,
    StopType,
    TradeStatus,
    TradingState,
)


class TradingPair(Base):
    """The single source of truth for a pair's rules, as last synced from the exchange."""

    __tablename__ = "trading_pair"
    __table_args__ = (
        CheckConstraint(enum_check("status", PairStatus), name="status"),
        CheckConstraint("qty_step > 0 AND price_tick > 0", name="steps_positive"),
        CheckConstraint("min_qty >= 0 AND max_limit_qty >= min_qty", name="qty_bounds"),
    )

    symbol: Mapped[str] = mapped_column(String(40), primary_key=True)
    base: Mapped[str] = mapped_column(String(20))
    quote: Mapped[str] = mapped_column(String(20))
    qty_step: Mapped[Money]
    price_tick: Mapped[Money]
    min_qty: Mapped[Money]
    max_limit_qty: Mapped[Money]
    max_market_qty: Mapped[Money]
    min_leverage: Mapped[int]
    max_leverage: Mapped[int]
    default_leverage: Mapped[int]
    min_buy_price_offset: Mapped[MaybeMoney]
    max_sell_price_offset: Mapped[MaybeMoney]
    price_protect_scope: Mapped[MaybeMoney]
    status: Mapped[str] = mapped_column(String(20))
    api_supported: Mapped[bool]
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Strategy(Base):
    """A named source of alerts, with its defaults and limits (a trade snapshots them)."""

    __tablename__ = "strategy"

    __table_args__ = (
        CheckConstraint(
            "num_nonnulls(size, size_usdt, size_pct, risk_pct) = 1", name="one_sizing"
        ),
        CheckConstraint(enum_check("entry_type", EntryType), name="entry_type"),
        CheckConstraint(enum_check("exit_entry_type", EntryType), name="exit_entry_type"),
        CheckConstraint(enum_check("chase_fallback", ChaseFallback), name="chase_fallback"),
        CheckConstraint(
            enum_check("on_protection_refused", OnProtectionRefused), name="on_protection_refused"
        ),
        CheckConstraint("margin_mode IS NULL OR " + enum_check("margin_mode", MarginMode), name="margin_mode"),
        CheckConstraint(enum_check("stop_type", StopType), name="stop_type"),
        CheckConstraint(
            "chase_interval_s > 0 AND max_chases >= 0 AND max_slippage_bps >= 0"
            " AND max_alert_age_s > 0 AND dedupe_window_s > 0 AND tracking_interval_s > 0",
            name="positive_limits",
        ),
        CheckConstraint("rate_limit_per_min > 0", name="rate_limit_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    # Default sizing: exactly one of the three (an alert's own sizing wins).
    size: Mapped[MaybeMoney]
    size_usdt: Mapped[MaybeMoney] = mapped_column(server_default=text("100"))
    size_pct: Mapped[MaybeMoney]
    risk_pct: Mapped[MaybeMoney]  # the stop-loss, if hit, loses this share of the equity
    entry_type: Mapped[str] = mapped_column(String(10), server_default=text("'market'"))
    leverage: Mapped[int | None]
    margin_mode: Mapped[str | None] = mapped_column(String(10))
    chase_interval_s: Mapped[Money] = mapped_column(server_default=text("2"))
    max_chases: Mapped[int] = mapped_column(server_default=text("10"))
    max_slippage_bps: Mapped[Money] = mapped_column(server_default=text("50"))
    chase_fallback: Mapped[str] = mapped_column(String(10), server_default=text("'market'"))
    exit_entry_type: Mapped[str] = mapped_column(String(10), server_default=text("'market'"))
    max_alert_age_s: Mapped[int] = mapped_column(server_default=text("60"))
    dedupe_window_s: Mapped[int] = mapped_column(server_default=text("60"))
    notional_floor: Mapped[MaybeMoney]
    allow_split: Mapped[bool] = mapped_column(server_default=text("false"))
    on_protection_refused: Mapped[str] = mapped_column(
        String(10), server_default=text("'flatten'")
    )
    tracking_interval_s: Mapped[int] = mapped_column(server_default=text("300"))
    # The default exit plan (trading/exits.py ExitPlan as JSON; NULL: none): docs/design.md#exits.
    exits: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    stop_type: Mapped[str] = mapped_column(String(12), server_default=text("'MARK_PRICE'"))
    # Webhook access (docs/design.md#webhook-secrets): the secret is kept only as an HMAC-SHA256
    # under the server key (webhook/auth.py); NULL means no alert can authenticate until one is set.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rate_limit_per_min: Mapped[int] = mapped_column(server_default=text("60"))
    # Source addresses allowed to send alerts (IPs or CIDRs); empty with the preset off: any.
    allowed_ips: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), server_default=text("'{}'")
    )
    allow_tradingview_ips: Mapped[bool] = mapped_column(server_default=text("false"))
    # Risk limits (trading/risk.py RiskLimits; NULL: none of that kind for this strategy; the
    # account's TRADEWIRE_RISK_* settings apply as well, the tighter wins).
    max_order_usdt: Mapped[MaybeMoney]
    max_position_usdt: Mapped[MaybeMoney]
    max_open_trades: Mapped[int | None]
    max_leverage: Mapped[int | None]
    max_exposure_usdt: Mapped[MaybeMoney]
    min_free_margin_usdt: Mapped[MaybeMoney]
    daily_loss_usdt: Mapped[MaybeMoney]
    daily_loss_pct: Mapped[MaybeMoney]
    # Receivers of this strategy's notifications (docs/design.md#notifications); each kind set
    # here replaces the account's TRADEWIRE_NOTIFY_* / TRADEWIRE_TELEGRAM_* one. The secrets are
    # kept as they are, since they must be sent; never shown, logged nor put in a workflow.
    notify_webhook_url: Mapped[str | None] = mapped_column(Text)
    notify_webhook_secret: Mapped[str | None] = mapped_column(Text)
    telegram_bot_token: Mapped[str | None] = mapped_column(Text)
    telegram_chat_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class Signal(Base):
    """Every delivery to the webhook, accepted or not, with what became of it and why.
    The body is stored without its secret."""

    __tablename__ = "signal"
    __table_args__ = (
        CheckConstraint(enum_check("outcome", SignalOutcome), name="outcome"),
        # PostgreSQL decides duplicates: one accepted (or queued) signal per (strategy, key).
        # Refused deliveries are outside the index, so they never block the genuine alert.
        Index(
            "uq_signal_accepted_key",
            "strategy_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("outcome IN ('ACCEPTED', 'QUEUED')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_at: Mapped[CreatedAt]
    strategy_id: Mapped[int | None] = mapped_column(ForeignKey("strategy.id"), index=True)
    strategy_name: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str | None] = mapped_column(String(40))
    intent: Mapped[str | None] = mapped_column(String(20))
    alert_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    workflow_id: Mapped[str | None] = mapped_column(String(200))


class Trade(Base):
    """One alert's trade: what it owns on the exchange and how it ended."""

    __tablename__ = "trade"
    __table_args__ = (
        CheckConstraint(enum_check("status", TradeStatus), name="status"),
        CheckConstraint(enum_check("side", PositionSide), name="side"),
        CheckConstraint(enum_check("intent", Intent), name="intent"),
        CheckConstraint(enum_check("entry_type", EntryType), name="entry_type"),
        CheckConstraint("filled_qty >= 0 AND closed_qty >= 0", name="qty_nonnegative"),
        Index("ix_trade_open_by_strategy_symbol", "strategy_id", "symbol", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(200), unique=True)
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signal.id"), index=True)
    strategy_id: Mapped[int | None] = mapped_column(ForeignKey("strategy.id"))
    symbol: Mapped[str] = mapped_column(ForeignKey("trading_pair.symbol"))
    side: Mapped[str] = mapped_column(String(10))
    intent: Mapped[str] = mapped_column(String(20))
    entry_type: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), index=True)
    target_qty: Mapped[MaybeMoney]
    filled_qty: Mapped[Money] = mapped_column(server_default=text("0"))
    avg_entry_price: Mapped[MaybeMoney]
    closed_qty: Mapped[Money] = mapped_column(server_default=text("0"))
    avg_exit_price: Mapped[MaybeMoney]
    realized_pnl: Mapped[Money] = mapped_column(server_default=text("0"))
    fees: Mapped[Money] = mapped_column(server_default=text("0"))
    leverage: Mapped[int | None]
    tp_price: Mapped[MaybeMoney]
    sl_price: Mapped[MaybeMoney]
    # The exchange position its quantity is in (a resumed run tracks that one, no other).
    position_id: Mapped[str | None] = mapped_column(String(64))
    # The notional its entry committed when it first claimed an order (target × price): what
    # it counts for in the risk limits until it holds a position (docs/design.md#risk).
    committed_usdt: Mapped[MaybeMoney]
    warning: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class Order(Base):
    """An order a trade sent (or is about to send: SENDING is committed before the first send,
    so a re-run finds it and looks the order up instead of placing a second one)."""

    __tablename__ = "order"
    __table_args__ = (
        CheckConstraint(enum_check("side", Side), name="side"),
        CheckConstraint(enum_check("order_type", OrderType), name="order_type"),
        CheckConstraint(enum_check("status", OrderStatus), name="status"),
        CheckConstraint("qty > 0 AND filled_qty >= 0 AND filled_qty <= qty", name="qty_bounds"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trade_id: Mapped[int] = mapped_column(ForeignKey("trade.id", ondelete="CASCADE"), index=True)
    client_order_id: Mapped[str] = mapped_column(String(40), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(40))
    leg: Mapped[str] = mapped_column(String(20))
    side: Mapped[str] = mapped_column(String(10))
    order_type: Mapped[str] = mapped_column(String(10))
    effect: Mapped[str | None] = mapped_column(String(12))
    reduce_only: Mapped[bool] = mapped_column(server_default=text("false"))
    qty: Mapped[Money]
    price: Mapped[MaybeMoney]
    filled_qty: Mapped[Money] = mapped_column(server_default=text("0"))
    avg_price: Mapped[MaybeMoney]
    status: Mapped[str] = mapped_column(String(24))
    fee: Mapped[Money] = mapped_column(server_default=text("0"))
    realized_pnl: Mapped[Money] = mapped_column(server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class Fill(Base):
    """One execution of an order, as the exchange reported it."""

    __tablename__ = "fill"
    __table_args__ = (CheckConstraint("qty > 0 AND price > 0", name="positive"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    exchange_trade_id: Mapped[str] = mapped_column(String(64), unique=True)
    qty: Mapped[Money]
    price: Mapped[Money]
    fee: Mapped[Money] = mapped_column(server_default=text("0"))
    realized_pnl: Mapped[Money] = mapped_column(server_default=text("0"))
    role: Mapped[str | None] = mapped_column(String(10))
    filled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Position(Base):
    """The exchange's view of a position (netted per symbol, per side in hedge mode)."""

    __tablename__ = "position"
    __table_args__ = (
        CheckConstraint(enum_check("side", PositionSide), name="side"),
        CheckConstraint(enum_check("position_mode", PositionMode), name="position_mode"),
        CheckConstraint(enum_check("margin_mode", MarginMode), name="margin_mode"),
        CheckConstraint("qty >= 0", name="qty_nonnegative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    exchange_position_id: Mapped[str] = mapped_column(String(64), unique=True)
    symbol: Mapped[str] = mapped_column(ForeignKey("trading_pair.symbol"), index=True)
    side: Mapped[str] = mapped_column(String(10))
    position_mode: Mapped[str] = mapped_column(String(10))
    margin_mode: Mapped[str] = mapped_column(String(10))
    leverage: Mapped[int]
    qty: Mapped[Money]
    avg_open_price: Mapped[MaybeMoney]
    realized_pnl: Mapped[Money] = mapped_column(server_default=text("0"))
    unrealized_pnl: Mapped[Money] = mapped_column(server_default=text("0"))
    fee: Mapped[Money] = mapped_column(server_default=text("0"))
    open: Mapped[bool] = mapped_column(server_default=text("true"))
    updated_at: Mapped[UpdatedAt]


class Install(Base):
    """One row: this installation's random id. Client order ids are derived from it with the
    workflow id, so a fresh database (whose signal ids, hence workflow ids, start over) never
    reuses a client id that an earlier install sent to the same exchange account."""

    __tablename__ = "install"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[CreatedAt]


class Incident(Base):
    """A mismatch between the exchange and what the open trades own that outlasted the settle
    window (docs/design.md#the-ownership-invariant). The account watcher raises it, keeps it
    current and resolves it; an operator may dismiss it. `actions` lists who did what about it,
    so the automatic policies to come (protect, flatten, adopt) record themselves there too."""

    __tablename__ = "incident"
    __table_args__ = (
        CheckConstraint(enum_check("kind", IncidentKind), name="kind"),
        CheckConstraint(enum_check("status", IncidentStatus), name="status"),
        CheckConstraint("side IS NULL OR " + enum_check("side", PositionSide), name="side"),
        CheckConstraint("exchange_qty >= 0 AND owned_qty >= 0", name="qty_nonnegative"),
        CheckConstraint("status <> 'open' OR cleared_at IS NULL", name="open_is_current"),
        # One current row per mismatch: the watcher updates it (last_seen, quantities) instead
        # of adding rows; once cleared, the same mismatch coming back is a new incident.
        Index(
            "uq_incident_current",
            "fingerprint",
            unique=True,
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # What the mismatch is about: kind + symbol + side, or kind + exchange order id.
    fingerprint: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24))
    symbol: Mapped[str] = mapped_column(String(40))
    side: Mapped[str | None] = mapped_column(String(10))  # the position's; NULL for an order
    order_id: Mapped[str | None] = mapped_column(String(64))
    client_order_id: Mapped[str | None] = mapped_column(String(40))
    exchange_qty: Mapped[Money]
    owned_qty: Mapped[Money]
    detail: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[CreatedAt]
    last_seen: Mapped[CreatedAt]
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12), server_default=text("'open'"), index=True)
    resolution: Mapped[str | None] = mapped_column(Text)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'"))


class RiskState(Base):
    """The trading state of the account (scope `account`) or of one strategy
    (`strategy:<name>`); a scope without a row is ACTIVE (docs/design.md#risk)."""

    __tablename__ = "risk_state"
    __table_args__ = (CheckConstraint(enum_check("state", TradingState), name="state"),)

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    state: Mapped[str] = mapped_column(String(12))
    # Set by the daily loss latch: stays until an operator resumes it.
    latched: Mapped[bool] = mapped_column(server_default=text("false"))
    # The halt asked for every position to be closed (and the incident policy to flatten).
    flatten: Mapped[bool] = mapped_column(server_default=text("false"))
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(80))
    changed_at: Mapped[CreatedAt]
    # The loss an operator's change of a latched scope acknowledged (the daily loss latch
    # latches the scope again today only beyond it), and the `changed_at` of that change: a
    # level belongs to one change, so a later change takes a new one.
    acknowledged_loss: Mapped[MaybeMoney]
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RiskEvent(Base):
    """Every change of a trading state: who, when, why (the audit trail)."""

    __tablename__ = "risk_event"
    __table_args__ = (
        CheckConstraint(enum_check("state_before", TradingState), name="state_before"),
        CheckConstraint(enum_check("state_after", TradingState), name="state_after"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[CreatedAt]
    scope: Mapped[str] = mapped_column(String(80), index=True)
    state_before: Mapped[str] = mapped_column(String(12))
    state_after: Mapped[str] = mapped_column(String(12))
    flatten: Mapped[bool] = mapped_column(server_default=text("false"))
    latched: Mapped[bool] = mapped_column(server_default=text("false"))
    actor: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)


class RiskDay(Base):
    """The account's equity at the start of a trading day (the base of `daily_loss_pct`)."""

    __tablename__ = "risk_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    equity: Mapped[Money]
    read_at: Mapped[CreatedAt]


class RiskPnl(Base):
    """A scope's PnL today as the daily loss latch last computed it (realized with fees,
    unrealized at mark), written when it changes; `at`: when it last changed."""

    __tablename__ = "risk_pnl"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    realized: Mapped[Money]
    unrealized: Mapped[Money]
    at: Mapped[CreatedAt]


class Notification(Base):
    """One message to one kind of receiver, waiting or delivered: the durable outbox of
    notifications (docs/design.md#notifications). Written with the event it reports; the
    worker's sender delivers it with retries. The payload never holds a receiver's secret."""

    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint(enum_check("receiver", NotifyReceiver), name="receiver"),
        CheckConstraint(enum_check("status", NotifyStatus), name="status"),
        Index("ix_notification_due", "next_at", postgresql_where=text("status = 'pending'")),
        # One daily summary per day and receiver, however many workers look at the boundary.
        Index("uq_notification_key", "dedupe_key", unique=True,
              postgresql_where=text("dedupe_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[CreatedAt]
    event: Mapped[str] = mapped_column(String(32))
    # Whose receivers: the strategy's where it set one of this kind, else the account's (also
    # once the strategy is deleted: its notifications still go out).
    strategy_id: Mapped[int | None] = mapped_column(ForeignKey("strategy.id", ondelete="SET NULL"))
    receiver: Mapped[str] = mapped_column(String(12))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(12), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_at: Mapped[CreatedAt]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dedupe_key: Mapped[str | None] = mapped_column(String(120))


class ExchangeBudget(Base):
    """One row per exchange endpoint: the account's request budget, shared by every process
    that signs (migration 0012 and db/budget_ledger.py; docs/design.md#request-budgets).
    Written only by the `exchange_budget_lease` function, under the row's lock."""

    __tablename__ = "exchange_budget"

    endpoint: Mapped[str] = mapped_column(Text, primary_key=True)
    # When the newest leased slots may be used until (epoch seconds, database clock), newest
    # first, at most the endpoint's capacity of them. Seconds, not money: a float is exact enough.
    ends: Mapped[list[float]] = mapped_column(  # float-ok: seconds
        ARRAY(Float(precision=53)), nullable=False, server_default="{}"
    )
