"""The request log for benchmarks: receipt time (time.time_ns()) of every BitUnix-path request."""

from __future__ import annotations

from collections import deque
from typing import Any

MAX_ENTRIES = 200_000


class RequestLog:
    def __init__(self) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)

    def record(self, t_ns: int, method: str, path: str, client_id: str | None, code: int) -> None:
        """`code` is the BitUnix code answered, or the HTTP status when no envelope was sent."""
        self._entries.append(
            {"t_ns": t_ns, "method": method, "path": path, "client_id": client_id, "code": code}
        )

    def since(self, since_ns: int) -> list[dict[str, Any]]:
        return [e for e in self._entries if e["t_ns"] >= since_ns]

    def clear(self) -> None:
        self._entries.clear()
