"""The webhook's and the paper exchange's exposed surfaces, as `tradewire web` and `tradewire
exchange` serve them (issue 20; review D4, D5, D6, D7, D8, D13).

The servers run with the options the commands pass to uvicorn (captured from `uvicorn.run`),
over real sockets: what is tested is what is deployed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.support.paper import PaperExchange

from .conftest import TOKEN, Live, Webhook, make_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}
TV_ADDRESS = "52.89.214.238"  # one of TradingView's published webhook senders
START_TIMEOUT_S = 30


# --- the servers as the commands run them ---------------------------------------------------


def captured_run(monkeypatch: pytest.MonkeyPatch, command: Any) -> tuple[Any, dict[str, Any]]:
    """The app and options `command` hands to uvicorn.run (nothing is served by it)."""
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **options: Any) -> None:
        seen["app"], seen["options"] = app, options

    monkeypatch.setattr(uvicorn, "run", fake_run)
    command()
    return seen["app"], seen["options"]


@contextlib.contextmanager
def serve(app: Any, options: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """Serve `app` with `options` on a free loopback port, in a thread; yield (host, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, **{**options, "host": "127.0.0.1", "port": port,
                                    "timeout_graceful_shutdown": 1})
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def web_command(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    from cli import processes

    monkeypatch.setattr(processes, "load_settings", lambda: settings)
    monkeypatch.setattr(processes.logs, "configure", lambda level, fmt="text": None)  # pytest's logging stays
    return captured_run(monkeypatch, lambda: processes.cmd_web(None))  # type: ignore[arg-type]


@pytest.fixture
def web_settings(
    temporal_env: WorkflowEnvironment, paper_exchange: PaperExchange, tmp_path: Any,
    db_url: str, synced_pairs: list[str],
) -> Settings:
    return make_settings(temporal_env, paper_exchange, tmp_path, database_url=db_url)


def tvonly_strategy(settings: Settings, db_url: str) -> tuple[str, str]:
    live = Live("", settings, db_url)
    strat = live.add_strategy(allow_tradingview_ips=True)
    return strat.name, strat.secret


def post_alert(base: str, name: str, secret: str, headers: dict[str, str]) -> httpx.Response:
    # size_usdt -1: refused by validation right after the allow-list, so no trade starts.
    body = {"secret": secret, "strategy": name, "ticker": "BTCUSDT", "action": "buy",
            "size_usdt": -1, "alert_id": uuid.uuid4().hex}
    return httpx.post(base + "/webhook/tradingview", json=body, headers=headers, timeout=10,
                      trust_env=False)


# --- D4: X-Forwarded-For counts only from TRADEWIRE_TRUSTED_PROXIES ---------------------------


def test_x_forwarded_for_from_an_untrusted_loopback_peer_is_ignored(
    web_settings: Settings, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, secret = tvonly_strategy(web_settings, db_url)
    app, options = web_command(web_settings, monkeypatch)
    with serve(app, options) as (host, port):
        base = f"http://{host}:{port}"
        plain = post_alert(base, name, secret, {})
        forged = post_alert(base, name, secret, {"X-Forwarded-For": TV_ADDRESS})
        chain = post_alert(base, name, secret, {"X-Forwarded-For": f"10.0.0.1, {TV_ADDRESS}"})
    for answer in (plain, forged, chain):
        assert answer.status_code == 403, answer.text
        assert "127.0.0.1" in answer.text and TV_ADDRESS not in answer.text


def test_x_forwarded_for_from_a_trusted_proxy_names_the_sender(
    web_settings: Settings, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = web_settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    name, secret = tvonly_strategy(trusted, db_url)
    app, options = web_command(trusted, monkeypatch)
    with serve(app, options) as (host, port):
        base = f"http://{host}:{port}"
        passed = post_alert(base, name, secret, {"X-Forwarded-For": TV_ADDRESS})
        other = post_alert(base, name, secret, {"X-Forwarded-For": "198.51.100.7"})
    assert passed.status_code == 422, passed.text  # past the allow-list, refused on size_usdt
    assert "size_usdt" in passed.text
    assert other.status_code == 403 and "198.51.100.7" in other.text


def test_neither_server_trusts_forwarded_headers_itself(
    web_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paper.app import serve as serve_exchange

    _, web = web_command(web_settings, monkeypatch)
    _, exchange = captured_run(monkeypatch, lambda: serve_exchange(web_settings))
    assert web["proxy_headers"] is False and exchange["proxy_headers"] is False


# --- D7: every HTTP server times out slow and silent clients --------------------------------

BOUND_S = 2  # the request deadline these tests set
GRACE_S = 8  # generous: a busy 2-CPU machine


def closed_by_server(sock: socket.socket, drip: bytes, within_s: float) -> bool:
    """Send `drip` one byte a second (nothing when empty); True once the server closes."""
    sock.settimeout(1)
    deadline = time.monotonic() + within_s
    sent = 0
    while time.monotonic() < deadline:
        try:
            if sent < len(drip):
                sock.send(drip[sent:sent + 1])
                sent += 1
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


SLOW_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
SLOW_BODY = (b"POST /trades/1/cancel HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 400\r\n\r\n"
             + b" " * 400)


@pytest.mark.parametrize("drip", [b"", SLOW_HEADERS, SLOW_BODY], ids=["idle", "headers", "body"])
@pytest.mark.parametrize("server", ["web", "exchange"])
def test_a_slow_or_silent_client_is_disconnected(
    server: str, drip: bytes, web_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paper.app import serve as serve_exchange

    settings = web_settings.model_copy(update={"http_request_timeout_s": BOUND_S})
    if server == "web":
        app, options = web_command(settings, monkeypatch)
    else:
        app, options = captured_run(monkeypatch, lambda: serve_exchange(settings))
    with serve(app, options) as (host, port), socket.create_connection((host, port)) as sock:
        assert closed_by_server(sock, drip, BOUND_S + GRACE_S), (
            f"{server}: the connection is still open {BOUND_S + GRACE_S} s later"
        )


def test_a_prompt_request_after_a_slow_one_is_unaffected(
    web_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = web_settings.model_copy(update={"http_request_timeout_s": BOUND_S})
    app, options = web_command(settings, monkeypatch)
    with serve(app, options) as (host, port):
        with httpx.Client(base_url=f"http://{host}:{port}", trust_env=False) as http:
            first = http.get("/healthz")
            time.sleep(BOUND_S + 0.5)  # idle longer than the deadline, under keep-alive's 5 s
            second = http.get("/healthz")
    assert first.status_code == second.status_code == 200


# --- D6: the admin token before any body, and a cap on every body ---------------------------

MIB = 1024 * 1024


async def test_an_anonymous_50_mb_admin_body_is_refused_unread(webhook: Webhook) -> None:
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(50):
            pulled += 1
            yield b'{"flatten": "' + b"A" * MIB

    answer = await webhook.http.post("/trades/1/cancel", content=body(),
                                     headers={"Content-Type": "application/json"})
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert pulled <= 1, f"{pulled} MiB read before refusing"


@pytest.mark.parametrize("path", ["/trades/1/cancel", "/incidents/1/dismiss"])
@pytest.mark.parametrize("content", [b"{not json", b"null", b'{"flatten": "x"}', b"[]"])
async def test_an_anonymous_admin_body_gets_401_whatever_it_holds(
    webhook: Webhook, path: str, content: bytes
) -> None:
    answer = await webhook.http.post(path, content=content,
                                     headers={"Content-Type": "application/json"})
    assert answer.status_code == 401, answer.text


async def test_an_admin_body_over_the_cap_is_413_with_the_token(webhook: Webhook) -> None:
    cap = webhook.settings.admin_body_max_bytes
    big = b'{"note": "' + b"a" * cap + b'"}'
    answer = await webhook.http.post("/incidents/1/dismiss", content=big,
                                     headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 413 and str(cap) in answer.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield big[: cap // 2]
        yield big[cap // 2:]

    streamed = await webhook.http.post("/incidents/1/dismiss", content=chunks(),
                                       headers={**AUTH, "Content-Type": "application/json"})
    assert streamed.status_code == 413


async def test_the_alert_route_keeps_its_own_cap(webhook: Webhook) -> None:
    from webhook.schemas import MAX_BODY_BYTES

    answer = await webhook.post(b"x" * (MAX_BODY_BYTES + 1))
    assert answer.status_code == 413 and str(MAX_BODY_BYTES) in answer.text
    ok = await webhook.post(b'{"not": "an alert"}')
    assert ok.status_code in (400, 401, 422)  # read by the route itself, not capped away


# --- D8: out-of-range ids and NUL answer 422 with the token, never 500 -----------------------

TOO_BIG = str(2**63)
HUGE = "156362230673555205390336"


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", f"/trades/{TOO_BIG}", {}),
        ("GET", f"/trades/{HUGE}", {}),
        ("GET", "/trades/0", {}),
        ("GET", "/trades/-1", {}),
        ("POST", f"/trades/{HUGE}/cancel", {}),
        ("GET", "/trades", {"before": HUGE}),
        ("GET", "/trades", {"before": "0"}),
        ("GET", "/trades", {"symbol": "\x00"}),
        ("GET", "/trades", {"strategy": "a\x00b"}),
        ("GET", "/trades", {"symbol": "A" * 65}),
        ("GET", f"/incidents/{HUGE}", {}),
        ("POST", f"/incidents/{TOO_BIG}/dismiss", {}),
        ("GET", "/incidents", {"before": HUGE}),
        ("GET", "/incidents", {"symbol": "\x00"}),
    ],
)
async def test_out_of_range_ids_and_nul_answer_422(
    webhook: Webhook, method: str, path: str, params: dict[str, str]
) -> None:
    answer = await webhook.http.request(method, path, params=params, headers=AUTH,
                                        json={"note": "x"} if method == "POST" else None)
    assert answer.status_code == 422, answer.text


async def test_the_largest_id_is_a_plain_404(webhook: Webhook) -> None:
    answer = await webhook.http.get(f"/trades/{2**63 - 1}", headers=AUTH)
    assert answer.status_code == 404


# --- D5: /healthz at bounded cost -----------------------------------------------------------

TICKERS = "/api/v1/futures/market/tickers"


async def requests_since(paper: PaperExchange, since_ns: int, path: str) -> int:
    async with httpx.AsyncClient(base_url=paper.base_url, trust_env=False) as http:
        log = (await http.get("/__admin/requests", params={"since_ns": since_ns})).json()
    return sum(1 for entry in log if entry["path"] == path)


async def test_a_healthz_flood_probes_the_exchange_once_and_stays_healthy(
    webhook: Webhook, paper_exchange: PaperExchange
) -> None:
    since = time.time_ns()
    answers = await asyncio.gather(*(webhook.http.get("/healthz") for _ in range(200)))
    assert [a.status_code for a in answers] == [200] * 200
    assert {a.json()["status"] for a in answers} == {"up"}
    admin = await webhook.http.get("/healthz", headers=AUTH)
    assert admin.json()["exchange"] == "ok"
    assert await requests_since(paper_exchange, since, TICKERS) == 1
    again = await asyncio.gather(*(webhook.http.get("/healthz") for _ in range(100)))
    assert {a.status_code for a in again} == {200}
    assert await requests_since(paper_exchange, since, TICKERS) == 1  # within healthz_cache_s


# --- D13: the paper exchange's admin API refuses cross-site requests ------------------------


@pytest.fixture
async def admin(paper_exchange: PaperExchange) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=paper_exchange.base_url + "/__admin",
                                 trust_env=False) as http:
        yield http


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403),
        ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "application/json", "Host": "attacker.example:8100"}, 403),
    ],
)
async def test_paper_admin_refuses_cross_site_writes(
    admin: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    before = (await admin.get("/state")).json()["faults"]
    answer = await admin.post("/faults", content=b'{"network_error": 1}', headers=headers)
    assert answer.status_code == status, answer.text
    assert (await admin.get("/state")).json()["faults"] == before  # nothing applied


async def test_paper_admin_refuses_a_rebound_host_and_a_foreign_origin_for_reads(
    admin: httpx.AsyncClient,
) -> None:
    assert (await admin.get("/state", headers={"Host": "attacker.example"})).status_code == 403
    assert (await admin.get("/requests", headers={"Origin": "http://evil.example"})).status_code == 403
    assert (await admin.get("/health", headers={"Origin": "http://127.0.0.1:8100"})).status_code == 200


async def test_paper_admin_still_takes_json_and_empty_posts(admin: httpx.AsyncClient) -> None:
    answer = await admin.post("/faults", json={"latency_ms": 0})
    assert answer.status_code == 200, answer.text
    assert (await admin.delete("/faults")).status_code == 200
