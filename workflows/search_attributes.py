"""The search attributes that let operators filter trades in the Temporal UI, registered
idempotently on whatever Temporal a client points at (dev server or production)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

SYMBOL = SearchAttributeKey.for_keyword("Symbol")
SIDE = SearchAttributeKey.for_keyword("Side")
STRATEGY = SearchAttributeKey.for_keyword("Strategy")
TRADE_STATUS = SearchAttributeKey.for_keyword("TradeStatus")

ALL = (SYMBOL, SIDE, STRATEGY, TRADE_STATUS)


async def register(client: Client, namespace: str) -> list[str]:
    """Add the attributes that are missing; return the names that were added."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in ALL if key.name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)
