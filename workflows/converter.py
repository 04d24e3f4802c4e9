"""Every Temporal client and worker goes through here: the pydantic data converter is the one
that carries `Decimal` exactly (the default converter raises TypeError on it)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter


async def connect(target: str, namespace: str) -> Client:
    return await Client.connect(target, namespace=namespace, data_converter=DATA_CONVERTER)
