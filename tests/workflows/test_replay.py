"""Replay: every saved history in tests/histories/ must replay through today's workflow code.
A change that makes a running trade's workflow non-deterministic fails here, in CI, before it
can strand a trade in production. How to refresh: tests/histories/README.md."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.harness import HISTORIES
from workflows.converter import DATA_CONVERTER
from workflows.pairs_sync import PairsSyncWorkflow
from workflows.trade import TradeWorkflow
from workflows.watcher import AccountWatcherWorkflow

SAVED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_saved() -> None:
    assert len(SAVED) >= 10, "run the refresh described in tests/histories/README.md"


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
async def test_saved_history_replays(path) -> None:
    raw = path.read_text()
    workflow_id = json.loads(raw)["events"][0]["workflowExecutionStartedEventAttributes"].get(
        "workflowId", path.stem
    )
    replayer = Replayer(workflows=[TradeWorkflow, AccountWatcherWorkflow, PairsSyncWorkflow],
                        data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(WorkflowHistory.from_json(workflow_id, raw),
                                            raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
