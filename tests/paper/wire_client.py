"""A deliberately small BitUnix REST signer for the simulator's tests, written from
docs/bitunix.md#request-signing and independent of exchange/client.py and exchange/signing.py (which
it must not share a bug with)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

PREFIX = "/api/v1/futures/"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def bitunix_sign(nonce: str, timestamp: str, key: str, query: str, body: str, secret: str) -> str:
    return sha256_hex(sha256_hex(nonce + timestamp + key + query + body) + secret)


def query_string_for_sign(params: dict[str, str]) -> str:
    return "".join(k + params[k] for k in sorted(params) if params[k] != "")


class WireClient:
    """Signs and sends one request; answers (status, json-or-None)."""

    def __init__(self, base_url: str, key: str, secret: str) -> None:
        self.base_url, self.key, self.secret = base_url, key, secret
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def aclose(self) -> None:
        await self.http.aclose()

    def headers(
        self,
        query: str,
        body: str,
        *,
        timestamp: int | None = None,
        key: str | None = None,
        secret: str | None = None,
        sign: str | None = None,
    ) -> dict[str, str]:
        nonce = uuid.uuid4().hex
        ts = str(timestamp if timestamp is not None else time.time_ns() // 1_000_000)
        k = self.key if key is None else key
        s = bitunix_sign(nonce, ts, k, query, body, self.secret if secret is None else secret)
        headers = {
            "nonce": nonce,
            "timestamp": ts,
            "sign": sign or s,
            "Content-Type": "application/json",
            "language": "en-US",
        }
        if k:
            headers["api-key"] = k
        return headers

    async def get_raw(
        self, path: str, params: dict[str, Any] | None = None, **hdr: Any
    ) -> httpx.Response:
        params = {k: _text(v) for k, v in (params or {}).items() if v is not None}
        query = query_string_for_sign(params)
        url = PREFIX + path + ("?" + urlencode(sorted(params.items())) if params else "")
        return await self.http.get(url, headers=self.headers(query, "", **hdr))

    async def post_raw(
        self, path: str, body: dict[str, Any] | str, *, spaced: bool = False, **hdr: Any
    ) -> httpx.Response:
        if isinstance(body, str):
            text = body
        else:
            text = json.dumps(body) if spaced else json.dumps(body, separators=(",", ":"))
        return await self.http.post(
            PREFIX + path, content=text.encode(), headers=self.headers("", text, **hdr)
        )

    async def get(
        self, path: str, params: dict[str, Any] | None = None, **hdr: Any
    ) -> dict[str, Any]:
        response = await self.get_raw(path, params, **hdr)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def post(self, path: str, body: dict[str, Any] | str, **kw: Any) -> dict[str, Any]:
        response = await self.post_raw(path, body, **kw)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def public(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.get(PREFIX + path, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
