"""One Settings class: prefixed names, safe defaults, and a live exchange refusing to start
without keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from settings import Settings


def test_defaults_are_paper_and_documented_ports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("TRADEWIRE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.exchange == "paper"
    assert (s.webhook_port, s.temporal_port, s.temporal_ui_port, s.exchange_port) == (8000, 7233, 8233, 8100)
    assert s.exchange_url == "http://127.0.0.1:8100"
    assert s.temporal_target == "127.0.0.1:7233"


def test_live_exchange_without_keys_names_the_missing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that signs (the worker; the webhook on the fast path) asks for the keys and
    is told which are missing; one that holds none (the webhook by default) starts."""
    monkeypatch.setenv("TRADEWIRE_EXCHANGE", "bitunix")
    monkeypatch.delenv("TRADEWIRE_BITUNIX_API_KEY", raising=False)
    monkeypatch.delenv("TRADEWIRE_BITUNIX_API_SECRET", raising=False)
    s = Settings()
    assert s.fast_path is False
    with pytest.raises(ValueError) as err:
        s.exchange_credentials()
    assert "TRADEWIRE_BITUNIX_API_KEY" in str(err.value)
    assert "TRADEWIRE_BITUNIX_API_SECRET" in str(err.value)


def test_live_exchange_with_keys_points_at_bitunix_and_hides_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWIRE_EXCHANGE", "bitunix")
    monkeypatch.setenv("TRADEWIRE_BITUNIX_API_KEY", "k-123")
    monkeypatch.setenv("TRADEWIRE_BITUNIX_API_SECRET", "very-secret-value")
    s = Settings()
    assert s.exchange_url == "https://fapi.bitunix.com"
    assert "very-secret-value" not in repr(s)
    key, secret = s.exchange_credentials()
    assert key == "k-123" and secret.get_secret_value() == "very-secret-value"


def test_env_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEWIRE_WEBHOOK_PORT", raising=False)
    (tmp_path / ".env").write_text("TRADEWIRE_WEBHOOK_PORT=9123\n")
    assert Settings().webhook_port == 9123


def test_generated_admin_token_is_private_and_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRADEWIRE_ADMIN_TOKEN", raising=False)
    s = Settings(state_dir=tmp_path / "state")
    token = s.ensure_admin_token()
    mode = stat.S_IMODE(s.admin_token_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert len(token) >= 32
    assert Settings(state_dir=tmp_path / "state").resolve_admin_token() == token
    assert s.ensure_admin_token() == token


def test_configured_admin_token_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADEWIRE_ADMIN_TOKEN", "from-env-token")
    s = Settings(state_dir=tmp_path)
    assert s.ensure_admin_token() == "from-env-token"
    assert not s.admin_token_file.exists()
