"""BitUnix request signing: two plain SHA-256 hashes over nonce, timestamp, key, query and body.

Not HMAC, and neither the method nor the path is signed (docs/bitunix.md#request-signing). Pure: no
clock, no randomness; the client passes the nonce and timestamp in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

QueryValue = str | bool | int | None


def _render(value: str | bool | int) -> str:
    # str(True) is "True"; BitUnix (and every demo) expects lowercase.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query_items(params: Mapping[str, QueryValue]) -> list[tuple[str, str]]:
    """The query parameters that are sent and signed: sorted by key, None/empty dropped.

    The client puts exactly these pairs in the URL, so what is signed is what is sent.
    """
    items = []
    for key, value in params.items():
        if value is None or key == "sign":
            continue
        rendered = _render(value)
        if rendered == "":
            continue
        items.append((key, rendered))
    items.sort(key=lambda kv: kv[0])
    return items


def canonical_query(params: Mapping[str, QueryValue]) -> str:
    """`{"uid": "200", "id": "1"}` → `"id1uid200"`: each key directly followed by its value."""
    return "".join(key + value for key, value in query_items(params))


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sign(
    api_key: str,
    secret: str,
    nonce: str,
    timestamp: str,
    query_params: Mapping[str, QueryValue],
    body: str,
) -> str:
    """The `sign` header. `body` must be the exact string sent ("" for GET)."""
    digest = _sha256_hex(nonce + timestamp + api_key + canonical_query(query_params) + body)
    return _sha256_hex(digest + secret)
