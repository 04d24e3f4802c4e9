from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.errors import InvalidTicker, UnknownSymbol
from trading.symbols import normalize_ticker, resolve_symbol, ticker_candidates

KNOWN = [
    "BTCUSDT",
    "ETHUSDT",
    "ESPUSDT",
    "SUSHIUSDT",
    "SSVUSDT",
    "SUIUSDT",
    "1000PEPEUSDT",
    "BTCUSDC",
    "XPUSDT",
    "PERPUSDT",
    "APUSDT",
]


@pytest.mark.parametrize(
    ("ticker", "symbol"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("BTCUSDT.P", "BTCUSDT"),
        ("BITUNIX:BTCUSDT.P", "BTCUSDT"),
        ("bitunix:btcusdt.p", "BTCUSDT"),
        ("BTCUSDTPERP", "BTCUSDT"),
        ("BTCUSDT.PERP", "BTCUSDT"),
        ("  BTCUSDT.P\n", "BTCUSDT"),
        ("BINANCE:BTCUSDT", "BTCUSDT"),
        ("BTCUSDC.P", "BTCUSDC"),
        ("BTCUSDC", "BTCUSDC"),
        ("ESPUSDT", "ESPUSDT"),
        ("ESPUSDT.P", "ESPUSDT"),
        ("espusdt", "ESPUSDT"),
        ("BITUNIX:ESPUSDTPERP", "ESPUSDT"),
        ("SUSHIUSDT.P", "SUSHIUSDT"),
        ("SSVUSDT.P", "SSVUSDT"),
        ("SUIUSDT.P", "SUIUSDT"),
        ("1000PEPEUSDT.P", "1000PEPEUSDT"),
        ("1000pepeusdtperp", "1000PEPEUSDT"),
        ("XPUSDT", "XPUSDT"),
        ("XPUSDT.P", "XPUSDT"),
        ("PERPUSDT", "PERPUSDT"),
        ("PERPUSDT.P", "PERPUSDT"),
        ("PERPUSDTPERP", "PERPUSDT"),
        ("APUSDT.P", "APUSDT"),
    ],
)
def test_table(ticker: str, symbol: str) -> None:
    assert resolve_symbol(ticker, KNOWN) == symbol


@pytest.mark.parametrize(
    ("ticker", "suggested"),
    [
        ("EPUSDT", "ESPUSDT"),  # the old platform's mangled symbol is refused, not traded
        ("ESPUSD", "ESPUSDT"),
        ("SUSHIUSD.P", "SUSHIUSDT"),
        ("SVUSDT", "SSVUSDT"),
        ("PEPEUSDT", "1000PEPEUSDT"),
        ("BTCUSD", "BTCUSDT"),
    ],
)
def test_unknown_symbols_are_refused_with_suggestions(ticker: str, suggested: str) -> None:
    with pytest.raises(UnknownSymbol) as caught:
        resolve_symbol(ticker, KNOWN)
    assert suggested in caught.value.suggestions
    assert caught.value.ticker == ticker
    assert suggested in str(caught.value) and "sync the pair list" in str(caught.value)


def test_a_bare_perp_is_kept_when_the_ticker_itself_is_known() -> None:
    assert resolve_symbol("XPERP", ["X", "XPERP"]) == "XPERP"
    assert resolve_symbol("XPERP", ["X"]) == "X"
    assert resolve_symbol("XPERP.P", ["X", "XPERP"]) == "XPERP"
    assert ticker_candidates("XPERP") == ("XPERP", "X")
    assert ticker_candidates("PERP") == ("PERP",)


def test_only_a_dotted_p_is_removed() -> None:
    assert normalize_ticker("XPUSDT.P") == "XPUSDT"
    assert normalize_ticker("ESPUSDTP") == "ESPUSDTP"  # no dot: a letter of the symbol
    with pytest.raises(UnknownSymbol):
        resolve_symbol("ESPUSDTP", KNOWN)


def test_the_pair_lists_spelling_is_returned() -> None:
    assert resolve_symbol("btcusdt", ["BtcUsdt"]) == "BtcUsdt"
    with pytest.raises(UnknownSymbol) as caught:
        resolve_symbol("EPUSDT", [])
    assert caught.value.suggestions == () and "no similar symbol" in str(caught.value)


@pytest.mark.parametrize(
    "ticker",
    [
        "",
        "   ",
        "BTC USDT",
        "A:B:BTCUSDT",
        ":BTCUSDT",
        "BIT UNIX:BTCUSDT",
        ".P",
        "BITUNIX:",
        "BTC.USDT",
        None,
    ],
)
def test_malformed_tickers(ticker: str) -> None:
    with pytest.raises(InvalidTicker) as caught:
        resolve_symbol(ticker, KNOWN)
    assert "is not a symbol" in str(caught.value)


# --- property: every TradingView form of every pair resolves to exactly that pair -----------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
bases = st.text(alphabet=_ALPHABET, min_size=1, max_size=10) | st.sampled_from(
    ["P", "PERP", "ESP", "SUSHI", "SSV", "SUI", "1000PEPE", "XP", "PP", "PERPP"]
)
pair_lists = st.lists(
    st.tuples(bases, st.sampled_from(["USDT", "USDC"])).map("".join),
    min_size=1,
    max_size=30,
    unique=True,
)


def forms(symbol: str) -> list[str]:
    return [
        symbol,
        symbol.lower(),
        symbol.title(),
        f"{symbol}.P",
        f"{symbol}.p",
        f"{symbol}.PERP",
        f"{symbol}PERP",
        f"{symbol.lower()}perp",
        f"BITUNIX:{symbol}.P",
        f"BITUNIX:{symbol}",
        f"bitunix:{symbol.lower()}.p",
        f"BINANCE:{symbol}PERP",
        f"  {symbol}.P\t\n",
    ]


@given(pair_lists, st.data())
def test_every_form_resolves_to_exactly_its_pair(pairs: list[str], data: st.DataObject) -> None:
    symbol = data.draw(st.sampled_from(pairs))
    for form in forms(symbol):
        assert resolve_symbol(form, pairs) == symbol, form


@given(pair_lists, bases)
def test_a_symbol_not_listed_is_never_resolved(pairs: list[str], stranger: str) -> None:
    candidate = stranger + "USDT"
    if candidate in pairs:
        return
    for form in forms(candidate):
        with pytest.raises(UnknownSymbol):
            resolve_symbol(form, pairs)
