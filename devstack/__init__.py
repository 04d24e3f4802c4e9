"""The one-command local stack behind `tradewire up` (and `make run`)."""

from __future__ import annotations

from devstack.up import run_up

__all__ = ["run_up"]
