"""What the Dockerfile's `pip install .` puts in the image: a regular (not editable) install must
hold every module and data file the commands need, or the containers fail at their first import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

CHECK = textwrap.dedent(
    """
    import importlib, sys
    from pathlib import Path

    target = Path(sys.argv[1]).resolve()
    modules = [
        "cli", "settings", "logs", "worker", "pair_catalog", "devstack", "devstack.healthcheck",
        "db.migrate", "db.embedded", "webhook.app", "workflows.converter",
        "workflows.search_attributes", "db.migrations",
    ]
    for name in modules:
        module = importlib.import_module(name)
        where = Path(module.__file__).resolve()
        assert target in where.parents, f"{name} came from {where}, not the installed copy"

    from db.migrate import SCRIPT_LOCATION
    assert (SCRIPT_LOCATION / "env.py").is_file(), "db/migrations/env.py is missing"
    assert sorted((SCRIPT_LOCATION / "versions").glob("*.py")), "no migration versions"
    import cli
    cli.build_parser().parse_args(["up"])
    print("ok")
    """
)


def test_a_pip_install_of_the_project_holds_everything_the_commands_import(
    tmp_path: Path,
) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(PROJECT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("tradewire-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), wheel],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr

    # The installed copy comes first on the path, and the working directory is elsewhere, so
    # nothing is imported from the source tree.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env["PYTHONPATH"] = str(target)
    run = subprocess.run(
        [sys.executable, "-c", CHECK, str(target)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
