"""TradingView ticker -> exchange symbol: the only place a symbol's spelling changes.

What is removed, and nothing else (never a letter from inside the symbol):
1. surrounding whitespace, and letter case (compared upper-case; the pair list's spelling is
   returned);
2. one exchange prefix ending in ":" (`BITUNIX:`, or a chart's `BINANCE:`), letters, digits
   and "_" only;
3. one dot suffix, `.P` or `.PERP` (a dot never occurs in an exchange symbol, so this is safe);
4. a bare `PERP` suffix (`BTCUSDTPERP`) ONLY when the ticker itself is not a known symbol and
   the rest is one: a symbol that genuinely ends in PERP or P is never cut.
The result must be in the synced pair list; otherwise UnknownSymbol names the closest ones.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from trading.errors import InvalidTicker, UnknownSymbol

_PREFIX = re.compile(r"^[A-Z0-9_]+:")
_DOT_SUFFIXES = (".PERP", ".P")
_BARE_SUFFIX = "PERP"


def normalize_ticker(ticker: str) -> str:
    """Steps 1-3 above: the ticker as an upper-case symbol candidate, or InvalidTicker."""
    if not isinstance(ticker, str):
        raise InvalidTicker(ticker=repr(ticker), reason="it is not a string")
    text = ticker.strip().upper()
    if not text:
        raise InvalidTicker(ticker=ticker, reason="it is empty")
    if ":" in text:
        match = _PREFIX.match(text)
        if match is None or ":" in text[match.end():]:
            raise InvalidTicker(ticker=ticker, reason="only one EXCHANGE: prefix is allowed")
        text = text[match.end():]
    for suffix in _DOT_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    if not text or any(ch.isspace() for ch in text) or "." in text:
        raise InvalidTicker(ticker=ticker, reason="it is not shaped like a symbol")
    return text


def ticker_candidates(ticker: str) -> tuple[str, ...]:
    """The symbols a ticker may mean, most literal first (step 4 adds the second)."""
    text = normalize_ticker(ticker)
    if text.endswith(_BARE_SUFFIX) and len(text) > len(_BARE_SUFFIX):
        return (text, text[: -len(_BARE_SUFFIX)])
    return (text,)


def resolve_symbol(ticker: str, known_symbols: Iterable[str]) -> str:
    """The exchange symbol `ticker` names, spelled as in `known_symbols` (the synced pair
    list), or UnknownSymbol with up to three close known symbols as suggestions."""
    by_upper = {symbol.upper(): symbol for symbol in known_symbols}
    candidates = ticker_candidates(ticker)
    for candidate in candidates:
        if candidate in by_upper:
            return by_upper[candidate]
    close = difflib.get_close_matches(candidates[0], list(by_upper), n=3, cutoff=0.6)
    raise UnknownSymbol(
        ticker=ticker,
        normalized=candidates[0],
        suggestions=[by_upper[upper] for upper in close],
    )
