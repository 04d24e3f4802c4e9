"""The running webhook, as `alert send`, `trades`, `incidents` and `risk` reach it over HTTP."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

import httpx

from cli import load_settings
from settings import Settings

TIMEOUT_S = 10.0


def base_url(args: argparse.Namespace, settings: Settings) -> str:
    """`--url`, else the webhook this configuration serves."""
    return (args.url or f"http://{settings.host}:{settings.webhook_port}").rstrip("/")


def is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


def operator() -> str:
    """Who runs this command, for the records an admin call leaves (`by`)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password database
        return "operator"


def fail(command: str, message: str) -> int:
    """Say what went wrong on stderr; the exit code."""
    print(f"tradewire {command}: {message}", file=sys.stderr)
    return 1


def admin_request(command: str, args: argparse.Namespace, method: str, path: str,
                  **kwargs: Any) -> httpx.Response | int:
    """The admin API's answer, or the exit code after saying what went wrong."""
    settings = load_settings()
    token = settings.resolve_admin_token()
    if not token:
        return fail(command, "no admin token: set TRADEWIRE_ADMIN_TOKEN, or run `tradewire up` "
                             f"(it writes {settings.admin_token_file})")
    url = base_url(args, settings) + path
    try:
        response = httpx.request(method, url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=TIMEOUT_S, **kwargs)
    except httpx.HTTPError as exc:
        return fail(command, f"{url}: {type(exc).__name__}: {exc}")
    if not response.is_success:
        detail = response.json().get("detail", response.text) if is_json(response) else response.text
        return fail(command, f"{response.status_code}: {detail}")
    return response
