"""`tradewire notify test` and a strategy's own receivers (`strategy add|set`), against the
real database and a local HTTP receiver standing for the webhook and Telegram's API."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from tests.support.receiver import free_port, receiver

from .conftest import Live
from .test_cli import env, run  # noqa: F401 - the fixture

TOKEN = "987654:bot-token-" + uuid.uuid4().hex
HOOK_SECRET = "cli-hook-secret-" + uuid.uuid4().hex


def test_notify_test_reaches_each_receiver_and_says_how_it_went(
        env: Live, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, "notify", "test")
    assert code == 2 and "TRADEWIRE_NOTIFY_WEBHOOK_URL" in err
    with receiver() as rec:
        monkeypatch.setenv("TRADEWIRE_NOTIFY_WEBHOOK_URL", f"{rec.url}/hook?key=abc")
        monkeypatch.setenv("TRADEWIRE_NOTIFY_WEBHOOK_SECRET", HOOK_SECRET)
        monkeypatch.setenv("TRADEWIRE_TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TRADEWIRE_TELEGRAM_CHAT_ID", "-1001")
        monkeypatch.setenv("TRADEWIRE_TELEGRAM_API_URL", rec.url)
        code, out, _ = run(capsys, "notify", "test")
        assert code == 0, out
        assert f"webhook {rec.url}/hook: ok (HTTP 200)" in out  # no query: it may hold a key
        assert "telegram chat -1001: ok (HTTP 200)" in out
        assert TOKEN not in out and HOOK_SECRET not in out
        hook = rec.at("/hook?key=abc")[0]
        ts = hook.headers["X-Tradewire-Timestamp"]
        mac = hmac.new(HOOK_SECRET.encode(), ts.encode() + b"." + hook.body, hashlib.sha256)
        assert hook.headers["X-Tradewire-Signature"] == "sha256=" + mac.hexdigest()
        assert hook.json["event"] == "test"
        assert rec.at(f"/bot{TOKEN}/sendMessage")[0].json["chat_id"] == "-1001"

        # A strategy's own webhook (here: nothing listens) replaces the account's.
        dead = f"http://127.0.0.1:{free_port()}/strategy"
        code, out, _ = run(capsys, "strategy", "add", "cli-notify", "--notify-webhook-url", dead,
                           "--notify-webhook-secret", "own-" + HOOK_SECRET,
                           "--telegram-chat-id", "-1002")
        assert code == 0, out
        assert env.sql("SELECT notify_webhook_url, notify_webhook_secret, telegram_bot_token, "
                       "telegram_chat_id FROM strategy WHERE name = 'cli-notify'") == [
            (dead, "own-" + HOOK_SECRET, None, "-1002")]
        code, out, _ = run(capsys, "strategy", "show", "cli-notify")
        assert code == 0 and HOOK_SECRET not in out
        assert f"{dead} (signed)" in out and "bot of the account, chat -1002" in out
        code, out, _ = run(capsys, "notify", "test", "--strategy", "cli-notify")
        assert code == 1
        assert f"webhook {dead}: FAILED (ConnectError)" in out
        assert "telegram chat -1002: ok" in out

        code, out, _ = run(capsys, "strategy", "set", "cli-notify", "--no-notify-webhook",
                           "--no-telegram")
        assert code == 0, out
        assert env.sql("SELECT notify_webhook_url, notify_webhook_secret, telegram_chat_id "
                       "FROM strategy WHERE name = 'cli-notify'") == [(None, None, None)]
        code, out, _ = run(capsys, "strategy", "set", "cli-notify", "--notify-webhook-url",
                           "ftp://nope")
        assert code == 1
