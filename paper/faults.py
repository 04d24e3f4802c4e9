"""Fault modes set through `POST /__admin/faults` (see /work/briefs/paper-admin-api.md).

Before a private request is processed, at most one pre-processing fault fires, checked in
this order: `http_5xx` (HTTP 503), `network_error` (code 10001, HTTP 200), `rate_limit`
(code 10006, HTTP 200), `error_rate` (HTTP 500, drawn from a seeded generator). `latency_ms`
is added before all of them. `drop_response` executes a placement and then replaces its answer
by HTTP 504 or withholds it for HANG_SECONDS (then 504). `visibility_delay_ms`,
`position_lag_ms` and `cancel_fill_race` act inside the engine. `price_after` sets a price
right after one request of a given path is answered (under the same lock, so nothing comes
between): a test makes a fill land exactly between two reads of a client.

Extension beyond the shared contract: `post_only_mode` ("reject" | "cancel") overrides
Settings.paper_post_only_mode at run time, so one server can show both behaviours.
`omit_avg_price` answers orders without `avgPrice`, as BitUnix documents `get_order_detail`
(its average is then only in the fills). `position_lag_ms` makes position reads show
each position as it was that long ago (BitUnix warns that positions may lag its orders): a
fill made while it is set changes the positions a read shows only after the lag.
`tpsl_history_delay_ms` and `tpsl_fill_delay_ms` make
a TP/SL that fired or was cancelled show late in its history list, and the fills of the close
it made show late in the fills list (an exchange whose lists lag). `faults_after` merges more
faults right after one request of a given path is answered (under the same lock): an outage
that begins just after a placement whose answer is lost. `clock_skew_ms` (may be negative)
puts the simulator's clock that far from the real one: the `Date` header of every BitUnix-path
answer (BitUnix documents no server-time endpoint; Tradewire reads that header,
exchange/clock.py) and the clock the signature's timestamp window is checked against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

HANG_SECONDS = 30.0
DROP_TARGETS = ("order", "tpsl")
DROP_MODES = ("http_504", "hang")
POST_ONLY_MODES = ("reject", "cancel")


class FaultSpecError(ValueError):
    """A fault body that cannot be applied; the message names the field."""


@dataclass
class Faults:
    seed: int
    latency_ms: int = 0
    error_rate: Decimal = Decimal(0)
    rate_limit: int = 0
    http_5xx: int = 0
    network_error: int = 0
    drop_target: str | None = None
    drop_count: int = 0
    drop_mode: str = "http_504"
    visibility_delay_ms: int = 0
    cancel_fill_race: bool = False
    post_only_mode: str | None = None
    omit_avg_price: bool = False
    price_after: dict[str, str] | None = None  # {"path", "symbol", "price"}: fires once
    position_lag_ms: int = 0
    tpsl_history_delay_ms: int = 0
    tpsl_fill_delay_ms: int = 0
    faults_after: dict[str, Any] | None = None  # {"path", "faults"}: fires once
    clock_skew_ms: int = 0
    _rng: random.Random = field(init=False, repr=False)
    # (ms, position id, qty change) of the fills made while `position_lag_ms` was set.
    _position_changes: list[tuple[int, str, Decimal]] = field(
        init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def clear(self) -> None:
        fresh = Faults(self.seed)
        for name in self.as_dict():
            setattr(self, name, getattr(fresh, name))
        self._rng = random.Random(self.seed)
        self._position_changes = []

    def merge(self, body: dict[str, Any]) -> None:
        """Validate the whole body first, then apply it (a bad body changes nothing)."""
        updates: dict[str, Any] = {}
        for name in ("latency_ms", "rate_limit", "http_5xx", "network_error",
                     "visibility_delay_ms", "position_lag_ms", "tpsl_history_delay_ms",
                     "tpsl_fill_delay_ms"):
            if name in body:
                updates[name] = _non_negative_int(body[name], name)
        if "clock_skew_ms" in body:
            skew = body["clock_skew_ms"]
            if isinstance(skew, bool) or not isinstance(skew, int):
                raise FaultSpecError("clock_skew_ms must be an integer (negative: behind)")
            updates["clock_skew_ms"] = skew
        if "error_rate" in body:
            try:
                rate = Decimal(str(body["error_rate"]))
            except InvalidOperation as exc:
                raise FaultSpecError("error_rate must be a decimal between 0 and 1") from exc
            if not 0 <= rate <= 1:
                raise FaultSpecError("error_rate must be between 0 and 1")
            updates["error_rate"] = rate
        for name in ("cancel_fill_race", "omit_avg_price"):
            if name in body:
                if not isinstance(body[name], bool):
                    raise FaultSpecError(f"{name} must be true or false")
                updates[name] = body[name]
        if "post_only_mode" in body:
            if body["post_only_mode"] not in (*POST_ONLY_MODES, None):
                raise FaultSpecError("post_only_mode must be reject, cancel or null")
            updates["post_only_mode"] = body["post_only_mode"]
        if "drop_response" in body:
            updates.update(_drop(body["drop_response"]))
        if "price_after" in body:
            updates["price_after"] = _price_after(body["price_after"])
        if "faults_after" in body:
            updates["faults_after"] = _faults_after(body["faults_after"], self.seed)
        unknown = set(body) - set(self.as_dict()) - {"drop_response"}
        if unknown:
            raise FaultSpecError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        for name, value in updates.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms, "error_rate": str(self.error_rate),
            "rate_limit": self.rate_limit, "http_5xx": self.http_5xx,
            "network_error": self.network_error, "drop_target": self.drop_target,
            "drop_count": self.drop_count, "drop_mode": self.drop_mode,
            "visibility_delay_ms": self.visibility_delay_ms,
            "cancel_fill_race": self.cancel_fill_race, "post_only_mode": self.post_only_mode,
            "omit_avg_price": self.omit_avg_price,
            "price_after": self.price_after, "position_lag_ms": self.position_lag_ms,
            "tpsl_history_delay_ms": self.tpsl_history_delay_ms,
            "tpsl_fill_delay_ms": self.tpsl_fill_delay_ms,
            "faults_after": self.faults_after,
            "clock_skew_ms": self.clock_skew_ms,
        }

    def before_processing(self) -> str | None:
        """Consume and name the fault that answers this private request, if any:
        "http_5xx" | "network_error" | "rate_limit" | "error_rate"."""
        if self.http_5xx > 0:
            self.http_5xx -= 1
            return "http_5xx"
        if self.network_error > 0:
            self.network_error -= 1
            return "network_error"
        if self.rate_limit > 0:
            self.rate_limit -= 1
            return "rate_limit"
        if self.error_rate > 0 and Decimal(repr(self._rng.random())) < self.error_rate:
            return "error_rate"
        return None

    def take_drop(self, target: str) -> str | None:
        """The drop mode when this placement's answer must be dropped (consumes one)."""
        if self.drop_target == target and self.drop_count > 0:
            self.drop_count -= 1
            return self.drop_mode
        return None


    def take_price_after(self, path: str) -> tuple[str, Decimal] | None:
        """(symbol, price) to set now that a request of `path` was answered (consumes it)."""
        spec = self.price_after
        if spec is None or not path.endswith("/" + spec["path"]):
            return None
        self.price_after = None
        return spec["symbol"], Decimal(spec["price"])

    def note_position_change(self, position_id: str, delta: Decimal, now_ms: int) -> None:
        """A fill changed a position's quantity by `delta` (kept only while the lag is set)."""
        if self.position_lag_ms > 0:
            self._position_changes.append((now_ms, position_id, delta))

    def unseen_position_change(self, position_id: str, now_ms: int) -> Decimal:
        """How much a position's quantity changed within the last `position_lag_ms`: what a
        position read does not show yet."""
        cutoff = now_ms - self.position_lag_ms
        self._position_changes = [c for c in self._position_changes if c[0] > cutoff]
        return sum((d for _, pid, d in self._position_changes if pid == position_id), Decimal(0))
    def take_faults_after(self, path: str) -> None:
        """Merge the faults armed for `path` now that a request of it was answered (once)."""
        spec = self.faults_after
        if spec is None or not path.endswith("/" + spec["path"]):
            return
        self.faults_after = None
        self.merge(spec["faults"])


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultSpecError(f"{name} must be a non-negative integer")
    return value


