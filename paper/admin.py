"""The local-only admin API under /__admin/ (contract: /work/briefs/paper-admin-api.md).

Refused with 403 unless the peer is a loopback address, the Host a local name and the Origin
(if any) local; a POST with a body must be application/json (415). Plain JSON answers (no envelope);
a bad body answers 400 `{"error": "..."}` naming the field, an unknown symbol 404.
Extras beyond the contract: `freeze` with no symbol applies to every symbol; `faults` also
takes `post_only_mode`; `price` answers the new price.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from paper import tiers
from paper.errors import ExchangeError
from paper.faults import FaultSpecError
from paper.views import money, order_view, position_view, tpsl_view
from paper.wire import fmt
from trading.types import PairStatus, PositionSide

if TYPE_CHECKING:
    from paper.app import Runtime


LOCAL_NAMES = frozenset({"localhost", "testclient"})


def _is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() in LOCAL_NAMES


def _host_name(authority: str) -> str:
    """`127.0.0.1:8100` → `127.0.0.1`, `[::1]:8100` → `::1`, `localhost` → `localhost`."""
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


def _loopback_only(request: Request) -> None:
    peer = request.client.host if request.client else ""
    if not _is_local(peer):
        raise HTTPException(status_code=403, detail="the admin API answers loopback peers only")


def _local_only(request: Request) -> None:
    """Loopback peers only, and only as themselves: a page in the operator's browser reaches
    loopback too, so the request must also name a local host (a DNS-rebound name is refused),
    come from no other origin, and a POST must say it is JSON (a cross-site "simple" request
    cannot; an empty POST is allowed, the Origin check covers it)."""
    _loopback_only(request)
    host = _host_name(request.headers.get("host", ""))
    if not _is_local(host):
        raise HTTPException(status_code=403,
                            detail=f"the admin API answers requests to a local host, not {host!r}")
    origin = request.headers.get("origin")
    if origin is not None and not _is_local(urlsplit(origin).hostname or ""):
        raise HTTPException(status_code=403,
                            detail=f"the admin API refuses cross-site requests (Origin {origin})")
    if request.method == "POST" and _has_body(request):
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "application/json":
            raise HTTPException(status_code=415, detail="send the admin body as application/json")


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return length != "0" if length is not None else "transfer-encoding" in request.headers


router = APIRouter(prefix="/__admin", dependencies=[Depends(_local_only)],
                   include_in_schema=False)


def _rt(request: Request) -> Runtime:
    return request.app.state.rt  # type: ignore[no-any-return]


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    import json

    body = json.loads(raw, parse_float=Decimal)
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _symbol(rt: Runtime, body: dict[str, Any]) -> str:
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or symbol not in rt.engine.pairs:
        raise KeyError(f"unknown symbol {symbol!r}")
    return symbol


@router.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@router.post("/reset")
async def reset(request: Request) -> dict[str, bool]:
    rt = _rt(request)
    async with rt.lock:
        rt.reset()
    return {"ok": True}


@router.post("/price")
async def price(request: Request) -> Any:
    rt = _rt(request)
    try:
        body = await _body(request)
        symbol = _symbol(rt, body)
        async with rt.lock:
            if body.get("price") is not None:
                new = rt.engine.set_price(symbol, Decimal(str(body["price"])))
            elif body.get("move_bps") is not None:
                new = rt.engine.move(symbol, Decimal(str(body["move_bps"])))
            else:
                return _bad("give price or move_bps")
            rt.dirty = True
    except KeyError as exc:
        return _bad(str(exc.args[0]), 404)
    except (ValueError, InvalidOperation, ExchangeError) as exc:
        return _bad(f"cannot set price: {exc}")
    return {"symbol": symbol, "price": fmt(new)}


@router.post("/freeze")
async def freeze(request: Request) -> Any:
    rt = _rt(request)
    try:
        body = await _body(request)
        frozen = body.get("frozen", True)
        if not isinstance(frozen, bool):
            return _bad("frozen must be true or false")
        symbols = list(rt.engine.pairs) if body.get("symbol") is None else [_symbol(rt, body)]
    except KeyError as exc:
        return _bad(str(exc.args[0]), 404)
    except ValueError as exc:
        return _bad(str(exc))
    async with rt.lock:
        for s in symbols:
            rt.engine.market.symbols[s].frozen = frozen
    return {"symbols": symbols, "frozen": frozen}


@router.post("/symbol_status")
async def symbol_status(request: Request) -> Any:
    rt = _rt(request)
    try:
        body = await _body(request)
        symbol = _symbol(rt, body)
        status = PairStatus(body.get("status"))
    except KeyError as exc:
        return _bad(str(exc.args[0]), 404)
    except ValueError:
        return _bad("status must be OPEN, CANCEL_ONLY, STOP or PREVIEW")
    async with rt.lock:
        rt.engine.set_status(symbol, status)
        rt.dirty = True
    return {"symbol": symbol, "status": status.value}


@router.post("/liquidate")
async def liquidate(request: Request) -> Any:
    rt = _rt(request)
    try:
        body = await _body(request)
        symbol = _symbol(rt, body)
        side = PositionSide(body["side"]) if body.get("side") is not None else None
    except KeyError as exc:
        return _bad(str(exc.args[0]), 404)
    except ValueError:
        return _bad("side must be LONG, SHORT or null")
    async with rt.lock:
        ids = rt.engine.liquidate(symbol, side)
        rt.dirty = True
    return {"liquidated": ids}


@router.post("/position_tiers")
async def position_tiers(request: Request) -> Any:
    """Replace one symbol's risk-limit ladder (paper/tiers.py); `tiers: null` restores the
    default. Openings past the ladder are refused with 20002 from then on."""
    rt = _rt(request)
    try:
        body = await _body(request)
        symbol = _symbol(rt, body)
        ladder = None if body.get("tiers") is None else tiers.parse_tiers(body["tiers"])
    except KeyError as exc:
        return _bad(str(exc.args[0]), 404)
    except ValueError as exc:
        return _bad(str(exc))
    async with rt.lock:
        if ladder is None:
            rt.engine.tiers.pop(symbol, None)
        else:
            rt.engine.tiers[symbol] = ladder
        return {"symbol": symbol,
                "tiers": tiers.get_position_tiers(rt.engine, {"symbol": symbol})}


@router.post("/faults")
async def set_faults(request: Request) -> Any:
    rt = _rt(request)
    try:
        body = await _body(request)
        async with rt.lock:
            rt.engine.faults.merge(body)
    except (ValueError, FaultSpecError) as exc:
        return _bad(str(exc))
    return rt.engine.faults.as_dict()


@router.delete("/faults")
async def clear_faults(request: Request) -> Any:
    rt = _rt(request)
    async with rt.lock:
        rt.engine.faults.clear()
    return rt.engine.faults.as_dict()


@router.get("/requests")
async def requests(request: Request, since_ns: int = 0) -> list[dict[str, Any]]:
    return _rt(request).requests.since(since_ns)


@router.get("/state")
async def state(request: Request) -> dict[str, Any]:
    rt = _rt(request)
    async with rt.lock:
        eng, st = rt.engine, rt.engine.state
        return {
            "positionMode": st.position_mode.value,
            "balances": {c: money(v) for c, v in st.balances.items()},
            "orders": [order_view(eng, o) for o in st.orders.values()],
            "positions": [position_view(eng, p) for p in st.open_positions()],
            "closed_positions": [p.position_id for p in st.positions.values() if p.closed],
            "tpsl": [
                {**tpsl_view(eng, t, history=True), "wholePosition": t.whole_position}
                for t in st.tpsl.values()
            ],
            "prices": {s: fmt(sm.price) for s, sm in eng.market.symbols.items()},
            "frozen": {s: sm.frozen for s, sm in eng.market.symbols.items()},
            "statuses": {s: eng.status(s).value for s in eng.pairs},
            "faults": eng.faults.as_dict(),
        }
