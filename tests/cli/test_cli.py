"""`tradewire strategy|alert|trades` against a webhook served over real HTTP."""

from __future__ import annotations

import json

import pytest

import cli

from .conftest import Live


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = cli.build_parser().parse_args(list(argv))
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def env(live_webhook: Live, monkeypatch: pytest.MonkeyPatch) -> Live:
    for key, value in live_webhook.env().items():
        monkeypatch.setenv(key, value)
    return live_webhook


def test_strategy_lifecycle(env: Live, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "strategy",
        "add",
        "cli-one",
        "--size-usdt",
        "25",
        "--order-type",
        "chase",
        "--rate-limit",
        "120",
        "--allow-ip",
        "203.0.113.0/24",
        "--tradingview-ips",
    )
    assert code == 0, out
    secret = out.splitlines()[2].strip()
    assert len(secret) >= 32
    stored = env.sql(
        "SELECT secret_hash, size_usdt, size, entry_type, rate_limit_per_min, allowed_ips,"
        " allow_tradingview_ips FROM strategy WHERE name = 'cli-one'"
    )[0]
    assert stored[0] != secret and len(stored[0]) == 64
    assert (str(stored[1]), stored[2], stored[3], stored[4], stored[5], stored[6]) == (
        "25",
        None,
        "chase",
        120,
        ["203.0.113.0/24"],
        True,
    )

    code, out, _ = run(capsys, "strategy", "show", "cli-one")
    assert code == 0 and secret not in out and "size_usdt                25" in out
    code, out, _ = run(capsys, "strategy", "list")
    assert "cli-one" in out and "203.0.113.0/24,tradingview" in out

    code, out, err = run(capsys, "strategy", "add", "cli-one")
    assert code == 1 and "exists" in err
    code, out, err = run(capsys, "strategy", "add", "cli-two", "--secret", "short")
    assert code == 1 and "at least 20" in err
    code, out, _ = run(
        capsys,
        "strategy",
        "add",
        "cli-two",
        "--secret",
        "a-long-enough-user-secret",
        "--size",
        "0.5",
    )
    assert code == 0 and "a-long-enough-user-secret" in out

    code, out, _ = run(
        capsys, "strategy", "set", "cli-one", "--size-pct", "5", "--no-tradingview-ips"
    )
    assert code == 0
    assert env.sql(
        "SELECT size_pct, size_usdt, allow_tradingview_ips FROM strategy WHERE name='cli-one'"
    )[0][1:] == (None, False)

    code, out, _ = run(capsys, "strategy", "rotate-secret", "cli-one")
    new_secret = out.splitlines()[2].strip()
    assert code == 0 and new_secret != secret
    code, out, _ = run(capsys, "strategy", "disable", "cli-one")
    assert code == 0 and env.sql("SELECT enabled FROM strategy WHERE name='cli-one'") == [(False,)]
    code, _, err = run(capsys, "strategy", "show", "nope")
    assert code == 1 and "no strategy named 'nope'" in err


def test_alert_send_then_trades_ls_show_cancel(
    env: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    strat = env.add_strategy()
    code, out, _ = run(
        capsys,
        "alert",
        "send",
        "--strategy",
        strat.name,
        "--secret",
        strat.secret,
        "--ticker",
        "BITUNIX:ESPUSDT.P",
        "--action",
        "buy",
        "--market-position",
        "long",
        "--prev-market-position",
        "flat",
        "--size",
        "10",
        "--alert-id",
        "cli-a1",
    )
    assert code == 0, out
    assert out.startswith("202 Accepted")
    answer = json.loads(out.split("\n", 1)[1])
    assert answer["symbol"] == "ESPUSDT"
    code, out, _ = run(
        capsys,
        "alert",
        "send",
        "--strategy",
        strat.name,
        "--secret",
        strat.secret,
        "--ticker",
        "ESPUSDT",
        "--action",
        "buy",
        "--size",
        "10",
        "--alert-id",
        "cli-a1",
    )
    assert (
        code == 0
        and out.startswith("200 OK")
        and json.loads(out.split("\n", 1)[1])["trade_id"] == answer["trade_id"]
    )
    code, out, _ = run(
        capsys,
        "alert",
        "send",
        "--strategy",
        strat.name,
        "--secret",
        strat.secret,
        "--ticker",
        "ESPUSDT",
        "--action",
        "buy",
        "--field",
        "slpct=1",
        "--text-plain",
    )
    assert code == 1 and out.startswith("422") and "unknown field 'slpct'" in out

    code, out, _ = run(capsys, "trades", "ls", "--strategy", strat.name)
    assert code == 0 and f"#{answer['trade_id']}" in out and "ESPUSDT" in out
    code, out, _ = run(capsys, "trades", "show", str(answer["trade_id"]))
    assert code == 0 and json.loads(out)["workflow_id"] == answer["workflow_id"]
    code, out, _ = run(capsys, "trades", "cancel", str(answer["trade_id"]), "--flatten")
    assert code == 0 and out.startswith(f"cancel with flatten sent to trade #{answer['trade_id']}")
    code, _, err = run(capsys, "trades", "show", "987654321")
    assert code == 1 and "404: no trade #987654321" in err


def test_trades_without_a_token_says_where_to_get_one(
    env: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.delenv("TRADEWIRE_ADMIN_TOKEN")
    monkeypatch.setenv("TRADEWIRE_STATE_DIR", str(tmp_path))
    code, _, err = run(capsys, "trades", "ls")
    assert code == 1 and "no admin token" in err and str(tmp_path / "admin-token") in err


def test_strategy_add_reads_the_secret_from_stdin_never_the_command_line(
    env: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review D14: `--secret S` shows S to every local user in /proc/*/cmdline; the secret can
    come from stdin (or a prompt) instead, and then works for alerts like any other."""
    import io
    import uuid

    from webhook.auth import server_key, verify_secret

    chosen = "stdin-secret-" + uuid.uuid4().hex
    name = "cli-stdin-" + uuid.uuid4().hex[:6]
    monkeypatch.setattr("sys.stdin", io.StringIO(chosen + "\n"))
    code, out, err = run(capsys, "strategy", "add", name, "--secret-stdin")
    assert code == 0, err
    [(stored,)] = env.sql("SELECT secret_hash FROM strategy WHERE name = %s", name)
    assert verify_secret(server_key(env.settings), chosen, stored)

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(SystemExit, match="stdin gave no secret"):
        run(capsys, "strategy", "rotate-secret", name, "--secret-stdin")


def test_the_secret_prompt_asks_twice_and_refuses_a_mismatch() -> None:
    from cli.strategy import SecretInputError, chosen_secret

    args = cli.build_parser().parse_args(["strategy", "add", "x", "--prompt-secret"])
    answers = iter(["a-secret-typed-at-the-prompt", "a-secret-typed-at-the-prompt"])
    assert chosen_secret(args, prompt=lambda _: next(answers)) == "a-secret-typed-at-the-prompt"
    answers = iter(["a-secret-typed-at-the-prompt", "another"])
    with pytest.raises(SecretInputError, match="differ"):
        chosen_secret(args, prompt=lambda _: next(answers))
