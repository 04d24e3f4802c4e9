"""What the long-running processes leave unimported (each costs resident memory for the life of
the process). Checked in a fresh interpreter: this test process has imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cli
from cli import processes

REPO = Path(__file__).resolve().parent.parent

# The modules of the operator commands (`strategy`, `alert`, `trades`, `incidents`, `risk`).
OPERATOR_COMMANDS = ["cli.strategy", "cli.alert", "cli.trades", "cli.incidents", "cli.risk"]

WEB_START = """
import json, sys
import cli
cli.skip_unused_imports()
cli.build_parser(operator_commands=False).parse_args(["web"])
import httpx
from settings import Settings
from webhook import trades
from webhook.app import create_app
create_app(Settings(_env_file=None))
httpx.AsyncClient()  # what the exchange client builds
import httpcore  # what the exchange client's first request imports
names = ["httpx._main", "click", "pygments", "pydantic.v1", "trio", "cli.strategy", "cli.alert",
         "cli.trades", "cli.incidents", "cli.risk"]
print(json.dumps({
    "loaded": [n for n in names if sys.modules.get(n) is not None],
    "trade_routes": sorted(r.path for r in trades.router.routes),
}))
"""


def _run(code: str, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_web_process_leaves_unused_modules_out() -> None:
    result = json.loads(_run(WEB_START))
    assert result["loaded"] == []
    # The routes that take query and path parameters (FastAPI's pydantic.v1 probe) were built.
    assert {"/trades", "/trades/{trade_id}"} <= set(result["trade_routes"])


def test_process_commands_parse_without_the_operator_commands() -> None:
    code = (
        "import sys, cli\n"
        "try:\n"
        "    cli.main([sys.argv[1], '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([n for n in {OPERATOR_COMMANDS!r} if n in sys.modules])\n"
    )
    for command in sorted(cli.PROCESS_COMMANDS):
        out = _run(code, command)
        assert out.splitlines()[-1] == "[]", command
    assert _run(code, "strategy").splitlines()[-1] == repr(OPERATOR_COMMANDS)


def test_full_parser_still_has_every_command() -> None:
    parser = cli.build_parser()
    for argv in (["web"], ["worker"], ["strategy", "list"], ["trades", "ls"], ["pairs", "sync"],
                 ["incidents"], ["incidents", "dismiss", "1", "--note", "known"], ["risk"],
                 ["risk", "halt", "--flatten", "--strategy", "s"]):
        assert parser.parse_args(argv).func is not None
    lean = cli.build_parser(operator_commands=False)
    assert lean.parse_args(["worker"]).func is processes.cmd_worker


# What each process's entry module must not pull in: another process's code and frameworks
# (each import stays resident for the life of the process; bench/memory.py measures RSS).
# The webhook loads the worker only when it hosts the fast path (webhook/fast_path.py).
NOT_IMPORTED_BY = {
    "webhook.app": ["worker", "temporalio.worker", "ui", "jinja2", "paper", "devstack",
                    "alembic", "cli.strategy"],
    "worker": ["webhook", "fastapi", "starlette", "uvicorn", "ui", "jinja2", "paper",
               "devstack", "alembic", "cli.strategy"],
    # The dashboard's pages read PostgreSQL: Temporal's SDK (~20 MiB resident) loads only when
    # it asks a running trade for its exits or answers an incident (ui/app.py, ui/actions.py).
    "ui.app": ["worker", "temporalio", "exchange", "httpx", "paper", "devstack", "alembic"],
    "paper.app": ["sqlalchemy", "psycopg", "temporalio", "db", "activities", "workflows",
                  "webhook", "worker", "ui", "devstack", "alembic"],
}
ENTRY_IMPORTS = """
import json, sys
import cli
cli.skip_unused_imports()
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(name for name, module in sys.modules.items() if module is not None)))
"""


def test_each_process_entry_leaves_the_other_processes_out() -> None:
    for entry, absent in NOT_IMPORTED_BY.items():
        loaded = set(json.loads(_run(ENTRY_IMPORTS, entry)))
        assert entry in loaded  # the probe imported what it names
        assert [name for name in absent if name in loaded] == [], entry
