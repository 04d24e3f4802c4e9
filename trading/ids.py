"""Deterministic client order ids: the same (workflow, leg, sequence) always gives the same id,
so a re-sent placement carries the id of the first attempt and the exchange (30042) or our
lookup by client id recognises it. Never random.

Layout, upper-case letters and digits only, at most 32 characters:
    "TW" + 20 base32 characters of SHA-256(namespace + NUL + workflow_id)   (100 bits)
         + leg (1-4 letters A-Z) + seq in decimal (0..999999)
The hash part has a fixed length, the leg is letters and the sequence digits, so the parts
cannot run into each other: distinct inputs give distinct ids unless SHA-256 collides in
100 bits. BitUnix's own length and charset limits are unconfirmed (cachy: 64), hence <= 32 and
plain [A-Z0-9].
"""

from __future__ import annotations

import base64
import hashlib
import re

PREFIX = "TW"
HASH_CHARS = 20
MAX_SEQ = 999_999
MAX_LENGTH = 32

LEG_ENTRY = "E"
LEG_EXIT = "X"
LEG_TAKE_PROFIT = "TP"
LEG_STOP_LOSS = "SL"
LEG_FLATTEN = "F"

_LEG = re.compile(r"[A-Z]{1,4}")


def client_order_id(workflow_id: str, leg: str, seq: int, *, namespace: str = "") -> str:
    """The client id of order `seq` of `leg` in workflow `workflow_id`.

    `namespace` separates installations that share an exchange account (or a database that was
    reset, whose signal ids, and so workflow ids, start again from 1): set it to an install id
    so an old order is never mistaken for a new one."""
    if not isinstance(workflow_id, str) or not workflow_id:
        raise ValueError("workflow_id must be a non-empty string")
    if not isinstance(leg, str) or not _LEG.fullmatch(leg):
        raise ValueError(f"leg must be 1-4 letters A-Z, got {leg!r}")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"seq must be an int within [0, {MAX_SEQ}], got {seq!r}")
    if not isinstance(namespace, str) or "\x00" in namespace:
        raise ValueError("namespace must be a string without NUL characters")
    digest = hashlib.sha256(f"{namespace}\x00{workflow_id}".encode()).digest()
    hashed = base64.b32encode(digest).decode("ascii")[:HASH_CHARS]
    return f"{PREFIX}{hashed}{leg}{seq}"


_SEQ = re.compile(r"[A-Z](\d+)$")


def sequence_of(client_id: str) -> int:
    """The sequence number of a client id made by `client_order_id` (the digits after its leg)."""
    found = _SEQ.search(client_id)
    if found is None or not client_id.startswith(PREFIX):
        raise ValueError(f"not a Tradewire client order id: {client_id!r}")
    return int(found.group(1))
