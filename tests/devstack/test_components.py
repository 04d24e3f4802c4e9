from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devstack import components
from devstack.components import (
    COMPONENTS,
    INFRA,
    child_env,
    defines_function,
    enabled_components,
    module_exists,
    temporal_argv,
    temporal_cli,
)
from settings import Settings


def names(settings: Settings) -> list[str]:
    return [c.name for c in enabled_components(settings)]


def test_the_table_names_each_component_once_and_binds_real_settings() -> None:
    assert len({c.name for c in COMPONENTS}) == len(COMPONENTS)
    for component in COMPONENTS:
        for field, _ in component.ports:
            assert field in Settings.model_fields, f"{component.name} binds unknown {field}"


def test_temporal_starts_first_and_is_the_only_infrastructure() -> None:
    assert COMPONENTS[0].name == "temporal"
    assert [c.name for c in COMPONENTS if c.layer == INFRA] == ["temporal"]


def test_the_dev_server_runs_only_when_no_temporal_is_configured(tmp_path: Path) -> None:
    assert "temporal" in names(Settings(_env_file=None, state_dir=tmp_path))
    external = Settings(_env_file=None, state_dir=tmp_path, temporal_address="temporal:7233")
    assert "temporal" not in names(external)
    assert "web" in names(external)


def test_the_paper_exchange_joins_only_once_built_in_paper_mode_without_an_external_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paper = Settings(_env_file=None, state_dir=tmp_path)
    built = module_exists("paper.app")
    assert ("exchange" in names(paper)) is built

    monkeypatch.setattr(components, "module_exists", lambda name: True)
    assert "exchange" in names(paper)
    elsewhere = Settings(_env_file=None, state_dir=tmp_path, exchange_base_url="http://x:1")
    assert "exchange" not in names(elsewhere)

    monkeypatch.setattr(components, "module_exists", lambda name: False)
    assert "exchange" not in names(paper)


def test_the_worker_joins_only_when_worker_py_defines_main(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path)
    assert ("worker" in names(settings)) is defines_function("worker", "main")


