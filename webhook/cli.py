"""`tradewire strategy|alert|trades`: the webhook's operator commands.

tradewire strategy add NAME [--secret S] [defaults and limits]   prints the secret once
tradewire strategy list | show NAME | set NAME … | rotate-secret NAME | disable NAME | enable NAME
tradewire alert send --strategy NAME --ticker T --action buy|sell …   a TradingView-shaped alert
tradewire trades ls | show ID | cancel ID [--flatten]                  through the admin API
"""

from __future__ import annotations

import argparse

from webhook import cli_remote, cli_strategy


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `strategy`, `alert` and `trades` commands to tradewire's parser."""
    cli_strategy.register(subparsers)
    cli_remote.register_alert(subparsers)
    cli_remote.register_trades(subparsers)
