"""Tradewire's benchmarks: `python -m bench` (or `make bench`) runs them and writes
bench/results/<date>.md and .json. Latencies are measured in float milliseconds (durations,
not money); everything that touches an order stays Decimal."""
