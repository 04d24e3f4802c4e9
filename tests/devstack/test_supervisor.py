from __future__ import annotations

import asyncio
import io
import os
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from devstack.console import Console, prefixed
from devstack.supervisor import Child, describe_exit, stop_all


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_a_prefix_pads_to_the_longest_name_and_drops_the_line_end() -> None:
    assert prefixed("web", "hello\n", width=8) == "[web]      hello"
    assert prefixed("temporal", "x\r\n", width=8) == "[temporal] x"


def test_colour_is_only_added_when_asked() -> None:
    assert "\x1b[" not in prefixed("web", "x", 3)
    assert prefixed("web", "x", 3, colour="36").startswith("\x1b[36m[web]")


def test_a_console_on_a_pipe_writes_plain_lines() -> None:
    out = io.StringIO()
    console = Console(stream=out)
    console.align(["temporal", "web"])
    console.child("web", "started\n")
    console.say("ready: webhook http://127.0.0.1:1")
    assert out.getvalue() == "[web]      started\nready: webhook http://127.0.0.1:1\n"


async def test_each_output_line_of_a_child_comes_out_behind_its_name() -> None:
    out = io.StringIO()
    console = Console(stream=out, width=4)
    child = Child(
        "demo",
        python("""
            import sys
            print("one"); print("two", file=sys.stderr); print("x" * 70000)
        """),
        os.environ,
        console,
    )
    await child.start()
    assert await child.exited() == 0
    lines = out.getvalue().splitlines()
    assert "[demo] one" in lines and "[demo] two" in lines
    assert all(line.startswith("[demo] ") for line in lines)
    assert sum(len(line) - len("[demo] ") for line in lines if "xxx" in line) == 70000


async def test_stop_leaves_no_process_of_the_group_even_one_that_ignores_sigterm(
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ready"
    # The child starts a grandchild that ignores SIGTERM, then waits for it forever.
    code = f"""
        import subprocess, sys, time, pathlib
        grandchild = subprocess.Popen([sys.executable, "-c",
            "import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "pathlib.Path({str(ready)!r}).write_text('x'); time.sleep(600)"])
        print(grandchild.pid, flush=True)
        grandchild.wait()
    """
    child = Child("tree", python(code), os.environ, Console(stream=io.StringIO()))
    await child.start()
    while not ready.exists():
        assert child.running(), "the child died before its grandchild was ready"
        await asyncio.sleep(0.05)
    tree = [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]
    assert len(tree) == 2
    await stop_all([child], grace_s=0.5)
    gone, alive = psutil.wait_procs(tree, timeout=5)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
    assert child.returncode is not None


async def test_a_child_that_stops_on_sigterm_exits_by_itself() -> None:
    out = io.StringIO()
    child = Child(
        "calm",
        python("""
            import signal, sys, time
            def bye(*_):
                print("bye", flush=True); sys.exit(0)
            signal.signal(signal.SIGTERM, bye)
            print("up", flush=True)
            time.sleep(600)
        """),
        os.environ,
        Console(stream=out, width=4),
    )
    await child.start()
    while "[calm] up" not in out.getvalue():
        assert child.running()
        await asyncio.sleep(0.05)
    await child.stop(grace_s=30)
    assert child.returncode == 0
    assert "[calm] bye" in out.getvalue()
    assert "did not stop" not in out.getvalue()


@pytest.mark.parametrize(
    ("code", "text"), [(0, "exit code 0"), (3, "exit code 3"), (-9, "killed by SIGKILL")]
)
def test_describe_exit(code: int, text: str) -> None:
    assert describe_exit(code) == text
