"""The running webhook, as `alert send` and `trades` reach it over HTTP."""

from __future__ import annotations

import argparse

import httpx

from settings import Settings

TIMEOUT_S = 10.0


def base_url(args: argparse.Namespace, settings: Settings) -> str:
    """`--url`, else the webhook this configuration serves."""
    return (args.url or f"http://{settings.host}:{settings.webhook_port}").rstrip("/")


def is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")