def test_module_exists_is_false_for_a_missing_parent_package() -> None:
    assert module_exists("devstack.components")
    assert not module_exists("no_such_package_tw.app")
    assert not module_exists("devstack.no_such_module")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def main() -> None:\n    pass\n", True),
        ("async def main():\n    pass\n", True),
        ("def other():\n    def main():\n        pass\n", False),
        ("main = None\n", False),
        ("", False),
        ("def main(:\n", False),
    ],
)
def test_defines_function_reads_the_source_without_importing_it(
    source: str, expected: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"tw_devstack_probe_{abs(hash(source))}"
    # A side effect that would show up if the module were imported.
    (tmp_path / f"{module}.py").write_text("import sys\nsys.exit(3)\n" + source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert defines_function(module, "main") is expected
    assert module not in sys.modules


def test_the_dev_server_keeps_its_history_in_the_state_dir_and_allows_eager_start(
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None, state_dir=tmp_path, temporal_port=17001, temporal_ui_port=17002
    )
    argv = temporal_argv(settings)
    assert Path(argv[0]) == temporal_cli() and os.access(argv[0], os.X_OK)
    assert argv[1:3] == ["server", "start-dev"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert pairs["--db-filename"] == str(tmp_path.resolve() / "temporal.db")
    assert pairs["--port"] == "17001" and pairs["--ui-port"] == "17002"
    assert pairs["--ip"] == settings.host
    assert pairs["--namespace"] == "default"
    assert pairs["--dynamic-config-value"] == "system.enableEagerWorkflowStart=true"


def test_children_get_this_runs_database_and_temporal_over_the_inherited_env(
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None, state_dir=tmp_path / "s", temporal_port=17001, webhook_port=17003
    )
    base = {"PATH": "/bin", "TRADEWIRE_DATABASE_URL": "postgresql+psycopg://stale", "KEEP": "1"}
    env = child_env(settings, "postgresql+psycopg://postgres@/tradewire?host=/x", base)
    assert env["TRADEWIRE_DATABASE_URL"] == "postgresql+psycopg://postgres@/tradewire?host=/x"
    assert env["TRADEWIRE_TEMPORAL_ADDRESS"] == f"{settings.host}:17001"
    assert env["TRADEWIRE_STATE_DIR"] == str((tmp_path / "s").resolve())
    assert env["TRADEWIRE_WEBHOOK_PORT"] == "17003"
    assert env["KEEP"] == "1" and env["PATH"] == "/bin"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_children_get_two_malloc_arenas_unless_the_env_says_otherwise(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path)
    url = "postgresql+psycopg://postgres@/tradewire?host=/x"
    assert child_env(settings, url, {"PATH": "/bin"})["MALLOC_ARENA_MAX"] == "2"
    assert child_env(settings, url, {"MALLOC_ARENA_MAX": "4"})["MALLOC_ARENA_MAX"] == "4"


def test_children_run_the_cli_with_this_python() -> None:
    app_components = [c for c in COMPONENTS if c.layer != INFRA]
    settings = Settings(_env_file=None)
    for component in app_components:
        argv = component.argv(settings)
        assert argv[:3] == [sys.executable, "-m", "cli"]
        assert argv[3] in {"web", "exchange", "worker", "ui"}


# --- issue 20 (review D2, D14): what each child binds and holds ----------------------------

SECRETS = {
    "TRADEWIRE_ADMIN_TOKEN": "admin-token-value",
    "TRADEWIRE_SECRET_KEY": "server-key-value",
    "TRADEWIRE_BITUNIX_API_KEY": "exchange-key",
    "TRADEWIRE_BITUNIX_API_SECRET": "exchange-secret",
    "TRADEWIRE_TELEGRAM_BOT_TOKEN": "bot-token",
    "TRADEWIRE_NOTIFY_WEBHOOK_SECRET": "receiver-secret",
}
URL = "postgresql+psycopg://tw:pw@db/tradewire"


def component(name: str) -> components.Component:
    return next(c for c in COMPONENTS if c.name == name)


def test_tradewire_host_opens_the_webhook_only(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path, host="0.0.0.0")
    argv = temporal_argv(settings)
    pairs = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert pairs["--ip"] == pairs["--ui-ip"] == "127.0.0.1"
    assert component("exchange").bind_host(settings) == "127.0.0.1"
    assert component("web").bind_host(settings) == "0.0.0.0"
    assert settings.temporal_target == f"127.0.0.1:{settings.temporal_port}"
    assert settings.exchange_url == f"http://127.0.0.1:{settings.exchange_port}"
    claims = {c.field: c.host for comp in COMPONENTS for c in comp.port_claims(settings)}
    assert claims == {"temporal_port": "127.0.0.1", "temporal_ui_port": "127.0.0.1",
                      "exchange_port": "127.0.0.1", "webhook_port": "0.0.0.0",
                      "ui_port": "127.0.0.1"}  # the dashboard stays on loopback too


def test_the_dashboard_has_a_port_and_address_of_its_own(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path, ui_port=18300, ui_host="10.0.0.7")
    [claim] = component("ui").port_claims(settings)
    assert (claim.port, claim.host) == (18300, "10.0.0.7")
    env = component("ui").child_env(settings, URL, {"PATH": "/bin"})
    assert (env["TRADEWIRE_UI_PORT"], env["TRADEWIRE_UI_HOST"]) == ("18300", "10.0.0.7")
    assert component("ui").argv(settings)[3] == "ui"


def test_temporal_and_the_exchange_move_only_when_named(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path, temporal_host="10.0.0.5",
                        paper_host="10.0.0.6")
    pairs = dict(zip(temporal_argv(settings)[3::2], temporal_argv(settings)[4::2], strict=True))
    assert pairs["--ip"] == pairs["--ui-ip"] == "10.0.0.5"
    assert component("exchange").bind_host(settings) == "10.0.0.6"
    assert settings.temporal_target.startswith("10.0.0.5:")


def test_each_child_holds_only_the_secrets_it_uses(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path)
    base = {"PATH": "/bin", "HOME": "/home/x", "TRADEWIRE_LOG_LEVEL": "INFO", **SECRETS}
    envs = {c.name: c.child_env(settings, URL, base) for c in COMPONENTS}
    # Temporal (a third-party binary): nothing of Tradewire's at all.
    assert envs["temporal"] == {"PATH": "/bin", "HOME": "/home/x"}
    # The paper exchange: no token, no server key, no exchange keys, no database login.
    assert not set(SECRETS) & set(envs["exchange"])
    assert "TRADEWIRE_DATABASE_URL" not in envs["exchange"]
    assert envs["exchange"]["TRADEWIRE_LOG_LEVEL"] == "INFO"
    # The worker trades and notifies: the exchange keys, the receivers' secrets and the
    # database, not the admin token.
    assert {k for k in SECRETS if k in envs["worker"]} == {
        "TRADEWIRE_BITUNIX_API_KEY", "TRADEWIRE_BITUNIX_API_SECRET",
        "TRADEWIRE_TELEGRAM_BOT_TOKEN", "TRADEWIRE_NOTIFY_WEBHOOK_SECRET"}
    assert envs["worker"]["TRADEWIRE_DATABASE_URL"] == URL
    # The webhook: the admin API and the strategies' HMACs; no exchange keys (the fast path
    # is off by default)...
    assert {k for k in SECRETS if k in envs["web"]} == {
        "TRADEWIRE_ADMIN_TOKEN", "TRADEWIRE_SECRET_KEY"}
    # The dashboard: its sign-in (the admin token) and the database; nothing that trades.
    assert {k for k in SECRETS if k in envs["ui"]} == {"TRADEWIRE_ADMIN_TOKEN"}
    assert envs["ui"]["TRADEWIRE_DATABASE_URL"] == URL
    # ... unless the fast path places orders from it (still no receiver secret).
    fast = Settings(_env_file=None, state_dir=tmp_path, fast_path=True)
    assert {k for k in SECRETS if k in component("web").child_env(fast, URL, base)} == {
        "TRADEWIRE_ADMIN_TOKEN", "TRADEWIRE_SECRET_KEY", "TRADEWIRE_BITUNIX_API_KEY",
        "TRADEWIRE_BITUNIX_API_SECRET"}


def test_the_state_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    from devstack.up import private_state_dir

    state = tmp_path / "state"
    old = os.umask(0)
    try:
        private_state_dir(Settings(_env_file=None, state_dir=state))
        assert state.stat().st_mode & 0o777 == 0o700
        state.chmod(0o777)
        for name in ("temporal.db", "temporal.db-wal", "temporal.db-shm"):
            (state / name).write_text("")
            (state / name).chmod(0o644)
        private_state_dir(Settings(_env_file=None, state_dir=state))
    finally:
        os.umask(old)
    assert state.stat().st_mode & 0o777 == 0o700
    for name in ("temporal.db", "temporal.db-wal", "temporal.db-shm"):
        assert (state / name).stat().st_mode & 0o777 == 0o600


async def test_what_a_child_creates_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """The Temporal dev server creates temporal.db itself: children run under umask 077."""
    from devstack.console import Console
    from devstack.supervisor import Child

    made = tmp_path / "made-by-child"
    old = os.umask(0)
    try:
        child = Child("probe", [sys.executable, "-c", f"open({str(made)!r}, 'w').close()"],
                      {"PATH": os.environ.get("PATH", "")}, Console.for_stdout())
        await child.start()
        assert await child.exited() == 0
    finally:
        os.umask(old)
    assert made.stat().st_mode & 0o777 == 0o600
