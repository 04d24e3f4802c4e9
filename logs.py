"""Logging for every Tradewire process: one line per record, the logger name says who spoke.

`TRADEWIRE_LOG_FORMAT=json`: one JSON object per line, with `trade_id`, `signal_id` and
`workflow_id` where one applies (docs/design.md#metrics-and-logs). They come from this module's
context (`bind`: the webhook once an alert's ids are known; worker.py's `ActivityLogContext`: every
activity, from its Temporal info and input) or from the extras Temporal's own loggers add
(`workflow.logger`, `activity.logger`).

A process ends through `exit_process` once its work is done: its logs flushed, its exit code
kept, without the interpreter's teardown (which Temporal's threads can crash).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("trade_id", "signal_id", "workflow_id")
# Workflow code cannot set this module's context (the sandbox), and Temporal's workflow logger
# knows the workflow id only: the trade id of a workflow is remembered from its activities'
# inputs, for the workflow's own lines (the most recent ones; a line before any activity of its
# workflow ran in this process has no trade id).
TRADES_REMEMBERED = 4096
_trade_of_workflow: OrderedDict[str, int] = OrderedDict()
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "tradewire_log_context", default=None
)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request at INFO, with URLs: too chatty for a trading log.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@contextlib.contextmanager
def context(**ids: Any) -> Iterator[None]:
    """Ids for the records of this block (and `bind` within it adds more); restored after."""
    token = _context.set({k: v for k, v in ids.items() if v is not None})
    try:
        yield
    finally:
        _context.reset(token)


def remember_trade(workflow_id: str, trade_id: int) -> None:
    """Tie a workflow to its trade for the workflow's own log lines."""
    _trade_of_workflow[workflow_id] = trade_id
    _trade_of_workflow.move_to_end(workflow_id)
    while len(_trade_of_workflow) > TRADES_REMEMBERED:
        _trade_of_workflow.popitem(last=False)


def bind(**ids: Any) -> None:
    """Add ids (trade_id, signal_id, workflow_id) to every record of the current task from now
    on; None values are ignored."""
    now = dict(_context.get() or {})
    now.update({k: v for k, v in ids.items() if v is not None})
    _context.set(now)


class ContextFilter(logging.Filter):
    """Puts the ids of the context on each record (as attributes named like the fields)."""

    def filter(self, record: logging.LogRecord) -> bool:
        found: dict[str, Any] = {}
        # Temporal's loggers: workflow.logger adds `temporal_workflow`, activity.logger
        # `temporal_activity` (each a dict with the workflow id).
        for extra in ("temporal_workflow", "temporal_activity"):
            info = getattr(record, extra, None)
            if isinstance(info, dict) and info.get("workflow_id"):
                found["workflow_id"] = info["workflow_id"]
        for key, value in (_context.get() or {}).items():
            found.setdefault(key, value)
        if "trade_id" not in found and "workflow_id" in found:
            trade_id = _trade_of_workflow.get(found["workflow_id"])
            if trade_id is not None:
                found["trade_id"] = trade_id
        for key, value in found.items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the ids, an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def exit_status(exc: SystemExit) -> int:
    """What Python's own exit would make of `exc`: its message to stderr and status 1, or its
    number."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return 1


def exit_process(code: int) -> None:
    """End this process with `code` once its work is done, its logs and output flushed, without
    the interpreter's teardown.

    Temporal's SDK runs its client and worker on Rust threads that can still call into Python
    while the interpreter is being torn down; one in ten processes then died with "Fatal Python
    error: PyGILState_Release" (SIGABRT) or a segfault after a clean shutdown
    (temporalio/sdk-python#300), so a worker stopped by `docker compose down` reported a crash.
    Everything that must outlive the process is committed before this is called: nothing is left
    for the teardown but freeing memory."""
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
