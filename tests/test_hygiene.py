"""Source hygiene that ruff does not check.

Money is Decimal end to end (docs/design.md#decimal-end-to-end). A `float` in non-test code is
allowed only for times, rates and measurements, and each such line says so with `# float-ok`.
This test scans every source package and top-level module and fails on a `float(`, a `: float`
or a `-> float` on a line without that marker (the same patterns the pre-stop hook greps for).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "# float-ok"
FLOAT = re.compile(r"\bfloat\(|: float\b|-> float\b")
NOT_SOURCE = {"tests"}
# Packages that must be among the scanned ones, so a broken discovery cannot scan nothing.
CORE = {"trading", "exchange", "paper", "activities", "workflows", "webhook", "db", "devstack", "cli"}


def source_roots() -> list[Path]:
    """The packages and modules pyproject.toml installs (packages.find's include patterns and
    py-modules), plus any other top-level package (a folder with __init__.py, such as bench/),
    so a new package is scanned as soon as it exists."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    names = {pattern.rstrip("*").split(".")[0]
             for pattern in setuptools["packages"]["find"]["include"]}
    names |= {init.parent.name for init in ROOT.glob("*/__init__.py")}
    names -= NOT_SOURCE
    roots = [ROOT / name for name in sorted(names) if (ROOT / name).is_dir()]
    roots += [ROOT / f"{module}.py" for module in setuptools.get("py-modules", [])]
    roots += [p for p in sorted(ROOT.glob("*.py")) if p not in roots]
    return roots


def source_files() -> list[Path]:
    files: list[Path] = []
    for root in source_roots():
        found = [root] if root.is_file() else sorted(root.rglob("*.py"))
        files += [f for f in found if "__pycache__" not in f.parts]
    return files


def unmarked_floats(source: str) -> list[tuple[int, str]]:
    """(line number, line) of every float annotation or call without the marker."""
    return [
        (number, line.strip())
        for number, line in enumerate(source.splitlines(), start=1)
        if FLOAT.search(line) and MARKER not in line
    ]


def test_the_scan_covers_every_source_package() -> None:
    scanned = {root.name for root in source_roots()}
    assert CORE <= scanned, f"not scanned: {CORE - scanned}"
    assert {"bench", "settings.py", "worker.py", "wiring.py", "pair_catalog.py"} <= scanned
    assert "tests" not in scanned
    assert len(source_files()) > 100


def test_every_float_in_source_is_marked_float_ok() -> None:
    unmarked = [
        f"{path.relative_to(ROOT)}:{number}: {line}"
        for path in source_files()
        for number, line in unmarked_floats(path.read_text())
    ]
    assert unmarked == [], (
        "money is Decimal; mark a deliberate non-money float (a time, a rate, a measurement) "
        f"with '{MARKER}: <why>' on its line: {unmarked}"
    )


def test_an_unmarked_float_is_found() -> None:
    source = "\n".join([
        "price: float = 1.5",
        "def mid(self) -> float:",
        "    return float(x)",
        "timeout_s: float = 5.0  # float-ok: seconds",
        "floaty: Decimal = Decimal(1)  # a name that merely contains the word",
    ])
    assert unmarked_floats(source) == [
        (1, "price: float = 1.5"),
        (2, "def mid(self) -> float:"),
        (3, "return float(x)"),
    ]
