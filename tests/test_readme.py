"""README.md stays true: every setting is documented, and the two commands are shown."""

from __future__ import annotations

from pathlib import Path

from settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [
        f"TRADEWIRE_{name.upper()}"
        for name in Settings.model_fields
        if f"`TRADEWIRE_{name.upper()}`" not in README
    ]
    assert missing == [], f"document these settings in README.md: {missing}"


def test_the_two_commands_are_shown() -> None:
    assert "make run" in README and "make test" in README
