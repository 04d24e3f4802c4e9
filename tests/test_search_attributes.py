"""`tradewire migrate` registers the search attributes on any Temporal, idempotently."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

from tests.support.temporal import WorkflowEnvironment, temporal_cli
from workflows import search_attributes
from workflows.converter import DATA_CONVERTER


async def test_register_on_an_empty_dev_server_is_idempotent() -> None:
    # A second dev server started WITHOUT any search attributes, as production would be.
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER, dev_server_existing_path=temporal_cli(), dev_server_log_level="error"
    )
    try:
        first = await search_attributes.register(env.client, "default")
        second = await search_attributes.register(env.client, "default")
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
    finally:
        await env.shutdown()
    assert first == ["Side", "Strategy", "Symbol", "TradeStatus"]
    assert second == []
    assert {"Symbol", "Side", "Strategy", "TradeStatus"} <= set(listed.custom_attributes)
