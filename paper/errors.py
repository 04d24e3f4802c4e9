"""BitUnix error codes the paper exchange answers with, and the assumptions it makes where the
vendor documentation is silent (docs/bitunix.md#error-codes,
docs/bitunix.md#unconfirmed-assumptions). Every business error is HTTP 200 with a code.
"""

from __future__ import annotations

# --- the vendor table (docs/bitunix.md#error-codes), the subset the simulator can produce -------
OK = 0
NETWORK_ERROR = 10001
PARAMETER_ERROR = 10002
API_KEY_EMPTY = 10003
TOO_MANY_REQUESTS = 10005
REQUEST_TOO_FREQUENT = 10006
SIGNATURE_ERROR = 10007
MARKET_NOT_EXISTS = 20001
RISK_LIMIT_EXCEEDED = 20002
INSUFFICIENT_BALANCE = 20003
INVALID_LEVERAGE = 20005
OPEN_ORDERS_OR_POSITION = 20006
ORDER_NOT_FOUND = 20007
POSITION_MODE_LOCKED = 20009
FUTURES_NOT_TRADABLE = 20012
FUTURES_NOT_SUPPORTED = 20015
POSITION_NOT_EXIST = 30004
SELECT_TP_OR_SL = 30006
ABNORMAL_ORDER_STATUS = 30011
MAX_MARKET_QTY = 30013
MAX_BUY_PRICE = 30014
MIN_SELL_PRICE = 30015
MIN_QTY = 30017
REDUCE_ONLY_NO_POSITION = 30018
REDUCE_ONLY_SAME_DIRECTION = 30019
TP_ABOVE_MARK = 30020  # a long's TP must be above the mark price
TP_BELOW_MARK = 30021  # a short's TP must be below the mark price
SL_ABOVE_MARK = 30022  # a short's SL must be above the mark price
SL_BELOW_MARK = 30023  # a long's SL must be below the mark price
TPSL_QTY_TOO_LARGE = 30038
MAX_LIMIT_QTY = 30039
TRIGGER_PRICE_NOT_POSITIVE = 30041
CLIENT_ID_DUPLICATE = 30042

# Outside the vendor table: BitUnix's own cancel example puts 10013 "Order status error" in a
# cancel's failureList (docs/bitunix.md#codes-outside-the-table).
CANCEL_TERMINAL_ERROR_CODE = 10013

MESSAGES: dict[int, str] = {
    OK: "Success",
    NETWORK_ERROR: "Network Error",
    PARAMETER_ERROR: "Parameter Error",
    API_KEY_EMPTY: "api-key can't be empty",
    TOO_MANY_REQUESTS: "Too many requests, please try again later",
    REQUEST_TOO_FREQUENT: "Request too frequently",
    SIGNATURE_ERROR: "Sign signature error",
    MARKET_NOT_EXISTS: "Market not exists",
    RISK_LIMIT_EXCEEDED: "Positions amount exceeded the max open limit, adjust risk limit",
    INSUFFICIENT_BALANCE: "Insufficient balance",
    INVALID_LEVERAGE: "Invalid leverage",
    OPEN_ORDERS_OR_POSITION: "You can't change leverage or margin mode as there are open orders",
    ORDER_NOT_FOUND: "Order not found, please try it later",
    POSITION_MODE_LOCKED: "Position exists, so positions mode cannot be updated",
    FUTURES_NOT_TRADABLE: "This futures does not allow trading",
    FUTURES_NOT_SUPPORTED: "This futures is not supported",
    POSITION_NOT_EXIST: "Position not exist",
    SELECT_TP_OR_SL: "Please select TP or SL",
    ABNORMAL_ORDER_STATUS: "Abnormal order status",
    MAX_MARKET_QTY: "Exceeded the maximum order quantity",
    MAX_BUY_PRICE: "Max Buy Order Price",
    MIN_SELL_PRICE: "Mini Sell Order Price",
    MIN_QTY: "The qty cannot be less than the minimum qty",
    REDUCE_ONLY_NO_POSITION: (
        "Order failed. No position opened. Cancel [Reduce-only] settings and retry later"
    ),
    REDUCE_ONLY_SAME_DIRECTION: (
        "Order failed. A [Reduce-only] order can not be in the same direction as the open position"
    ),
    TP_ABOVE_MARK: "Trigger price for TP should be higher than mark price:",
    TP_BELOW_MARK: "Trigger price for TP should be lower than mark price:",
    SL_ABOVE_MARK: "Trigger price for SL should be higher than mark price:",
    SL_BELOW_MARK: "Trigger price fo SL should be lower than mark price",
    TPSL_QTY_TOO_LARGE: "TP/SL amount must be less than the size of the position.",
    MAX_LIMIT_QTY: "The order qty can't be greater than the max order qty:",
    TRIGGER_PRICE_NOT_POSITIVE: "Trigger price must be greater than 0",
    CLIENT_ID_DUPLICATE: "Client ID duplicate",
}

# --- assumptions where the vendor is silent (docs/bitunix.md#unconfirmed-assumptions) ----------
# A qty or price with more decimals than basePrecision/quotePrecision: the table has no code for it.
OFF_GRID_CODE = PARAMETER_ERROR
# A timestamp outside TIMESTAMP_WINDOW_MS (see auth.py): no "timestamp expired" code exists.
STALE_TIMESTAMP_CODE = PARAMETER_ERROR
# A key that is present but unknown: BitUnix documents only "api-key can't be empty".
UNKNOWN_KEY_CODE = API_KEY_EMPTY
# A pair with isApiSupported=false: "This futures is not supported" reads closest.
NOT_API_SUPPORTED_CODE = FUTURES_NOT_SUPPORTED
# A pair in STOP/PREVIEW (any order) or CANCEL_ONLY (an opening order).
SYMBOL_STATUS_CODE = FUTURES_NOT_TRADABLE
# A POST_ONLY order that would take, in "reject" mode (see Settings.paper_post_only_mode).
POST_ONLY_REJECT_CODE = ABNORMAL_ORDER_STATUS
# A second position-level TP/SL on the same position ("one per position",
# docs/bitunix.md#tpsl-endpoints).
POSITION_TPSL_EXISTS_CODE = ABNORMAL_ORDER_STATUS
# modify_order / cancel on an order that is no longer open.
ORDER_NOT_OPEN_CODE = ABNORMAL_ORDER_STATUS


class ExchangeError(Exception):
    """A business error: answered as HTTP 200 `{"code": code, "msg": msg, "data": null}`."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        self.code = code
        base = MESSAGES.get(code, "Error")
        self.msg = f"{base} {detail}".strip() if detail else base
        super().__init__(f"{code}: {self.msg}")


def param_error(detail: str) -> ExchangeError:
    return ExchangeError(PARAMETER_ERROR, detail)
