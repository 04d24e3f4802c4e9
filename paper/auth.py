"""Request authentication, exactly as BitUnix signs REST requests (docs/bitunix.md#request-signing).

    digest = sha256_hex(nonce + timestamp + apiKey + queryParams + body)
    sign   = sha256_hex(digest + secretKey)

`queryParams` is the query string's parameters sorted by key (ASCII), each key directly
followed by its (URL-decoded) value, with empty values and any `sign` key left out, as the
official Java demo and ccxt-branch build it. `body` is the RAW request body as received, so a
compact and a spaced JSON body both verify as long as the signed string is the sent one.

Assumptions where BitUnix's documentation is silent (docs/bitunix.md#unconfirmed-assumptions):
* TIMESTAMP_WINDOW_MS: a request whose `timestamp` header is further than this from the
  server clock (either direction) is refused with errors.STALE_TIMESTAMP_CODE.
* The nonce is required to be present in the signed string only; it is not checked for
  uniqueness (the Java demo sends an empty nonce).
* An api-key that is present but unknown answers errors.UNKNOWN_KEY_CODE (10003).
The signature is checked before the timestamp window.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl

from paper import errors as E
from paper.errors import ExchangeError

TIMESTAMP_WINDOW_MS = 60_000


def canonical_query(raw_query: str) -> str:
    pairs = [
        (k, v) for k, v in parse_qsl(raw_query, keep_blank_values=True) if v != "" and k != "sign"
    ]
    pairs.sort(key=lambda kv: kv[0])
    return "".join(k + v for k, v in pairs)


def sign(nonce: str, timestamp: str, api_key: str, query: str, body: str, secret: str) -> str:
    digest = hashlib.sha256((nonce + timestamp + api_key + query + body).encode()).hexdigest()
    return hashlib.sha256((digest + secret).encode()).hexdigest()


def verify(headers: Mapping[str, str], raw_query: str, body: bytes, api_key: str, secret: str,
           now_ms: int) -> None:
    """Raise ExchangeError unless the request is signed with the paper key and fresh."""
    key = headers.get("api-key", "")
    if not key:
        raise ExchangeError(E.API_KEY_EMPTY)
    if not hmac.compare_digest(key.encode(), api_key.encode()):
        raise ExchangeError(E.UNKNOWN_KEY_CODE, "unknown api-key")
    given = headers.get("sign", "")
    timestamp = headers.get("timestamp", "")
    nonce = headers.get("nonce", "")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExchangeError(E.SIGNATURE_ERROR, "body is not UTF-8") from exc
    expected = sign(nonce, timestamp, key, canonical_query(raw_query), text, secret)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ExchangeError(E.SIGNATURE_ERROR)
    if not timestamp.isdigit() or abs(int(timestamp) - now_ms) > TIMESTAMP_WINDOW_MS:
        raise ExchangeError(
            E.STALE_TIMESTAMP_CODE, f"timestamp outside ±{TIMESTAMP_WINDOW_MS} ms of server time"
        )
