"""`tradewire ui`: the dashboard's process, on a port of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_dashboard_refuses_the_webhooks_port(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env.update({"TRADEWIRE_UI_PORT": "8123", "TRADEWIRE_WEBHOOK_PORT": "8123",
                "TRADEWIRE_STATE_DIR": str(tmp_path)})
    done = subprocess.run([sys.executable, "-m", "cli", "ui"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 1
    assert "TRADEWIRE_UI_PORT must differ from TRADEWIRE_WEBHOOK_PORT" in done.stderr


def test_the_dashboard_binds_loopback_on_8300_unless_configured() -> None:
    from settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.ui_host, settings.ui_port) == ("127.0.0.1", 8300)
    assert settings.ui_port != settings.webhook_port
