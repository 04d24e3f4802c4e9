from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import pytest

from devstack.console import Console
from devstack.lock import StateDirBusy, StateDirLock
from devstack.readiness import NotReady, NotYet, http_base, tcp_open, wait_ready
from devstack.up import admin_token_line, masked_url, socket_dir
from settings import Settings
from tests.devstack.support import free_ports, listening


async def test_wait_ready_returns_the_first_answer_after_not_yet() -> None:
    answers = iter([NotYet("booting"), ConnectionError("refused"), None, ["ready line"]])

    async def probe() -> list[str] | None:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await wait_ready("demo", probe, interval_s=0) == ["ready line"]


async def test_wait_ready_stops_as_soon_as_a_process_died() -> None:
    async def probe() -> None:
        raise NotYet("still booting")

    with pytest.raises(NotReady, match=r"web exited \(exit code 1\) before demo was ready"):
        await wait_ready("demo", probe, failed=lambda: "web exited (exit code 1)")


async def test_wait_ready_gives_up_naming_what_it_last_saw() -> None:
    async def probe() -> None:
        raise NotYet("GET /healthz answered 503")

    with pytest.raises(NotReady, match="last check: GET /healthz answered 503"):
        await wait_ready("web", probe, timeout_s=0, interval_s=0)


async def test_tcp_open_sees_a_listener_and_not_a_closed_port() -> None:
    with listening() as port:
        assert await tcp_open("127.0.0.1", port)
    (closed,) = free_ports(1)
    assert not await tcp_open("127.0.0.1", closed)


def test_wildcard_binds_are_reached_on_loopback() -> None:
    assert http_base("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert http_base("::", 80) == "http://[::1]:80"
    assert http_base("127.0.0.1", 8000) == "http://127.0.0.1:8000"


def test_a_second_up_on_the_same_state_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = StateDirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(StateDirBusy, match=rf"pid {os.getpid()}\).*TRADEWIRE_STATE_DIR"):
            StateDirLock(tmp_path).acquire()
    finally:
        first.release()
    again = StateDirLock(tmp_path)
    again.acquire()
    again.release()


async def test_a_lock_held_by_another_process_is_refused_and_freed_when_it_dies(
    tmp_path: Path,
) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys, time; from pathlib import Path; from devstack.lock import StateDirLock; "
        f"StateDirLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); "
        "time.sleep(600)",
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"held\n"
    with pytest.raises(StateDirBusy, match=rf"pid {holder.pid}\)"):
        StateDirLock(tmp_path).acquire()
    holder.kill()
    await holder.wait()
    lock = StateDirLock(tmp_path)
    lock.acquire()
    lock.release()


def test_the_admin_token_line_says_where_the_token_is_never_what_it_is(tmp_path: Path) -> None:
    generated = Settings(_env_file=None, state_dir=tmp_path)
    token = generated.ensure_admin_token()
    line = admin_token_line(generated)
    assert str(generated.admin_token_file) in line and token not in line
    assert generated.admin_token_file.stat().st_mode & 0o077 == 0

    configured = Settings(_env_file=None, state_dir=tmp_path, admin_token="s3cret-token-value")
    line = admin_token_line(configured)
    assert "TRADEWIRE_ADMIN_TOKEN" in line and "s3cret" not in line


def test_database_urls_are_shown_without_their_password() -> None:
    url = "postgresql+psycopg://tw:hunter2@db:5432/tradewire"
    assert "hunter2" not in masked_url(url) and "db:5432/tradewire" in masked_url(url)
    embedded = "postgresql+psycopg://postgres@/tradewire?host=/tmp/state/pg"
    assert socket_dir(embedded) == "/tmp/state/pg"


def test_a_console_survives_a_reader_that_went_away() -> None:
    stream = io.StringIO()
    stream.close()
    Console(stream=stream).say("nobody reads this")


async def test_a_component_that_dies_itself_is_named_once() -> None:
    async def probe() -> None:
        raise NotYet("still booting")

    with pytest.raises(NotReady, match=r"^web exited \(exit code 3\) before it was ready"):
        await wait_ready("web", probe, failed=lambda: "web exited (exit code 3)")
