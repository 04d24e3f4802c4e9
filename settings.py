"""The one place Tradewire's configuration lives.

Every setting is read from the environment (or `.env`) with the `TRADEWIRE_` prefix and has
exactly one name. Secrets are `SecretStr` so they never show up in a repr, a log or an error.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trading.risk import RiskLimits
from trading.types import IncidentPolicy, TradingState

BITUNIX_BASE_URL = "https://fapi.bitunix.com"
ADMIN_TOKEN_FILE = "admin-token"
# Documented defaults for the paper exchange, so `make run` works with no configuration.
# They only ever unlock the simulator, never a real account.
PAPER_API_KEY = "paper-api-key"
PAPER_API_SECRET = "paper-api-secret"


def fast_path_queue(task_queue: str) -> str:
    """The fast path's task queue beside `task_queue` (Settings.fast_path_task_queue)."""
    return f"{task_queue}-fast-path"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRADEWIRE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- where things live ---------------------------------------------------------------
    state_dir: Path = Field(default=Path(".tradewire"), description="Data, logs and generated secrets.")
    host: str = Field(default="127.0.0.1", description="Address the webhook binds to (Temporal and the paper exchange: see temporal_host, paper_host).")

    # --- PostgreSQL --------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (postgresql+psycopg://…). Unset: the embedded server under the state dir.",
    )

    # --- Temporal ----------------------------------------------------------------------------
    temporal_address: str | None = Field(
        default=None, description="host:port of Temporal. Unset: the dev server that `up` starts."
    )
    temporal_namespace: str = Field(default="default", description="Temporal namespace.")
    task_queue: str = Field(default="tradewire", description="Task queue of the trade workflows and activities.")
    temporal_ui_url: str | None = Field(default=None, description="Base URL of the Temporal UI for links.")

    # --- ports -------------------------------------------------------------------------------
    webhook_port: int = Field(default=8000, description="Port of the webhook app (alerts, trades API, /healthz).")
    temporal_port: int = Field(default=7233, description="gRPC port of the dev server that `up` starts.")
    temporal_ui_port: int = Field(default=8233, description="Port of the Temporal UI that `up` starts.")
    exchange_port: int = Field(default=8100, description="Port of the paper exchange.")
    ui_port: int = Field(default=8300, description="Port of the dashboard (`tradewire ui`), never the webhook's.")
    ui_host: str = Field(
        default="127.0.0.1",
        description="Address the dashboard binds to (loopback: put a TLS proxy in front to reach it from elsewhere).",
    )

    # --- exchange ----------------------------------------------------------------------------
    exchange: Literal["paper", "bitunix"] = Field(
        default="paper", description="`paper` (the simulator) or `bitunix` (real money, needs keys)."
    )
    exchange_base_url: str | None = Field(
        default=None, description="Unset: the paper exchange on exchange_port, or BitUnix's API."
    )
    bitunix_api_key: SecretStr | None = Field(default=None, description="BitUnix API key (live mode).")
    bitunix_api_secret: SecretStr | None = Field(default=None, description="BitUnix API secret (live mode).")
    exchange_timeout_s: Decimal = Field(default=Decimal("5"), description="Timeout of one exchange request, seconds.")
    exchange_budget_share: Decimal = Field(
        default=Decimal("1"),
        description="This process's share (0–1] of the account's per-endpoint request limits when the budget every process shares (in the database) does not answer, and for one-off commands.",
    )
    exchange_budget_scale: Decimal = Field(
        default=Decimal("1"),
        description="Multiplier on BitUnix's documented limits (benchmarks only; keep 1 live).",
    )

    # --- paper exchange (the simulator) ------------------------------------------------------
    paper_api_key: str = Field(default=PAPER_API_KEY, description="The paper exchange's API key (documented default).")
    paper_api_secret: SecretStr = Field(
        default=SecretStr(PAPER_API_SECRET), description="The paper exchange's API secret (documented default)."
    )
    paper_pairs_file: Path | None = Field(default=None, description="BitUnix trading_pairs JSON; unset: bundled.")
    paper_tickers_file: Path | None = Field(default=None, description="BitUnix tickers JSON; unset: bundled.")
    paper_balance: Decimal = Field(default=Decimal("100000"), description="Starting USDT balance of the paper account.")
    paper_state_file: Path | None = Field(default=None, description="Persist paper state here; unset: in memory.")
    paper_seed: int = Field(default=7, description="Seed of the paper market's random walk.")
    paper_tick_interval_s: Decimal = Field(default=Decimal("1"), description="Seconds between paper price steps.")
    paper_partial_fills: bool = Field(default=False, description="Resting paper orders fill in two parts.")
    paper_rate_limit_scale: Decimal = Field(
        default=Decimal("1"), description="Multiplier on the simulator's BitUnix rate limits (benchmarks)."
    )
    paper_fee_rate_maker: Decimal = Field(default=Decimal("0.0002"), description="Paper maker fee rate.")
    paper_fee_rate_taker: Decimal = Field(default=Decimal("0.0006"), description="Paper taker fee rate.")
    paper_post_only_mode: Literal["cancel", "reject"] = Field(
        default="cancel",
        description="A POST_ONLY order that would take: created then cancelled, or rejected (30011).",
    )

    # --- operations ----------------------------------------------------------------------------
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for the admin API; unset: generated by `up` into the state dir."
    )
    log_level: str = Field(default="INFO", description="Log level of every process.")

    # --- worker --------------------------------------------------------------------------------
    watcher_interval_s: Decimal = Field(
        default=Decimal("2"),
        description="How often the account watcher polls positions, open orders and fills.",
    )
    worker_max_concurrent_activities: int = Field(
        default=50, ge=2,
        description="Activity slots of `tradewire worker`, in all: a fifth of them go to its "
                    "worker on the fast path's queue.",
    )
    incident_settle_s: Decimal = Field(
        default=Decimal("10"),
        gt=0,
        description="How long a mismatch between the exchange and the open trades must last before it is an incident.",
    )
    incident_policy: IncidentPolicy = Field(
        default=IncidentPolicy.PROTECT,
        description="What to do about quantity no trade owns: protect (adopt it into a trade with a stop), flatten (close it reduce-only) or report (record only).",
    )
    adopt_stop_pct: Decimal = Field(
        default=Decimal("5"), gt=0, lt=100,
        description="How far from the mark price, in percent, the stop of adopted quantity is placed.",
    )
    # --- risk (docs/design.md#risk; a strategy's own limits apply as well: the tighter wins) --
    risk_max_order_usdt: Decimal | None = Field(
        default=None, gt=0, description="Account limit: one order's notional, USDT.")
    risk_max_position_usdt: Decimal | None = Field(
        default=None, gt=0, description="Account limit: the open trades' notional on one symbol, USDT.")
    risk_max_open_trades: int | None = Field(
        default=None, gt=0, description="Account limit: trades entering or open at once.")
    risk_max_leverage: int | None = Field(
        default=None, gt=0, description="Account limit: leverage (the pair's own maximum always applies).")
    risk_max_exposure_usdt: Decimal | None = Field(
        default=None, gt=0, description="Account limit: the open trades' notional over all symbols, USDT.")
    risk_min_free_margin_usdt: Decimal | None = Field(
        default=None, ge=0, description="Account limit: available margin that must be left after an order, USDT.")
    risk_daily_loss_usdt: Decimal | None = Field(
        default=None, gt=0, description="Account daily loss (realized with fees + unrealized at mark) that latches the state, USDT.")
    risk_daily_loss_pct: Decimal | None = Field(
        default=None, gt=0, lt=100, description="Account daily loss that latches the state, in percent of the equity at the day's start.")
    risk_latch_state: TradingState = Field(
        default=TradingState.HALTED,
        description="The state a daily loss breach latches: HALTED or REDUCE_ONLY.")
    risk_latch_flatten: bool = Field(
        default=False,
        description="A daily loss breach also closes every position of its scope (with HALTED only).")
    taker_fee_rate: Decimal = Field(
        default=Decimal("0.0006"), ge=0, lt=Decimal("0.01"),
        description="The account's taker fee rate: break-even stops and risk-% sizing count it, twice.")
    risk_day_timezone: str = Field(
        default="UTC", description="The time zone whose midnight starts a trading day (IANA name).")

    order_visibility_s: Decimal = Field(
        default=Decimal("30"), gt=0,
        description="An order the exchange has not shown this long after it was sent was never placed.",
    )

    # --- webhook -------------------------------------------------------------------------------
    secret_key: SecretStr | None = Field(
        default=None,
        description="Server key for the strategies' webhook-secret HMACs; unset: generated into the state dir.",
    )
    docs_enabled: bool = Field(default=False, description="Serve the interactive API docs (/docs).")
    fast_path: bool = Field(
        default=False,
        description="Opt-in: eager start + first placement inside the webhook process, which then holds the exchange keys.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxies (IPs/CIDRs, JSON list) whose X-Forwarded-For names the alert's sender.",
    )

    # --- surfaces (issue 20) -------------------------------------------------------------------
    # `host` opens the webhook only; what holds full control of trading (Temporal) or the paper
    # account (the exchange's admin API) stays on loopback unless named here explicitly.
    temporal_host: str = Field(
        default="127.0.0.1",
        description="Address the Temporal dev server and its UI bind to (TRADEWIRE_HOST does not move them).",
    )
    paper_host: str = Field(
        default="127.0.0.1",
        description="Address the paper exchange binds to (TRADEWIRE_HOST does not move it).",
    )
    http_request_timeout_s: Decimal = Field(
        default=Decimal("10"), gt=0,
        description="A request's headers and body must arrive within this many seconds of its first byte (or of the connection opening).",
    )
    http_keepalive_s: Decimal = Field(
        default=Decimal("5"), gt=0, description="An idle keep-alive connection is closed after this many seconds."
    )
    http_limit_concurrency: int = Field(
        default=256, ge=1, description="Open connections (and requests in progress) beyond this answer 503."
    )
    http_max_header_bytes: int = Field(
        default=16384, ge=1024, description="The largest request line plus headers a server reads."
    )
    admin_body_max_bytes: int = Field(
        default=65536, ge=1024, description="The largest body any route but the webhook's reads (it has its own cap)."
    )
    healthz_cache_s: Decimal = Field(
        default=Decimal("5"), ge=0,
        description="How long /healthz reuses its last probe; one probe runs at a time however often it is called.",
    )

    @model_validator(mode="after")
    def _clock_bounds_ordered(self) -> Settings:
        if self.clock_skew_warn_ms > self.clock_skew_max_ms:
            raise ValueError(
                "TRADEWIRE_CLOCK_SKEW_WARN_MS must not exceed TRADEWIRE_CLOCK_SKEW_MAX_MS")
        return self

    @property
    def risk_limits(self) -> RiskLimits:
        """The account's limits (TRADEWIRE_RISK_*)."""
        return RiskLimits(**{n: getattr(self, f"risk_{n}") for n in RiskLimits.names()})

    @model_validator(mode="after")
    def _latch_state_restricts(self) -> Settings:
        if self.risk_latch_state is TradingState.ACTIVE:
            raise ValueError("TRADEWIRE_RISK_LATCH_STATE must be HALTED or REDUCE_ONLY")
        if self.risk_latch_flatten and self.risk_latch_state is not TradingState.HALTED:
            raise ValueError("TRADEWIRE_RISK_LATCH_FLATTEN needs TRADEWIRE_RISK_LATCH_STATE=HALTED")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.risk_day_timezone)
        except Exception as exc:  # noqa: BLE001 - any failure means the name is unusable
            raise ValueError(
                f"TRADEWIRE_RISK_DAY_TIMEZONE {self.risk_day_timezone!r} is not a known time zone"
            ) from exc
        return self

    def missing_exchange_keys(self) -> list[str]:
        """The live API key settings that are not set (none in paper mode)."""
        if self.exchange != "bitunix":
            return []
        return [
            name
            for name, value in (
                ("TRADEWIRE_BITUNIX_API_KEY", self.bitunix_api_key),
                ("TRADEWIRE_BITUNIX_API_SECRET", self.bitunix_api_secret),
            )
            if value is None or not value.get_secret_value()
        ]

    # --- derived values (one rule each) -------------------------------------------------------
    @cached_property
    def state_path(self) -> Path:
        return self.state_dir.expanduser().resolve()

    @property
    def embedded_pg_dir(self) -> Path:
        return self.state_path / "pg"

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"{_reach(self.temporal_host)}:{self.temporal_port}"

    @property
    def fast_path_task_queue(self) -> str:
        """Where the webhook's eager starts go: only trades it started itself reach its small
        worker, never the rest of a burst (the worker polls this queue too:
        docs/design.md#the-fast-path)."""
        return fast_path_queue(self.task_queue)

    @property
    def temporal_ui_base(self) -> str:
        return self.temporal_ui_url or f"http://{_reach(self.temporal_host)}:{self.temporal_ui_port}"

    def workflow_url(self, workflow_id: str) -> str:
        """A trade's workflow in the Temporal UI (the answers' and pages' `ui_url`)."""
        from urllib.parse import quote

        return (f"{self.temporal_ui_base.rstrip('/')}/namespaces/"
                f"{quote(self.temporal_namespace, safe='')}/workflows/{quote(workflow_id, safe='')}")

    @property
    def exchange_url(self) -> str:
        if self.exchange_base_url:
            return self.exchange_base_url.rstrip("/")
        if self.exchange == "paper":
            return f"http://{_reach(self.paper_host)}:{self.exchange_port}"
        return BITUNIX_BASE_URL

    def exchange_credentials(self) -> tuple[str, SecretStr]:
        """The API key and secret the client signs with; in paper mode, the simulator's.
        Asked only by a process that signs (the worker; the webhook on the fast path), so a
        process without keys (the webhook by default) starts without them."""
        if self.exchange == "paper":
            return self.paper_api_key, self.paper_api_secret
        missing = self.missing_exchange_keys()
        if missing:
            raise ValueError(
                "TRADEWIRE_EXCHANGE=bitunix trades real money and needs API keys: set "
                + " and ".join(missing)
            )
        assert self.bitunix_api_key is not None and self.bitunix_api_secret is not None
        return self.bitunix_api_key.get_secret_value(), self.bitunix_api_secret

    @property
    def admin_token_file(self) -> Path:
        return self.state_path / ADMIN_TOKEN_FILE

    def resolve_admin_token(self) -> str | None:
        """The configured token, else the one `up` generated into the state dir, else None."""
        if self.admin_token is not None and self.admin_token.get_secret_value():
            return self.admin_token.get_secret_value()
        try:
            return self.admin_token_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def ensure_admin_token(self) -> str:
        """Used by `up`: keep the configured token, else generate one into a 0600 file."""
        token = self.resolve_admin_token()
        if token:
            return token
        self.state_path.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        write_private(self.admin_token_file, token + "\n")
        return token

    # front door (issue 20) ----------------------------------------------------------------
    # Callers without a valid strategy secret, per source address (an IPv6 /64 counts as one).
    anonymous_burst: int = Field(
        default=60, ge=1,
        description="Unauthenticated alert deliveries one address may send at once before 429.",
    )
    anonymous_per_min: int = Field(
        default=60, ge=1,
        description="Unauthenticated alert deliveries per minute and address, sustained (then 429 with Retry-After).",
    )
    anonymous_recorded_per_min: int = Field(
        default=10, ge=0,
        description="Refused unauthenticated deliveries recorded as signal rows per minute and address; the rest are counted in the log.",
    )
    anonymous_tracked_addresses: int = Field(
        default=10_000, ge=1,
        description="Addresses the unauthenticated limit remembers (least recently seen forgotten first).",
    )
    anonymous_limit_tradingview: bool = Field(
        default=False,
        description="Apply the unauthenticated limit to TradingView's own addresses too (shared by all its users, so off by default).",
    )

    # --- pair catalog (issue 22: compose trades on first start) -----------------------------
    pairs_sync_interval_s: int = Field(
        default=3600, ge=60,
        description="How often the worker's Temporal Schedule re-syncs every pair's rules from the exchange, seconds.",
    )

    # metrics and logs (issue 22) ------------------------------------------------------------
    metrics_port: int = Field(
        default=9464, ge=0, le=65534,
        description="Port of the webhook's Prometheus `/metrics` (on metrics_host, loopback by default); the worker serves on the next port (metrics_port + 1). 0: no metrics served.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address `/metrics` binds to (loopback: only this host's scraper reads it).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json`: one JSON object per log line, with trade_id, signal_id and workflow_id where one applies.",
    )
    # --- live-exchange facts (issue 22: clock skew; docs/bitunix.md#server-time) ------------
    clock_skew_warn_ms: int = Field(
        default=1000, gt=0,
        description="A clock further than this from BitUnix's (read from its answers' Date header) logs a warning, ms.",
    )
    clock_skew_max_ms: int = Field(
        default=5000, gt=0,
        description="A clock further than this from BitUnix's refuses new entries until it is fixed (exits still go), ms.",
    )


    # notifications (issue 22, docs/design.md#notifications) -----------------------------------
    # The account's receivers; a strategy's own (`tradewire strategy set --telegram-…`) replace
    # them for its events. Unset: no notification of that kind is sent.
    notify_webhook_url: str | None = Field(
        default=None, description="URL that receives every notification as a JSON POST.",
    )
    notify_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs each webhook notification: X-Tradewire-Signature is sha256=HMAC-SHA256 of '<X-Tradewire-Timestamp>.<body>' under it.",
    )
    telegram_bot_token: SecretStr | None = Field(
        default=None, description="The Telegram bot's token (from @BotFather).",
    )
    telegram_chat_id: str | None = Field(
        default=None, description="The Telegram chat the bot writes to.",
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org", description="Telegram's Bot API (a test points it at a local receiver).",
    )
    notify_queue_max: int = Field(
        default=1000, ge=1,
        description="Notifications waiting at most; beyond it the oldest are dropped (logged and counted).",
    )
    notify_max_attempts: int = Field(
        default=8, ge=1, description="Attempts per notification before it is given up (failed).",
    )
    notify_timeout_s: Decimal = Field(
        default=Decimal("10"), gt=0, description="How long one delivery may take before it counts as failed.",
    )
    notify_interval_s: Decimal = Field(
        default=Decimal("2"), gt=0, description="How often the worker's sender looks for notifications to deliver.",
    )


def _reach(host: str) -> str:
    """Where to connect to reach a server bound to `host`: a wildcard bind is reached locally,
    an IPv6 literal goes in brackets."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"[{target}]" if ":" in target else target


def write_private(path: Path, text: str) -> None:
    """Create or replace a file readable by its owner only (mode 0600 from the first byte)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
