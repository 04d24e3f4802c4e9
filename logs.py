"""Logging for every Tradewire process: one line per record, the logger name says who spoke."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        force=True,
    )
    # httpx logs every request at INFO, with URLs: too chatty for a trading log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