def _drop(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise FaultSpecError("drop_response must be {target, count, mode}")
    target = spec.get("target")
    mode = spec.get("mode", "http_504")
    if target not in DROP_TARGETS:
        raise FaultSpecError(f"drop_response.target must be one of {', '.join(DROP_TARGETS)}")
    if mode not in DROP_MODES:
        raise FaultSpecError(f"drop_response.mode must be one of {', '.join(DROP_MODES)}")
    count = _non_negative_int(spec.get("count", 1), "drop_response.count")
    return {"drop_target": target, "drop_count": count, "drop_mode": mode}


def _faults_after(spec: Any, seed: int) -> dict[str, Any] | None:
    """{"path", "faults"}: `faults` is any fault body but another `faults_after`, checked now
    (a bad one is refused with the rest of the body, not when it fires)."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str) \
            or not isinstance(spec.get("faults"), dict) or "faults_after" in spec["faults"]:
        raise FaultSpecError("faults_after must be {path, faults} (faults without faults_after) "
                             "or null")
    try:
        Faults(seed).merge(spec["faults"])
    except FaultSpecError as exc:
        raise FaultSpecError(f"faults_after.faults: {exc}") from exc
    return {"path": spec["path"].strip("/"), "faults": dict(spec["faults"])}


def _price_after(spec: Any) -> dict[str, str] | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or not all(isinstance(spec.get(k), str | int | Decimal)
                                             for k in ("path", "symbol", "price")):
        raise FaultSpecError("price_after must be {path, symbol, price} or null")
    try:
        price = Decimal(str(spec["price"]))
    except InvalidOperation as exc:
        raise FaultSpecError("price_after.price must be a decimal") from exc
    if price <= 0:
        raise FaultSpecError("price_after.price must be positive")
    return {"path": str(spec["path"]).strip("/"), "symbol": str(spec["symbol"]),
            "price": str(price)}
