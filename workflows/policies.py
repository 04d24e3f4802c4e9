"""Timeouts, retry policies and what a failed activity means for the trade.

Retryability is decided once, where the error is translated (activities/errors.py sets
`non_retryable`); these policies only say how fast and how long to retry what may be retried.
The workflow reads a failure's `type` (the error's class name) to pick the trade's ending.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from activities.contract import Failure
from trading.types import TradeStatus

# Before anything is sent: fast retries, bounded by the alert's max age (schedule-to-close).
PRE_ENTRY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
)
# Placements: the same, and the activity looks the order up before any re-send.
PLACE_RETRY = PRE_ENTRY_RETRY
# Everything once exposure exists (cancel, read, protect, record): retry until it works, a
# position is never left untracked because the exchange or the database had a bad minute.
KEEP_TRYING = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# Protection: a refusal is an answer (non-retryable); transport faults retry for a while, then
# the trade treats protection as refused rather than waiting forever unprotected.
PROTECT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=300),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=12,
)

CALL_TIMEOUT = timedelta(seconds=20)  # one attempt of any exchange-facing activity
LOCAL_CALL_TIMEOUT = timedelta(seconds=10)
MIN_WINDOW = timedelta(seconds=1)

# Failures that refuse the trade (nothing sent, or the exchange refused it for a rule):
REFUSING = frozenset(
    {
        Failure.RULE_REJECTED,
        Failure.RISK_LIMIT_EXCEEDED,
        Failure.CLOCK_SKEWED,
        Failure.RULE_VIOLATION,
        Failure.UNKNOWN_SYMBOL,
        Failure.INVALID_TICKER,
        Failure.INVALID_SIZING,
        Failure.INVALID_ORDER_REQUEST,
        Failure.OPPOSITE_TRADE_OPEN,
        Failure.RISK_REFUSED,
        Failure.ALERT_TOO_OLD,
        Failure.SLIPPAGE_EXCEEDED,
        Failure.PAIR_RULES_INVALID,
        Failure.TRADE_ROW_MISSING,
    }
)
# What a failed activity raises in the workflow: ActivityError for a regular activity; a local
# activity's non-retryable failure arrives as the ApplicationError itself, its timeout as a
# TimeoutError.
ACTIVITY_FAILURES = (ActivityError, ApplicationError, TimeoutError)


def failure_type(err: BaseException) -> str:
    """The application error type behind an activity failure ("Timeout" for timeouts)."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError):
        return cause.type or "ApplicationError"
    if isinstance(cause, TimeoutError):
        return "Timeout"
    return type(cause).__name__ if cause is not None else type(err).__name__


def failure_message(err: BaseException) -> str:
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ActivityError | ApplicationError | TimeoutError):
        return cause.message
    return str(cause or err)


def ending_for(kind: str) -> TradeStatus:
    """How a trade with nothing filled ends after a failure of this type."""
    return TradeStatus.REFUSED if kind in REFUSING else TradeStatus.FAILED
