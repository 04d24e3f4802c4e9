"""Where the time goes (`python -m bench --profile`): py-spy samples the webhook and worker
processes while the signal-to-order series runs, and the report lists the frames that were
busiest, by own time and including what they call.

py-spy is not a Tradewire dependency: `pip install py-spy` into the venv to use this. Only
processes the bench started are sampled (by pid); py-spy needs ptrace (root, or
CAP_SYS_PTRACE) to attach.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RATE_HZ = 250
TOP = 12


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.asynccontextmanager
async def sampling(pids: dict[str, int], out_dir: Path) -> AsyncIterator[dict[str, Path]]:
    """Record every process in `pids` (role → pid) until the block ends; yields role → the
    collapsed-stack file py-spy writes when it is stopped."""
    procs = _start(pids, out_dir)
    try:
        yield {role: out for role, (_, out) in procs.items()}
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGINT)  # py-spy writes its file on SIGINT
        for proc, _ in procs.values():
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start(pids: dict[str, int], out_dir: Path
           ) -> dict[str, tuple[subprocess.Popen[bytes], Path]]:
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed: `.venv/bin/pip install py-spy`")
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = {}
    for role, pid in pids.items():
        out = out_dir / f"{role.replace(' ', '-')}.collapsed"
        procs[role] = (subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--format", "raw",
             "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ), out)
    return procs


def _short(frame: str) -> tuple[str, bool]:
    """"func (path/to/module.py:123)" → ("func (module.py)", whether it is Tradewire's own
    code): lines vary, functions do not."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    marker = "site-packages/"
    if path.startswith(str(REPO) + "/") and "/.venv/" not in path:
        path = str(Path(path).relative_to(REPO))
    elif marker in path:
        path = path.split(marker, 1)[1]
    elif path.startswith("/"):
        path = Path(path).name
    # py-spy usually names files relative to sys.path already ("webhook/intake.py").
    ours = bool(path) and not path.startswith("<") and (REPO / path).is_file()
    return (f"{name} ({path})" if path else name), ours


def summarize(collapsed: Path, top: int = TOP) -> dict[str, Any]:
    """Top frames by own samples and by inclusive samples, as % of all busy samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: set[str] = set()
    total = 0
    try:
        lines = collapsed.read_text(errors="replace").splitlines()
    except OSError:
        return {"samples": 0}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        shortened = [_short(f) for f in stack.split(";") if f and not f.startswith("process ")
                     and not f.startswith("thread ")]
        if not shortened:
            continue
        frames = [frame for frame, _ in shortened]
        ours.update(frame for frame, mine in shortened if mine)
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def pct(counter: Counter[str], only: set[str] | None = None) -> list[str]:
        # The command's own frames (cli/) are under every sample: they would only head the list.
        rows = [(frame, n) for frame, n in counter.most_common()
                if only is None or (frame in only and " (cli/" not in frame)]
        return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in rows[:top]]

    if not total:
        return {"samples": 0}
    return {"busy_samples": total, "rate_hz": RATE_HZ, "by_own_time": pct(own),
            "tradewire_code_by_inclusive_time": pct(inclusive, ours)}
