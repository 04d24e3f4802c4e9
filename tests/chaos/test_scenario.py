"""The fault-run generator is pure and seeded: the same seed gives the same run, and every run
is well formed (tests/chaos/scenario.py)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.chaos.scenario import (
    EXITS,
    OPENS,
    PROCESS_FAULTS,
    SYMBOLS,
    AlertStep,
    Fault,
    FaultStep,
    PriceStep,
    Redeliver,
    When,
    generate,
)

SEEDS = st.integers(min_value=0, max_value=2**32)


@given(SEEDS)
def test_the_same_seed_gives_the_same_run(seed: int) -> None:
    assert generate(seed) == generate(seed)
    assert generate(seed).describe() == generate(seed).describe()


@given(SEEDS)
@settings(max_examples=300)
def test_every_run_is_well_formed(seed: int) -> None:
    run = generate(seed)
    assert run.symbol in SYMBOLS
    alerts = [s for s in run.steps if isinstance(s, AlertStep)]
    assert tuple(alerts) == run.alerts
    assert alerts[0].alert in (*OPENS, *EXITS)
    # An exit first is always followed by the open of the same bar, delivered late.
    if alerts[0].alert in EXITS:
        assert alerts[1].alert in OPENS and alerts[1].when is not When.NOW
    assert [a.alert_id for a in alerts] == [f"a{n}" for n in range(len(alerts))]
    seen = 0
    for step in run.steps:
        if isinstance(step, AlertStep):
            seen += 1
        if isinstance(step, Redeliver):  # only an alert already sent is delivered again
            assert step.index < seen
    assert 1 <= len(run.faults) <= 2
    assert len({f.fault for f in run.faults}) == len(run.faults)
    for f in run.faults:
        assert 1 <= f.hold_s <= 3
        assert 0 <= f.offset_s <= Decimal("0.8")
        if f.fault not in PROCESS_FAULTS:  # set just before an alert that places an order
            assert f.offset_s == 0
            after = run.steps[run.steps.index(f) + 1:]
            assert any(isinstance(s, AlertStep) and s.alert not in EXITS for s in after)
        assert f.fault is not Fault.VISIBILITY_LAG or 500 <= f.lag_ms <= 3000
    assert any(isinstance(s, PriceStep) for s in run.steps)
    assert all(s.gap_s >= 0 for s in run.steps)


def test_a_thousand_seeds_inject_every_fault_and_every_kind_of_delivery() -> None:
    faults: Counter[Fault] = Counter()
    kinds: Counter[str] = Counter()
    for seed in range(1000, 2000):
        run = generate(seed)
        faults.update(f.fault for f in run.steps if isinstance(f, FaultStep))
        kinds.update(a.alert.value for a in run.alerts)
        kinds.update(a.order_type for a in run.alerts if a.alert not in EXITS)
        kinds.update("out of order" for a in run.alerts if a.when is not When.NOW)
        kinds.update("duplicate" for s in run.steps if isinstance(s, Redeliver))
    assert set(faults) == set(Fault) and min(faults.values()) > 100, faults
    assert min(kinds.values()) > 50, kinds
    assert len(kinds) == 6 + 3 + 2, kinds
    assert 200 < sum(generate(seed).hedge for seed in range(1000)) < 400


def test_the_short_version_injects_every_fault_and_every_kind_of_alert() -> None:
    from tests.chaos.test_chaos import SHORT_SEEDS

    runs = [generate(seed) for seed in SHORT_SEEDS]
    assert {r.hedge for r in runs} == {True, False}
    assert {f.fault for r in runs for f in r.faults} == set(Fault)
    alerts = [a for r in runs for a in r.alerts]
    assert {a.alert.value.split("_")[0] for a in alerts} == {"open", "close", "reverse"}
    assert {a.order_type for a in alerts if a.alert not in EXITS} == {"market", "limit", "chase"}
    assert any(a.when is not When.NOW for a in alerts)
    assert any(isinstance(s, Redeliver) for r in runs for s in r.steps)
