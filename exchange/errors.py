"""What went wrong at the exchange, named by what the caller must do.

Every failure of a BitUnix call surfaces as one of these; `RETRYABLE` says, once, whether
retrying the same call later can help (the activity layer maps that to Temporal's
non-retryable flag). Messages carry the exchange's code and text and the endpoint, never a key,
a signature or a header.

    ExchangeError
    ├── Rejected               the exchange said no; resending the same request will not help
    │   ├── RuleRejected       a pair rule (precision, min/max qty, price band): refresh rules once
    │   ├── DuplicateClientId  30042: an order with this clientId exists; look it up
    │   ├── InsufficientFunds  fail fast
    │   ├── UnknownSymbol      fail fast
    │   ├── PermissionDenied   the account may not do this; fail fast
    │   ├── RiskLimitExceeded  20002: the position would pass its leverage's risk-limit tier
    │   └── AuthFailed         key, signature or IP allow-list wrong; an operator must fix it
    ├── NotFoundYet            20007: may just not be visible yet; look again shortly
    ├── RateLimited            back off, then retry
    ├── Unavailable            nothing happened (not sent, or a read); retry with backoff
    ├── OutcomeUnknown         a mutating request may or may not have taken effect: look up
    │                          (by clientId) before any re-send
    └── BadResponse            an answer we cannot read (shape or value we do not know)

CancelledBeforeSend is no ExchangeError: it is the asyncio cancellation of a request that was
still waiting for its turn (the request budget, or the caller's `before_send`), so nothing of it
left this process.
"""

from __future__ import annotations

import asyncio

import httpx


class CancelledBeforeSend(asyncio.CancelledError):
    """Cancelled before a byte of the request was sent: the exchange never saw it, so the
    caller may call it "not sent" at once (activities/orders.py releases its claim)."""


