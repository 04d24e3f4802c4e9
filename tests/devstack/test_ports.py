from __future__ import annotations

import io

import pytest

from devstack import run_up
from devstack.console import Console
from devstack.ports import (
    PortClaim,
    busy_message,
    port_is_free,
    port_problems,
    setting_env_name,
)
from settings import Settings
from tests.devstack.support import free_ports, listening

PORT_FIELDS = ["webhook_port", "temporal_port", "temporal_ui_port", "exchange_port"]


@pytest.mark.parametrize("field", PORT_FIELDS)
def test_the_named_setting_really_moves_the_port(
    field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(setting_env_name(field), "12345")
    assert getattr(Settings(_env_file=None), field) == 12345


def test_busy_message_names_the_port_the_owner_and_the_setting() -> None:
    claim = PortClaim(port=8000, field="webhook_port", owner="webhook")
    assert busy_message(claim) == (
        "port 8000 is busy (webhook): set TRADEWIRE_WEBHOOK_PORT to another port"
    )


def test_a_live_listener_is_busy_and_a_closed_port_is_free() -> None:
    with listening() as port:
        assert not port_is_free("127.0.0.1", port)
        problems = port_problems("127.0.0.1", [PortClaim(port, "temporal_ui_port", "Temporal UI")])
        assert problems == [
            f"port {port} is busy (Temporal UI): set TRADEWIRE_TEMPORAL_UI_PORT to another port"
        ]
    assert port_is_free("127.0.0.1", port)
    assert port_problems("127.0.0.1", [PortClaim(port, "temporal_ui_port", "Temporal UI")]) == []


def test_one_port_claimed_twice_is_reported_once_naming_both_settings() -> None:
    (port,) = free_ports(1)
    problems = port_problems(
        "127.0.0.1",
        [PortClaim(port, "webhook_port", "webhook"), PortClaim(port, "exchange_port", "exchange")],
    )
    assert len(problems) == 1
    assert "TRADEWIRE_WEBHOOK_PORT" in problems[0] and "TRADEWIRE_EXCHANGE_PORT" in problems[0]


def test_up_with_a_busy_port_prints_one_line_per_port_and_starts_nothing(tmp_path) -> None:
    state = tmp_path / "state"
    # Every other port free, the dashboard's too (another stack on this machine may hold 8300).
    temporal, ui, exchange, dashboard = free_ports(4)
    out = io.StringIO()
    with listening() as web:
        settings = Settings(
            _env_file=None,
            state_dir=state,
            webhook_port=web,
            temporal_port=temporal,
            temporal_ui_port=ui,
            exchange_port=exchange,
            ui_port=dashboard,
        )
        code = run_up(settings, console=Console(stream=out))
    assert code == 2
    assert out.getvalue().splitlines() == [
        f"port {web} is busy (webhook): set TRADEWIRE_WEBHOOK_PORT to another port"
    ]
    assert not state.exists(), "nothing may start (not even the state dir) when a port is busy"
