"""schemathesis against the app's own OpenAPI document (issue 20, deliverable 7; review D15).

Every operation of `/openapi.json` is fuzzed in-process (schemathesis calls the ASGI app, whose
lifespan it runs once in its own thread and event loop), against the real PostgreSQL and
Temporal dev server, twice: anonymously and with credentials (the admin token, and for the
alert route the strategy's own secret in the body, so that the validation after authentication
is reached). Both schema-valid (positive) and schema-invalid (negative) requests are sent.

What must hold for every request: no 5xx, and an answer the document describes: its status
code is listed for the operation, its content type is the one listed, and its body matches the
schema listed.

The run is bounded and reproducible: `MAX_EXAMPLES` per operation, credential mode and
generation mode, derandomized (the same inputs on every run). `TRADEWIRE_FUZZ_EXAMPLES=500`
runs a longer one by hand (README, "Keeping it tested").
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import delete, inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.models import Incident, RiskState, Trade
from settings import Settings
from tests.support.paper import PaperExchange
from webhook import strategies
from webhook.app import create_app
from webhook.auth import server_key
from webhook.frontdoor import is_admin_path
from webhook.schemas import render_alert

from .conftest import TOKEN, Strat, Webhook, make_settings
from .test_incidents_api import raise_incidents

MAX_EXAMPLES = int(os.environ.get("TRADEWIRE_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ALERT_PATH = "/webhook/tradingview"
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def document() -> dict[str, Any]:
    return create_app(Settings(_env_file=None, docs_enabled=True)).openapi()  # type: ignore[call-arg]


def operation_labels() -> list[str]:
    """Every operation of the document, read at collection time (no database needed)."""
    spec = document()
    return [f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops]


@dataclass(frozen=True)
class Target:
    schema: Any  # schemathesis' OpenApiSchema, loaded from the app's /openapi.json
    strategy: Strat
    # Rows that exist, so that generated requests reach past "no such row" too.
    known: dict[str, list[int]] = field(default_factory=dict)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_the_document_is_valid_openapi_and_every_reference_resolves() -> None:
    """Review D15: the alert's schema referred to `#/$defs/Action` (and EntryType,
    MarketPosition), which nothing in the document defines; schemathesis skipped the route."""
    spec = document()
    schemathesis.openapi.from_dict(spec).validate()  # against the OpenAPI 3.1 meta-schema
    found = set(refs(spec))
    assert found, "the document holds no reference at all"
    for ref in sorted(found):
        assert ref.startswith("#/"), ref
        node: Any = spec
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]


def test_admin_routes_declare_the_bearer_token_and_what_they_answer_without_it() -> None:
    """Review D15: no securitySchemes, and 401/404/409/413/503 undocumented."""
    spec = document()
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["adminToken"].items()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            if is_admin_path(path):
                assert op["security"] == [{"adminToken": []}], (method, path)
                assert {"401", "413", "422"} <= codes, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path, codes)
            if method == "post":
                assert "400" in codes, (method, path, codes)  # a body that is not JSON
    assert {"{}", "{'adminToken': []}"} == {
        str(s) for s in spec["paths"]["/healthz"]["get"]["security"]
    }
    assert {"409", "413", "429", "503"} <= set(spec["paths"][ALERT_PATH]["post"]["responses"])


@pytest.fixture(scope="module")
def fuzz_settings(
    temporal_env: WorkflowEnvironment,
    paper_exchange: PaperExchange,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    return make_settings(
        temporal_env,
        paper_exchange,
        tmp_path_factory.mktemp("openapi-fuzz"),
        # Hundreds of anonymous requests come from one address: the per-address limit
        # (tests/webhook/test_front_door.py) would answer 429 to nearly all of them, and the
        # fuzzer must reach the parsing and validation behind it.
        anonymous_burst=1_000_000,
        anonymous_recorded_per_min=1_000_000,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_strategy(
    fuzz_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> Strat:
    name = f"fz{uuid.uuid4().hex[:10]}"
    strategy, secret = await strategies.add(
        sessionmaker,
        server_key(fuzz_settings),
        name,
        params={"rate_limit_per_min": 1_000_000, "max_alert_age_s": 3600},
    )
    return Strat(strategy.id, name, secret)


@pytest.fixture(scope="module")
def target(
    fuzz_settings: Settings, db_url: str, synced_pairs: list[str], fuzz_strategy: Strat
) -> Iterator[Target]:
    app = create_app(fuzz_settings, database_url=db_url)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app's lifespan
    try:
        with asgi.get_client(app) as client:  # one real trade, for the trade routes to find
            opened = client.post(
                ALERT_PATH,
                data=render_alert(Webhook.alert(fuzz_strategy)).encode(),
                headers={"Content-Type": "application/json"},
            )
        assert opened.status_code == 202, opened.text
        yield Target(schema, fuzz_strategy, {"trade_id": [opened.json()["trade_id"]]})
    finally:
        asgi.shutdown_lifespans()  # the app's shutdown: its engine, Temporal client, tasks


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gone_trade(
    target: Target, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[int]:
    """A copy of the live trade's row under a workflow id Temporal never saw (a trade whose
    workflow is gone): shown at once (the live one's state query waits out its 2.5 s budget,
    as no worker answers here) and refused by cancel (409). Deleted after."""
    async with sessionmaker.begin() as session:
        live = await session.get(Trade, target.known["trade_id"][0])
        assert live is not None
        columns = {c.key: getattr(live, c.key) for c in inspect(Trade).column_attrs}
        copy = Trade(**(columns | {"id": None, "workflow_id": f"gone-{uuid.uuid4().hex}"}))
        session.add(copy)
    try:
        yield copy.id
    finally:
        async with sessionmaker.begin() as session:
            await session.execute(delete(Trade).where(Trade.id == copy.id))


@pytest_asyncio.fixture(loop_scope="session")
async def known(
    label: str, target: Target, gone_trade: int, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[dict[str, list[int]]]:
    """Ids of rows that exist, for the operation under test. The incident routes get open and
    resolved incidents, raised for the test and deleted after: /healthz must see none (with
    `strict=true` an open incident is a 503 by design, and the database is shared with
    /healthz's own tests)."""
    live = target.known["trade_id"]
    if "/risk" in label:
        # A generated halt is a real one: every scope is ACTIVE again after the operation, or
        # the alerts fuzzed after it would all be refused (and /healthz's tests find a halt).
        try:
            yield {}
        finally:
            async with sessionmaker.begin() as session:
                await session.execute(delete(RiskState))
        return
    if label in ("GET /trades/{trade_id}", "PATCH /trades/{trade_id}"):
        # No worker answers the live trade here: its query waits out its budget, and so
        # would a PATCH's update (tests/webhook/test_trades_exits.py moves a running one).
        yield {"trade_id": [gone_trade]}
        return
    if "/incidents" not in label:
        yield {"trade_id": [*live, gone_trade]}
        return
    async with sessionmaker.begin() as session:
        await session.execute(delete(Incident))
    try:
        rows = await raise_incidents(sessionmaker)
        yield {"incident_id": [rows.unowned, rows.orphan, rows.resolved]}
    finally:
        async with sessionmaker.begin() as session:
            await session.execute(delete(Incident))


def cases(
    operation: Any, mode: GenerationMode, known: dict[str, list[int]]
) -> st.SearchStrategy[Any]:
    """schemathesis' cases for `operation`; positive ones also with ids of rows that exist (ids
    drawn from 1..2^63-1 almost never name one)."""
    drawn = operation.as_strategy(generation_mode=mode)
    ids = [name for name in known if f"{{{name}}}" in operation.path]
    if mode is not GenerationMode.POSITIVE or not ids:
        return drawn
    existing = st.fixed_dictionaries({name: st.sampled_from(known[name]) for name in ids})
    return drawn | existing.flatmap(
        lambda params: operation.as_strategy(generation_mode=mode, path_parameters=params)
    )


def authenticate(case: schemathesis.Case, strat: Strat, fresh: bool) -> None:
    """Put the strategy's name and secret in an alert body that is a JSON object (an invalid
    body of another shape stays as generated: it must be refused as it is). `fresh`: also a
    known ticker and the current time, so that some alerts are accepted."""
    if case.operation.path != ALERT_PATH or not isinstance(case.body, dict):
        return
    body = {**case.body, "strategy": strat.name, "secret": strat.secret}
    if fresh:
        body |= {"ticker": "BTCUSDT.P", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    case.body = body


def fuzz(
    target: Target,
    label: str,
    mode: GenerationMode,
    known: dict[str, list[int]],
    *,
    credentials: bool,
) -> Counter[int]:
    """Run schemathesis' cases for one operation; every answer must pass CHECKS (and, without
    credentials, `anonymous_learns_nothing`). Returns how many answers each status code got."""
    method, path = label.split(" ", 1)
    operation = target.schema[path][method]
    headers = {"Authorization": f"Bearer {TOKEN}"} if credentials else {}
    seen: Counter[int] = Counter()

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,  # the same inputs on every run: a failure is reproducible
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(operation, mode, known), st.booleans())
    def check(case: schemathesis.Case, fresh: bool) -> None:
        if credentials:
            authenticate(case, target.strategy, fresh)
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen[response.status_code] += 1
        if not credentials:
            anonymous_learns_nothing(path, response)

    check()
    return seen


def anonymous_learns_nothing(path: str, response: Any) -> None:
    """Without credentials: admin routes answer 401 before anything else; /healthz says up or
    down only; an alert's refusal carries no signal_id (review D1, D5, D6, D11)."""
    if is_admin_path(path):
        assert response.status_code == 401, (response.status_code, response.text)
    elif path == "/healthz":
        assert response.status_code == 422 or set(response.json()) == {"status"}, response.text
    elif path == ALERT_PATH:
        assert "signal_id" not in response.json(), response.text


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("label", operation_labels())
def test_anonymous_requests_get_no_5xx_and_documented_answers(
    target: Target, label: str, mode: GenerationMode, known: dict[str, list[int]]
) -> None:
    seen = fuzz(target, label, mode, known, credentials=False)
    assert sum(seen.values()) > 0


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("label", operation_labels())
def test_requests_with_credentials_get_no_5xx_and_documented_answers(
    target: Target, label: str, mode: GenerationMode, known: dict[str, list[int]]
) -> None:
    seen = fuzz(target, label, mode, known, credentials=True)
    # The credentials were taken: answers other than 401 (a negative case may break the
    # token itself), and valid alerts with the strategy's secret were accepted.
    assert set(seen) - {401}, seen
    if label == f"POST {ALERT_PATH}" and mode is GenerationMode.POSITIVE:
        assert seen[202] > 0, seen