class ExchangeError(Exception):
    def __init__(
        self,
        code: int | None,
        msg: str,
        *,
        http_status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(code, msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.endpoint = endpoint

    @property
    def retryable(self) -> bool:
        return is_retryable(self)

    def __str__(self) -> str:
        parts = [type(self).__name__]
        if self.endpoint:
            parts.append(self.endpoint)
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.code is not None:
            parts.append(f"code {self.code}")
        return f"{' '.join(parts)}: {self.msg}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, msg={self.msg!r}, "
            f"http_status={self.http_status!r}, endpoint={self.endpoint!r})"
        )

    def __reduce__(self):  # keep keyword attributes across pickling (worker processes)
        return (
            _rebuild,
            (type(self), self.code, self.msg, self.http_status, self.endpoint),
        )

    def at(self, endpoint: str) -> ExchangeError:
        """Name the endpoint the error came from (the client sets it once)."""
        self.endpoint = endpoint
        return self


def _rebuild(cls, code, msg, http_status, endpoint):
    return cls(code, msg, http_status=http_status, endpoint=endpoint)


class Rejected(ExchangeError):
    pass


class RuleRejected(Rejected):
    pass


class DuplicateClientId(Rejected):
    pass


class InsufficientFunds(Rejected):
    pass


class UnknownSymbol(Rejected):
    pass


class PermissionDenied(Rejected):
    pass


class PositionNotFound(Rejected):
    """30004: the position id a request names is not an open position (it closed, or the
    caller's read of it lagged: a position closed just before is still listed a moment)."""


class AuthFailed(Rejected):
    pass


# 20002 as BitUnix words it; the explanation says what a trader does about it.
RISK_LIMIT_CODE = 20002
RISK_LIMIT_ADVICE = (
    "the position would exceed the largest size BitUnix allows at this leverage (its risk-limit "
    "tiers, position/get_position_tiers): lower the order size or the leverage"
)


class RiskLimitExceeded(Rejected):
    """20002: the position after this order would pass the notional its leverage's tier allows
    (docs/bitunix.md#risk-limit-tiers). Resending cannot help; a smaller size or a lower
    leverage can."""

    def __init__(self, code: int | None, msg: str, *, http_status: int | None = None,
                 endpoint: str | None = None) -> None:
        if RISK_LIMIT_ADVICE not in msg:
            msg = f"{msg}: {RISK_LIMIT_ADVICE}" if msg else RISK_LIMIT_ADVICE
        super().__init__(code, msg, http_status=http_status, endpoint=endpoint)


class NotFoundYet(ExchangeError):
    pass


class RateLimited(ExchangeError):
    pass


class Unavailable(ExchangeError):
    pass


class OutcomeUnknown(ExchangeError):
    pass


class BadResponse(ExchangeError):
    pass


# Whether a later retry of the same call can succeed (docs/design.md#errors-and-retries).
# OutcomeUnknown is retryable only in the sense that the caller looks the order up first (never a
# blind resend); DuplicateClientId is not retried: the order exists and the caller adopts it.
RETRYABLE: dict[type[ExchangeError], bool] = {
    ExchangeError: False,
    Rejected: False,
    RuleRejected: False,
    DuplicateClientId: False,
    InsufficientFunds: False,
    UnknownSymbol: False,
    PermissionDenied: False,
    PositionNotFound: False,
    AuthFailed: False,
    RiskLimitExceeded: False,
    NotFoundYet: True,
    RateLimited: True,
    Unavailable: True,
    OutcomeUnknown: True,
    BadResponse: False,
}


def is_retryable(error: ExchangeError) -> bool:
    for cls in type(error).__mro__:
        if cls in RETRYABLE:
            return RETRYABLE[cls]
    return False


# BitUnix codes (docs/bitunix.md#error-codes), all sent with HTTP 200. 20012 ("this futures does not
# allow trading") is a pair-status rule: refreshing the pair shows CANCEL_ONLY/STOP and the local
# rules then refuse with a proper reason.
_BY_CODE: dict[int, type[ExchangeError]] = {
    10001: OutcomeUnknown,
    10002: RuleRejected,
    10008: RuleRejected,
    20012: RuleRejected,
    30013: RuleRejected,
    30014: RuleRejected,
    30015: RuleRejected,
    30016: RuleRejected,
    30017: RuleRejected,
    30039: RuleRejected,
    30042: DuplicateClientId,
    20007: NotFoundYet,
    10005: RateLimited,
    10006: RateLimited,
    403: AuthFailed,
    10003: AuthFailed,
    10004: AuthFailed,
    10007: AuthFailed,
    20003: InsufficientFunds,
    20008: InsufficientFunds,
    20001: UnknownSymbol,
    20015: UnknownSymbol,
    20011: PermissionDenied,
    20013: PermissionDenied,
    20014: PermissionDenied,
    30040: PermissionDenied,
    30004: PositionNotFound,
    RISK_LIMIT_CODE: RiskLimitExceeded,
}


def error_for(code: int, msg: str, *, mutating: bool = True) -> ExchangeError:
    """The error for a non-zero envelope code; codes outside the table are a plain Rejected.

    10001 "Network Error" leaves a mutation's outcome unknown; a read has no outcome to be
    unsure of, so there it is Unavailable.
    """
    cls = _BY_CODE.get(code, Rejected)
    if cls is OutcomeUnknown and not mutating:
        cls = Unavailable
    return cls(code, msg)


def error_for_http(status: int, reason: str, *, mutating: bool) -> ExchangeError:
    """The error for a non-200 HTTP answer (the body is not a BitUnix envelope).

    A 5xx may come from a proxy before the request reached the engine, or after it ran: for a
    mutation we cannot tell, so it is OutcomeUnknown; for a read it is Unavailable.
    """
    msg = f"HTTP {status} {reason}".strip()
    if status in (401, 403):
        return AuthFailed(None, msg, http_status=status)
    if status == 429:
        return RateLimited(None, msg, http_status=status)
    if status >= 500:
        cls = OutcomeUnknown if mutating else Unavailable
        return cls(None, msg, http_status=status)
    return Rejected(None, msg, http_status=status)


# Raised before any byte of the request left this process: nothing can have happened.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def error_for_transport(exc: httpx.HTTPError, *, mutating: bool) -> ExchangeError:
    """The error for a transport failure. Only the exception's class name goes into the
    message: httpx texts can carry URLs, and we keep messages free of anything request-shaped."""
    name = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return Unavailable(None, f"{name}: request not sent")
    if not mutating:
        return Unavailable(None, f"{name}: read failed")
    # Timeouts while writing or reading, dropped connections, protocol errors: the request
    # may have reached the exchange.
    return OutcomeUnknown(None, f"{name}: the request may have been processed")
