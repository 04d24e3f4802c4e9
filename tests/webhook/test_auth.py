"""Secrets (HMAC under the server key), the server key file, source addresses, rate limit."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from webhook.auth import (
    MIN_SECRET_LENGTH,
    SERVER_KEY_FILE,
    TRADINGVIEW_IPS,
    WeakSecret,
    check_secret,
    generate_secret,
    hash_secret,
    ip_allowed,
    server_key_for,
    source_address,
    verify_secret,
)
from webhook.ratelimit import RateLimiter

KEY = b"k" * 32


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_only_the_same_secret_verifies(secret: str, other: str) -> None:
    stored = hash_secret(KEY, secret)
    assert verify_secret(KEY, secret, stored)
    assert verify_secret(KEY, other, stored) == (other == secret)
    assert not verify_secret(b"another-key", secret, stored)
    assert not verify_secret(KEY, secret, None)
    assert len(stored) == 64 and (len(secret) < 8 or secret not in stored)


def test_generated_secrets_have_at_least_128_bits_and_user_ones_a_minimum_length() -> None:
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50 and all(len(s) >= 32 for s in secrets)  # 24 random bytes, base64
    with pytest.raises(WeakSecret, match=f"at least {MIN_SECRET_LENGTH}"):
        check_secret("short")
    with pytest.raises(WeakSecret, match="spaces"):
        check_secret("a" * 20 + " b")
    assert check_secret("x" * MIN_SECRET_LENGTH) == "x" * MIN_SECRET_LENGTH


def test_a_generated_secret_can_be_passed_on_a_command_line() -> None:
    """One in 64 URL-safe secrets started with "-", and `tradewire alert send --secret -x…`
    then failed with "expected one argument" (seen as a flaky CLI test)."""
    assert not any(generate_secret().startswith("-") for _ in range(2000))


def test_server_key_is_generated_once_mode_0600_and_agreed_on_by_racing_processes(
    tmp_path: Path,
) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: server_key_for(tmp_path), range(16)))
    assert len(keys) == 1
    path = tmp_path / SERVER_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [SERVER_KEY_FILE]  # no temp files left
    assert server_key_for(tmp_path, SecretStr("configured")) == b"configured"


def test_source_address_trusts_forwarded_for_only_from_trusted_proxies() -> None:
    proxies = ["10.0.0.0/8"]
    assert source_address("203.0.113.9", "52.89.214.238", proxies) == "203.0.113.9"
    assert source_address("10.1.2.3", "52.89.214.238", proxies) == "52.89.214.238"
    # a client-written first hop is ignored: the nearest untrusted hop is the sender
    assert (
        source_address("10.1.2.3", "1.2.3.4, 52.89.214.238, 10.9.9.9", proxies) == "52.89.214.238"
    )
    assert source_address("10.1.2.3", None, proxies) == "10.1.2.3"


def test_only_a_valid_ip_is_ever_a_source_address() -> None:
    """Found by the security review (D4): a trusted proxy passing a client-written
    X-Forwarded-For on stored `not-an-ip` and `<script>…` as the source and echoed it."""
    proxies = ["10.0.0.0/8"]
    for junk in ("not-an-ip", "<script>alert(1)</script>", "1.2.3.4:80", "1.2.3.4 5.6.7.8"):
        assert source_address("10.1.2.3", junk, proxies) is None
        assert source_address("10.1.2.3", f"{junk}, 10.9.9.9", proxies) is None
        assert not ip_allowed(source_address("10.1.2.3", junk, proxies), ["0.0.0.0/0"], False)
    # what is stored is the address written one way
    assert source_address("10.1.2.3", " 2001:DB8::1 ", proxies) == "2001:db8::1"
    assert source_address("2001:DB8::2", None, proxies) == "2001:db8::2"


def test_ip_allow_list_and_tradingview_preset() -> None:
    assert ip_allowed("203.0.113.9", [], False)
    assert all(ip_allowed(ip, [], True) for ip in TRADINGVIEW_IPS)
    assert not ip_allowed("203.0.113.9", [], True)
    assert ip_allowed("203.0.113.9", ["203.0.113.0/24"], True)
    assert ip_allowed("::ffff:52.89.214.238", [], True)
    assert not ip_allowed(None, ["203.0.113.0/24"], False)


def test_rate_limiter_refills_evenly() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.allow(1, 3) for _ in range(3)] == [None, None, None]
    wait = limiter.allow(1, 3)
    assert wait == pytest.approx(20.0)
    assert limiter.allow(2, 3) is None  # buckets are per strategy
    now[0] = 20.0
    assert limiter.allow(1, 3) is None
    assert limiter.allow(1, 3) is not None


@given(st.integers(1, 120), st.lists(st.floats(0, 10, allow_nan=False), max_size=200))
def test_rate_limiter_never_lets_more_through_than_the_budget(
    per_min: int, gaps: list[float]
) -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    passed = 0
    for gap in gaps:
        now[0] += gap
        passed += limiter.allow(7, per_min) is None
    assert passed <= per_min + now[0] * per_min / 60 + 1e-9
