"""`tradewire strategy add|set` with the risk limits (docs/design.md#risk): every RiskLimits
field is an option, stored in its column, shown by `show` and `list`, removable, and a bad
value is refused with the reason before anything is stored."""

from __future__ import annotations

import pytest

from tests.cli.test_cli import env, run  # noqa: F401 - the fixture is used by name
from trading.risk import RiskLimits, option

from .conftest import Live

# One valid value per limit, as typed.
VALUES = {
    "max_order_usdt": "500", "max_position_usdt": "1500", "max_open_trades": "3",
    "max_leverage": "5", "max_exposure_usdt": "4000", "min_free_margin_usdt": "0",
    "daily_loss_usdt": "250.5", "daily_loss_pct": "2.5",
}


def test_every_limit_is_an_option_stored_shown_and_removable(
    env: Live, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    assert set(VALUES) == set(RiskLimits.names())
    argv = [a for name, value in VALUES.items() for a in (option(name), value)]
    code, out, err = run(capsys, "strategy", "add", "lim-one", *argv)
    assert code == 0, err
    columns = ", ".join(RiskLimits.names())
    [stored] = env.sql(f"SELECT {columns} FROM strategy WHERE name = 'lim-one'")
    assert [format(v, "f") if not isinstance(v, int) else str(v) for v in stored] == \
        list(VALUES.values())

    code, out, _ = run(capsys, "strategy", "show", "lim-one")
    assert code == 0
    for name, value in VALUES.items():
        assert f"{name:<24} {value}" in out.splitlines(), name
    code, out, _ = run(capsys, "strategy", "list")
    line = next(x for x in out.splitlines() if x.startswith("lim-one "))
    assert "limits: max_order_usdt=500 " in line and "daily_loss_pct=2.5" in line

    # `update` is `set`; --no-<limit> removes one, the others stay.
    code, out, err = run(capsys, "strategy", "update", "lim-one", "--no-max-order-usdt",
                         "--no-daily-loss-pct", "--max-open-trades", "4")
    assert code == 0, err
    assert env.sql("SELECT max_order_usdt, daily_loss_pct, max_open_trades, max_leverage"
                   " FROM strategy WHERE name = 'lim-one'") == [(None, None, 4, 5)]
    assert f"{'max_order_usdt':<24} None" in out.splitlines()

    code, out, _ = run(capsys, "strategy", "add", "lim-none")
    code, out, _ = run(capsys, "strategy", "list")
    assert "limits: none" in next(x for x in out.splitlines() if x.startswith("lim-none "))


@pytest.mark.parametrize("name,value,why", [
    ("max_order_usdt", "0", "greater than 0"),
    ("max_position_usdt", "-1", "greater than 0"),
    ("max_open_trades", "1.5", "valid integer"),
    ("max_leverage", "0", "greater than 0"),
    ("min_free_margin_usdt", "-0.01", "greater than or equal to 0"),
    ("daily_loss_usdt", "abc", "valid decimal"),
    ("daily_loss_pct", "100", "less than 100"),
    ("max_exposure_usdt", "NaN", "finite number"),
])
def test_a_bad_limit_is_refused_with_its_reason(
    capsys: pytest.CaptureFixture[str], name: str, value: str, why: str,
) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "strategy", "set", "whatever", option(name), value)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option(name)}: {value}: input should be" in err and why in err


def test_a_limit_set_and_removed_at_once_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(capsys, "strategy", "set", "whatever", "--max-leverage", "3", "--no-max-leverage")
    assert "not allowed with argument --max-leverage" in capsys.readouterr().err
