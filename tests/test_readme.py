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


def _layers_diagram() -> list[str]:
    """The layers the README draws: the first column of its ```text block under "## Layout"."""
    layout = README.split("## Layout", 1)[1]
    block = layout.split("```text\n", 1)[1].split("```", 1)[0]
    return [" | ".join(part.strip().rstrip("/") for part in line.split("  ")[0].split("|"))
            for line in block.splitlines() if line.strip()]


def _contract_layers() -> list[str]:
    import tomllib

    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c["layers"] for c in contracts if c["type"] == "layers")


def test_the_layout_draws_the_layers_the_import_contracts_enforce() -> None:
    assert _layers_diagram() == _contract_layers()


def test_the_layout_names_every_package_and_module() -> None:
    root = Path(__file__).parents[1]
    layout = README.split("## Layout", 1)[1].split("```text", 1)[0]
    tops = {p.name for p in root.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    tops |= {p.name for p in root.glob("*.py")}
    missing = sorted(n for n in tops if f"{n}/" not in layout and f"{n} " not in layout)
    assert missing == []
