from __future__ import annotations

import pickle

import httpx
import pytest

from exchange.errors import (
    RETRYABLE,
    AuthFailed,
    BadResponse,
    DuplicateClientId,
    ExchangeError,
    InsufficientFunds,
    NotFoundYet,
    OutcomeUnknown,
    PermissionDenied,
    PositionNotFound,
    RateLimited,
    Rejected,
    RiskLimitExceeded,
    RuleRejected,
    Unavailable,
    UnknownSymbol,
    error_for,
    error_for_http,
    error_for_transport,
    is_retryable,
)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (10001, OutcomeUnknown),
        (10002, RuleRejected),
        (10008, RuleRejected),
        (30013, RuleRejected),
        (30014, RuleRejected),
        (30015, RuleRejected),
        (30016, RuleRejected),
        (30017, RuleRejected),
        (30039, RuleRejected),
        (30042, DuplicateClientId),
        (20007, NotFoundYet),
        (10005, RateLimited),
        (10006, RateLimited),
        (10003, AuthFailed),
        (10004, AuthFailed),
        (10007, AuthFailed),
        (403, AuthFailed),
        (20003, InsufficientFunds),
        (20008, InsufficientFunds),
        (20001, UnknownSymbol),
        (20015, UnknownSymbol),
        (20011, PermissionDenied),
        (30040, PermissionDenied),
        (30018, Rejected),
        (20006, Rejected),
        (10013, Rejected),  # seen in cancel failureList examples, outside the table
        (99999, Rejected),
    ],
)
def test_error_for_code(code: int, cls: type[ExchangeError]) -> None:
    err = error_for(code, "text from the exchange")
    assert type(err) is cls
    assert err.code == code and err.msg == "text from the exchange"


def test_20002_is_a_risk_limit_refusal_that_says_what_to_do() -> None:
    err = error_for(20002, "Positions amount exceeded the max open limit, adjust risk limit")
    assert type(err) is RiskLimitExceeded and err.code == 20002 and not err.retryable
    assert str(err).endswith("lower the order size or the leverage")
    again = pickle.loads(pickle.dumps(err.at("trade/place_order")))  # a worker process's copy
    assert str(again) == str(err) and again.msg.count("lower the order size") == 1


def test_network_error_on_a_read_is_unavailable_not_unknown() -> None:
    assert type(error_for(10001, "Network Error", mutating=False)) is Unavailable
    assert type(error_for(10006, "slow down", mutating=False)) is RateLimited


def test_retry_table_follows_design_note_section_5() -> None:
    retry = {
        RateLimited,
        Unavailable,
        OutcomeUnknown,  # the caller looks up by client id first
        NotFoundYet,
    }
    fail_fast = {
        Rejected,
        RuleRejected,
        DuplicateClientId,
        InsufficientFunds,
        UnknownSymbol,
        PermissionDenied,
        PositionNotFound,
        AuthFailed,
        BadResponse,
        RiskLimitExceeded,
    }
    for cls in retry:
        assert is_retryable(cls(1, "x")) and cls(1, "x").retryable
    for cls in fail_fast:
        assert not is_retryable(cls(1, "x"))
    assert retry | fail_fast | {ExchangeError} == set(RETRYABLE)


def test_subclass_not_in_table_inherits_its_parents_answer() -> None:
    class Special(RateLimited):
        pass

    assert is_retryable(Special(1, "x"))


@pytest.mark.parametrize(
    ("status", "mutating", "cls"),
    [
        (401, True, AuthFailed),
        (403, False, AuthFailed),
        (429, True, RateLimited),
        (500, True, OutcomeUnknown),
        (503, True, OutcomeUnknown),
        (504, True, OutcomeUnknown),
        (503, False, Unavailable),
        (504, False, Unavailable),
        (400, True, Rejected),
        (404, False, Rejected),
    ],
)
def test_error_for_http(status: int, mutating: bool, cls: type[ExchangeError]) -> None:
    err = error_for_http(status, "Reason", mutating=mutating)
    assert type(err) is cls
    assert err.http_status == status and err.code is None


REQUEST = httpx.Request("POST", "http://x/api/v1/futures/trade/place_order?secret=leak")


@pytest.mark.parametrize(
    ("exc", "mutating", "cls"),
    [
        (httpx.ConnectError("refused", request=REQUEST), True, Unavailable),
        (httpx.ConnectTimeout("slow", request=REQUEST), True, Unavailable),
        (httpx.PoolTimeout("pool", request=REQUEST), True, Unavailable),
        (httpx.ReadTimeout("t", request=REQUEST), True, OutcomeUnknown),
        (httpx.WriteTimeout("t", request=REQUEST), True, OutcomeUnknown),
        (httpx.ReadError("reset", request=REQUEST), True, OutcomeUnknown),
        (httpx.RemoteProtocolError("dropped", request=REQUEST), True, OutcomeUnknown),
        (httpx.ReadTimeout("t", request=REQUEST), False, Unavailable),
        (httpx.RemoteProtocolError("dropped", request=REQUEST), False, Unavailable),
    ],
)
def test_error_for_transport(exc: httpx.HTTPError, mutating: bool, cls: type) -> None:
    err = error_for_transport(exc, mutating=mutating)
    assert type(err) is cls
    assert "secret" not in str(err) and "http://" not in str(err)


def test_str_names_endpoint_code_and_message_and_survives_pickling() -> None:
    err = error_for(30042, "Client ID duplicate").at("trade/place_order")
    assert str(err) == "DuplicateClientId trade/place_order code 30042: Client ID duplicate"
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DuplicateClientId
    assert (back.code, back.msg, back.endpoint) == (
        30042,
        "Client ID duplicate",
        "trade/place_order",
    )


def test_rejected_family_can_be_caught_together() -> None:
    for code in (10002, 30042, 20003, 20001, 20011, 10007):
        assert isinstance(error_for(code, "x"), Rejected)
    for code in (10001, 20007, 10006):
        assert not isinstance(error_for(code, "x"), Rejected)
