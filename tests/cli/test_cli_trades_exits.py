"""`tradewire trades set-exits` and `trades show --exits` (docs/design.md#exits): the `--tps`
syntax and the body the options make (pure), the plan's text, and the command against the
webhook served over real HTTP in front of a running trade (PostgreSQL, the Temporal dev server
with a worker, the paper exchange)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

import cli
from cli.trades import exits_body, exits_text, parse_sl_after_tp, parse_tps
from tests.cli.conftest import Live
from tests.webhook.live import run_webhook
from tests.workflows.conftest import harness, task_queue, wf_db, wf_paper  # noqa: F401
from tests.workflows.harness import Harness
from trading.types import TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest
from workflows.state import ExitsView, LevelView, TrailView
from workflows.trade import TradeWorkflow

TOKEN = "test-admin-token-cli-set-exits-0123456789"
BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def test_tps_reads_percents_prices_and_shares_exactly_as_typed() -> None:
    assert parse_tps("1%:50,2%:30,4%") == [
        {"pct": "1", "qty_pct": "50"}, {"pct": "2", "qty_pct": "30"}, {"pct": "4"}]
    assert parse_tps("64000:50, 66000.5") == [{"price": "64000", "qty_pct": "50"},
                                             {"price": "66000.5"}]
    assert parse_tps(" 0.5 % : 25% ,1.25%") == [{"pct": "0.5", "qty_pct": "25"}, {"pct": "1.25"}]
    assert parse_tps("NONE") is None  # back to one TP
    for bad, said in (("", "empty level"), ("1%,,2%", "empty level"), ("1%:50:3", "level 1"),
                      ("2%,x%", "level 2 'x%'"), ("1%:a", "level 1"), ("%:5", "level 1"),
                      ("1,2,3,4,5,6,7", "at most 6 levels"), ("1%:nan", "level 1")):
        with pytest.raises(ValueError, match="--tps") as err:
            parse_tps(bad)
        assert said in str(err.value), bad


numbers = st.decimals(min_value="0.01", max_value="100000", places=2).map(str)


@given(st.lists(st.tuples(numbers, st.booleans(), st.none() | numbers), min_size=1, max_size=6))
def test_tps_round_trips_any_ladder(levels) -> None:
    spec = ",".join(f"{where}{'%' if pct else ''}" + (f":{share}" if share else "")
                    for where, pct, share in levels)
    assert parse_tps(spec) == [
        {"pct" if pct else "price": where} | ({"qty_pct": share} if share else {})
        for where, pct, share in levels]


def test_the_options_make_the_patch_body() -> None:
    def body(*argv: str) -> dict:
        return exits_body(cli.build_parser().parse_args(["trades", "set-exits", "7", *argv]))

    assert body("--sl", "92000") == {"sl": "92000"}
    assert body("--tps", "1%:50,4%", "--sl-after-tp", "breakeven,previous_tp",
                "--trail", "1.5", "--trail-activation", "1", "--trail-price", "last") == {
        "tps": [{"pct": "1", "qty_pct": "50"}, {"pct": "4"}],
        "sl_after_tp": ["breakeven", "previous_tp"],
        "trail_pct": "1.5", "trail_activation_pct": "1", "trail_price": "last"}
    assert body("--tps", "none", "--trail", "none") == {"tps": None, "trail_pct": None}
    assert body("--sl-after-tp", "BreakEven") == {"sl_after_tp": "breakeven"}
    with pytest.raises(ValueError, match="give at least one"):
        body()
    with pytest.raises(ValueError, match="'sideways'"):
        parse_sl_after_tp("breakeven,sideways")


def test_show_exits_prints_each_level_the_stop_and_the_trails_best_price() -> None:
    view = ExitsView(
        levels=[LevelView(price=Decimal("95950"), qty=Decimal("0.005"),
                          filled_qty=Decimal("0.005"), status="filled"),
                LevelView(price=None, qty=Decimal("0.005"), status="waiting")],
        stop=Decimal("95057.1"),
        trail=TrailView(pct=Decimal("1.5"), active=True, best_price=Decimal("97000"),
                        stop=Decimal("95545")))
    state = {"protection": {"tp": None, "sl": "95057.1", "level": "position", "qty": "0.005"},
             "exits": view.model_dump(mode="json")}
    plan = {"tps": [{"pct": "1", "qty_pct": "50", "sl_after": "breakeven", "price": None},
                    {"pct": "4", "qty_pct": None, "sl_after": "none", "price": None}],
            "trail": {"pct": "1.5", "activation_pct": "1", "activation_price": None,
                      "price_type": "LAST_PRICE"}}
    assert exits_text(state, {"plan": plan}) == [
        "TP - · SL 95057.1 · protection position 0.005",
        "plan: TP1 1% of 50%, then SL breakeven · TP2 4% of the rest · "
        "trail 1.5% from 1% in profit on LAST_PRICE",
        "exits: stop 95057.1 · trail 1.5% active, best 97000 → stop 95545",
        "TP1 95950 × 0.005 · filled 0.005 · filled",
        "TP2 - × 0.005 · filled 0 · waiting",
    ]
    assert exits_text(state | {"exits": None}, None)[1] == "plan: no ladder, no trail"


async def test_set_exits_moves_a_running_trade_and_show_prints_its_plan(
    harness: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    st_ = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                              and s.protection.order_id is not None, "protected")
    settings = h.settings.model_copy(update={
        "admin_token": SecretStr(TOKEN), "fast_path": False, "state_dir": tmp_path})
    monkeypatch.setenv("TRADEWIRE_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("TRADEWIRE_STATE_DIR", str(tmp_path))

    async def run(*argv: str) -> tuple[int, str, str]:
        # The CLI blocks on its request: in a thread, so this loop's worker answers it.
        args = cli.build_parser().parse_args(["trades", "--url", url, *argv])
        code = await asyncio.to_thread(args.func, args)
        out, err = capsys.readouterr()
        return code, out, err

    with run_webhook(settings, h.settings.database_url) as url:
        trade = str(st_.trade_id)
        code, out, err = await run("set-exits", trade, "--sl", "96000")
        assert code == 1 and "422" in err and "below the current price" in err, err
        code, out, err = await run("set-exits", trade, "--tps", "1%:150")
        assert code == 1 and "422" in err and "qty_pct" in err, err
        code, out, err = await run("set-exits", trade, "--tps", "1%:x")
        assert code == 2 and "--tps level 1 '1%:x'" in err, err

        code, out, err = await run("set-exits", trade, "--sl", "92000", "--tps", "1%:50,98000",
                                   "--sl-after-tp", "breakeven", "--trail", "1.5",
                                   "--trail-price", "last")
        assert code == 0, err
        assert out.startswith(f"trade #{trade}: exits moved")
        assert ("plan: TP1 1% of 50%, then SL breakeven · TP2 98000 of the rest, then SL "
                "breakeven · trail 1.5% on LAST_PRICE") in out.splitlines()
        [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
        assert tpsl.sl_price == Decimal("92000")  # the ladder's levels are orders of their own

        code, out, _ = await run("show", trade, "--exits")
        assert code == 0 and out.splitlines()[0] == f"trade #{trade} {BTC} LONG TRACKING"
        assert "TP1 1% of 50%, then SL breakeven" in out and "SL 92000" in out

        code, _, err = await run("set-exits", "987654321", "--sl", "1")
        assert code == 1 and "404: no trade #987654321" in err
        await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
        assert (await h.result(handle)).status is TradeStatus.CANCELLED
        code, _, err = await run("set-exits", trade, "--sl", "91000")
        assert code == 1 and "409" in err and "has already ended" in err, err


def test_set_exits_to_a_trade_nobody_runs_says_it_is_not_done(
    live_webhook: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live webhook's task queue has no worker (a worker that is down): the trade cannot
    answer, Temporal holds the move for it, and the command says so instead of failing."""
    for key, value in live_webhook.env().items():
        monkeypatch.setenv(key, value)
    strat = live_webhook.add_strategy()

    def run(*argv: str) -> tuple[int, str, str]:
        args = cli.build_parser().parse_args(list(argv))
        code = args.func(args)
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("alert", "send", "--strategy", strat.name, "--secret", strat.secret,
                       "--ticker", "BTCUSDT.P", "--action", "buy", "--size", "0.01")
    assert code == 0 and out.startswith("202 Accepted"), out
    trade = json.loads(out.split("\n", 1)[1])["trade_id"]
    code, out, err = run("trades", "set-exits", str(trade), "--sl", "1")
    assert code == 0, err
    assert out.startswith(f"trade #{trade}: sent, not done yet: the trade has not answered "
                          "within 5 s (is the worker running?)"), out
