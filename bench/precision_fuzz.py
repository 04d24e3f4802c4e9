"""Precision fuzz: N random alerts over every pair of a pair file, through sizing and
conforming, placed on the paper exchange; the bar is 0 rejections for a rule at the exchange.

The alerts run in rounds of ROUND_SIZE. Each round resets the paper exchange (balance back to
the raised setting, positions and orders gone), freezes its random walk and sets the position
mode, alternating ONE_WAY and HEDGE. Between alerts a random symbol's price moves now and then
(admin API), so marks land everywhere on the tick grid and resting orders fill.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.fuzz_alerts import chance, decimal_between, generate
from bench.fuzz_pipeline import Pipeline, Round, Tally
from bench.limits import BenchLimits
from bench.paper_admin import PaperAdmin, PaperAdminError
from bench.report import Outcome, Row
from bench.stack import ExchangeEndpoint, paper_exchange
from exchange import parse
from exchange.client import BitunixClient
from trading.errors import PairRulesInvalid
from trading.rules import PairRules
from trading.types import PositionMode

DEFAULT_N = 10_000
QUICK_N = 600
ROUND_SIZE = 250
MOVE_PERCENT = 10  # chance per alert that some price moves first
MAX_MOVE_BPS_EXP = 3  # moves up to ±999 bps
MAX_LISTED = 40  # symbols named in the report


async def load_rules(client: BitunixClient) -> tuple[list[str], dict[str, PairRules],
                                                       dict[str, str]]:
    """Every symbol the exchange lists, the rules that parse (the pair sync's own path), and
    why the others do not."""
    symbols: list[str] = []
    rules: dict[str, PairRules] = {}
    unusable: dict[str, str] = {}
    for pair in await client.trading_pairs_raw():
        symbols.append(pair.symbol)
        try:
            rules[pair.symbol] = parse.pair_rules(pair)
        except (PairRulesInvalid, ValueError) as exc:
            unusable[pair.symbol] = str(exc)
    return symbols, rules, unusable


async def run_fuzz(
    endpoint: ExchangeEndpoint,
    *,
    n: int = DEFAULT_N,
    seed: int = 1,
    limits: BenchLimits | None = None,
    pairs_file: Path | None = None,
    round_size: int = ROUND_SIZE,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the fuzz against a paper exchange (its admin API is used: reset, freeze, prices)."""
    limits = limits or BenchLimits()
    client = BitunixClient(endpoint.base_url, endpoint.api_key, SecretStr(endpoint.api_secret),
                           budget_scale=limits.exchange_budget_scale)
    admin = PaperAdmin(endpoint.base_url)
    rng = random.Random(seed)
    tally = Tally()
    started = time.perf_counter()
    try:
        symbols, rules, unusable = await load_rules(client)
        priced = [s for s, r in rules.items() if r.tradable_for_open]
        pipeline = Pipeline(client, rules, tally, run_id=f"fz{seed}")
        modes = [PositionMode.ONE_WAY, PositionMode.HEDGE]
        rng.shuffle(modes)
        rounds: dict[str, int] = {}
        for number, first in enumerate(range(0, n, round_size)):
            mode = modes[number % 2]
            await admin.reset()
            await admin.freeze_all()
            await client.change_position_mode(mode)
            rounds[mode.value] = rounds.get(mode.value, 0) + 1
            rnd = Round(mode)
            for index in range(first, min(n, first + round_size)):
                if priced and chance(rng, MOVE_PERCENT):
                    await _move(admin, rng, rng.choice(priced))
                await pipeline.run(generate(rng, index, symbols, rules), rnd)
            if progress is not None:
                done = min(n, first + round_size)
                progress(f"precision fuzz: {done}/{n} alerts, "
                         f"{tally.rule_rejection_count} rule rejections at the exchange")
    finally:
        await client.aclose()
        await admin.aclose()
    elapsed = time.perf_counter() - started
    return {
        "n": n,
        "seed": seed,
        "pairs_file": str(pairs_file) if pairs_file else "bundled (paper/data/pairs.json)",
        "pairs": len(symbols),
        "symbols": symbols if len(symbols) <= MAX_LISTED else symbols[:MAX_LISTED] + ["…"],
        "pairs_unusable": unusable,
        "round_size": round_size,
        "rounds_by_position_mode": rounds,
        "duration_s": round(elapsed, 1),
        "alerts_per_s": round(n / elapsed, 1) if elapsed else None,
        **tally.as_dict(),
    }



async def _move(admin: PaperAdmin, rng: random.Random, symbol: str) -> None:
    bps = decimal_between(rng, -2, MAX_MOVE_BPS_EXP, rng.randrange(1, 6))
    try:
        await admin.move(symbol, bps if chance(rng, 50) else -bps)
    except PaperAdminError:
        # A move that would take the price to zero or below is refused; the fuzz goes on.
        return


REAL_PAIRS_FILE = Path(__file__).resolve().parent / "data" / "bitunix_pairs_real.json"


async def measure(
    limits: BenchLimits,
    work_dir: Path,
    *,
    runs: list[tuple[Path | None, Path | None, int]],
    seed: int = 1,
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    """One fuzz per (pairs file, tickers file, N), each on its own paper exchange process
    started with that pair file (None: the bundled one)."""
    results = []
    for number, (pairs_file, tickers_file, n) in enumerate(runs):
        async with paper_exchange(limits, work_dir / f"fuzz{number}", pairs_file=pairs_file,
                                  tickers_file=tickers_file) as endpoint:
            result = await run_fuzz(endpoint, n=n, seed=seed + number, limits=limits,
                                    pairs_file=pairs_file, progress=progress)
        result["tickers_file"] = str(tickers_file) if tickers_file else "bundled"
        results.append(result)
    return outcome(results, limits)


def outcome(results: list[dict[str, Any]], limits: BenchLimits) -> Outcome:
    rows = []
    for r in results:
        where = Path(r["pairs_file"]).name if r["pairs_file"].endswith(".json") else "bundled"
        bad = r["exchange_rule_rejections"]
        rows.append(Row(
            f"rule rejections at the exchange ({where}, {r['pairs']} pairs, N={r['n']})",
            str(bad), "0", "met" if bad == 0 else "MISSED",
        ))
        placed = sum(n for k, n in r["tpsl"].items() if k.endswith("placed"))
        rows.append(Row(
            f"orders accepted / sent, TP/SL placed; refused locally ({where})",
            f"{r['orders_accepted']} / {r['orders_sent']}, {placed}; "
            f"{sum(r['local_refusals_by_rule'].values())} (in {r['duration_s']} s)",
        ))
    notes = [
        "sizing → position-mode fields → conform_order → BitunixClient.place_order on the "
        "paper exchange (its own rule check), and for a third of the market openings a TP/SL "
        "(conform_trigger → place_tpsl_order / place_position_tpsl); rounds of "
        f"{ROUND_SIZE} alerts alternate ONE_WAY and HEDGE after an exchange reset",
        f"raised for the fuzz: paper_balance {limits.describe()['paper_balance']} USDT, "
        f"paper_rate_limit_scale {limits.describe()['paper_rate_limit_scale']}, "
        f"exchange_budget_scale {limits.describe()['exchange_budget_scale']}",
        "a rule rejection is a code the client maps to RuleRejected (10002, 10008, 20012, "
        "30013–30017, 30039), or for a TP/SL also 30020–30023 (wrong side of the mark) and "
        "30041; balance codes (20003, 20008) and all others are counted apart",
        "the real-rows pair file holds the only real BitUnix row public (BTCUSDT, the vendor's "
        "response example; bench/data/README.md); any captured trading_pairs answer can be "
        "swapped in with --pairs-file",
    ]
    return Outcome(
        name="precision_fuzz",
        title="6. Precision fuzz",
        rows=rows,
        details={"runs": results},
        notes=notes,
    )

