"""How a Tradewire process ends once its work is done: logs and output flushed, the exit code
kept, and no interpreter teardown, where Temporal's Rust threads could still call into Python
(temporalio/sdk-python#300: one process in ten died with SIGABRT or a segfault after a clean
shutdown; a worker stopped by `docker compose down` reported a crash). Checked in a fresh
interpreter, as a process command runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# A command that logs through a handler that holds its lines until flushed, then returns 3; an
# atexit hook stands for the interpreter's teardown.
ENDS = """
import atexit, logging, sys
import cli
from cli import processes

atexit.register(lambda: print("teardown ran", flush=True))
handler = logging.StreamHandler(sys.stdout)
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
sys.stdout = open(sys.stdout.fileno(), "w", buffering=1 << 16, closefd=False)  # held until flushed
handler.setStream(sys.stdout)

def done(args):
    logging.getLogger("worker").info("worker stopped")
    print("last words")
    return 3

processes.cmd_worker = done
cli.main(["worker"])
print("main returned")
"""


def test_a_command_ends_with_its_code_and_output_and_without_the_teardown() -> None:
    ended = subprocess.run([sys.executable, "-c", ENDS], cwd=REPO, capture_output=True, text=True,
                           check=False, timeout=60)
    assert ended.returncode == 3, ended.stderr
    assert ended.stdout.splitlines() == ["worker stopped", "last words"], ended.stdout
    assert "teardown ran" not in ended.stdout


def test_a_command_that_refuses_ends_the_same_way_with_its_message() -> None:
    # `raise SystemExit("…")`: the message on stderr and status 1, as Python's own exit gives.
    code = ENDS.replace('    return 3', '    raise SystemExit("tradewire: no such strategy")')
    ended = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                           check=False, timeout=60)
    assert ended.returncode == 1
    assert ended.stderr.strip() == "tradewire: no such strategy"
    assert ended.stdout.splitlines() == ["worker stopped", "last words"], ended.stdout
