"""The one boundary where exchange and domain errors become Temporal failures.

Each error maps to retryability exactly once (exchange.errors.RETRYABLE for the exchange's,
"never" for the domain's), and the failure's `type` is the error's class name, so the workflow
decides what a failure means by name (workflows/policies.py) without importing this layer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from temporalio.exceptions import ApplicationError

from activities.contract import Failure
from exchange.errors import ExchangeError, Rejected, is_retryable
from trading.errors import TradingError

log = logging.getLogger("activities")

# BitUnix has no documented code for "post-only would take"; the paper exchange answers 30011
# ("Abnormal order status") in its reject mode. A post-only order refused with one of these is
# reported as REJECTED (the chase re-prices it), not as a failure.
POST_ONLY_REJECT_CODES = frozenset({30011})


def refuse(kind: Failure, message: str) -> ApplicationError:
    """A non-retryable failure raised by an activity for a reason of its own."""
    return ApplicationError(message, type=kind.value, non_retryable=True)


def try_again(kind: Failure, message: str) -> ApplicationError:
    """A retryable failure raised by an activity for a reason of its own (Temporal retries it)."""
    return ApplicationError(message, type=kind.value)


def to_application_error(exc: BaseException) -> ApplicationError | None:
    if isinstance(exc, ExchangeError):
        return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=not is_retryable(exc))
    if isinstance(exc, TradingError):
        return ApplicationError(exc.message, type=type(exc).__name__, non_retryable=True)
    return None


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Wrap an activity body: exchange/domain errors leave as ApplicationError with the
    cause chained (`raise … from e`); anything else propagates untouched (retryable)."""
    try:
        yield
    except ApplicationError:
        raise
    except (ExchangeError, TradingError) as exc:
        mapped = to_application_error(exc)
        assert mapped is not None
        log.warning("%s", mapped)
        raise mapped from exc


def protection_refused(exc: Rejected) -> ApplicationError:
    return refuse(Failure.PROTECTION_REFUSED, f"the exchange refused the TP/SL: {exc}")
