"""The `tradewire` command: one entry point for every process and operator task.

    tradewire up | web | ui | worker | exchange | migrate | pairs sync    cli/processes.py
    tradewire strategy add | set | list | show | rotate-secret | …  cli/strategy.py
    tradewire alert send …                                         cli/alert.py
    tradewire trades ls | show | cancel                            cli/trades.py
    tradewire incidents [ls] | show | dismiss                      cli/incidents.py
    tradewire risk [show] | halt | reduce-only | resume            cli/risk.py
    tradewire reconcile                                            cli/reconcile.py
    tradewire notify test [--strategy NAME]                        cli/notify.py

`build_parser` imports a command group's module only when it adds that group: a process started
as `tradewire web|worker|…` never loads the operator commands (tests/test_cli_lean.py).
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from settings import Settings

# module → why no Tradewire process needs it. A dependency imports each only to probe for
# something we never use, and it stays resident for the life of the process (measured on the
# webhook and the worker: about 2 MiB for httpx's, 1.6 MiB for pydantic's, 3.8 MiB for trio). Marked absent in
# sys.modules, its import raises ImportError, which both dependencies handle by design.
UNUSED_MODULES = {
    # httpx's __init__ imports its command-line client whenever click is installed (uvicorn
    # installs it), which pulls in click and pygments; our processes never run that client.
    "httpx._main": "httpx's command-line client",
    # FastAPI imports pydantic.v1 while building a route with query or path parameters, only to
    # refuse v1 models; every model of ours is a pydantic 2 model.
    "pydantic.v1": "pydantic's v1 compatibility layer",
    # httpcore imports trio whenever it is installed (the dev extras' selenium installs it), to
    # tell a trio event loop from asyncio; our processes run asyncio only. With its attrs,
    # outcome and sortedcontainers: 3.8 MiB in each of the webhook, the worker and `up`.
    "trio": "the trio event loop",
}


def skip_unused_imports() -> None:
    """Mark UNUSED_MODULES absent (one already imported stays); `main` does it first thing,
    before any command imports httpx or builds a FastAPI route."""
    for name in UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


# The long-running processes: they need no operator command, so their parser leaves those
# commands (and the modules behind them) out.
PROCESS_COMMANDS = frozenset({"up", "web", "ui", "worker", "exchange"})


def load_settings() -> Settings:
    """Settings, or exit with one line per invalid setting (no traceback)."""
    try:
        return Settings()
    except ValidationError as exc:  # one line per problem, naming the setting; no traceback
        problems = "\n".join(f"  {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise SystemExit(f"tradewire: invalid configuration:\n{problems}") from None


def build_parser(*, operator_commands: bool = True) -> argparse.ArgumentParser:
    """Every command; without `operator_commands`, only the process commands (what a process
    started as `tradewire web|worker|…` needs to parse its own command line)."""
    from cli import processes

    parser = argparse.ArgumentParser(prog="tradewire", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    processes.register(sub)
    if operator_commands:
        from cli import alert, incidents, notify, reconcile, risk, strategy, trades

        strategy.register(sub)
        alert.register(sub)
        trades.register(sub)
        incidents.register(sub)
        risk.register(sub)
        reconcile.register(sub)
        notify.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    skip_unused_imports()
    argv = sys.argv[1:] if argv is None else argv
    process = bool(argv) and argv[0] in PROCESS_COMMANDS
    args = build_parser(operator_commands=not process).parse_args(argv)
    import logs

    try:
        code = args.func(args)
    except SystemExit as exc:  # a refusal the command explains (`raise SystemExit("…")`)
        code = logs.exit_status(exc)
    # The command is done: end without the interpreter's teardown (logs.exit_process says why).
    # A command that crashed raises on, and Python prints its traceback.
    logs.exit_process(code)
