"""Who may send alerts: per-strategy secrets and the optional source-address allow-list.

Secrets are stored as HMAC-SHA256 under a server key (docs/design.md#webhook-secrets): as safe as a
password hash against a stolen database for secrets of 128+ random bits, and fast enough for the
ack.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from pydantic import SecretStr

from settings import Settings

SERVER_KEY_FILE = "webhook-key"
MIN_SECRET_LENGTH = 20
GENERATED_SECRET_BYTES = 24  # 192 bits
# TradingView's published webhook senders (docs/tradingview.md#source-addresses), IPv4 only.
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")
# Compared against when the strategy is unknown, so both failures take the same work.
_NO_HASH = "0" * 64


class WeakSecret(ValueError):
    """A user-supplied secret too short to resist guessing."""


def generate_secret() -> str:
    """A random URL-safe secret that never starts with "-": on a command line
    (`tradewire alert send --secret …`) such a value would be read as an option."""
    while (secret := secrets.token_urlsafe(GENERATED_SECRET_BYTES)).startswith("-"):
        pass
    return secret


def check_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH:
        raise WeakSecret(
            f"a webhook secret needs at least {MIN_SECRET_LENGTH} characters "
            "(omit --secret to have one generated)"
        )
    if any(ch.isspace() or ch in '"\\' for ch in secret):
        raise WeakSecret("a webhook secret must not contain spaces, quotes or backslashes")
    return secret


def hash_secret(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def verify_secret(key: bytes, secret: str, stored_hash: str | None) -> bool:
    """Constant-time comparison; False for a strategy without a secret (or no strategy)."""
    expected = stored_hash or _NO_HASH
    return hmac.compare_digest(hash_secret(key, secret), expected) and stored_hash is not None


def server_key(settings: Settings) -> bytes:
    """TRADEWIRE_SECRET_KEY, else the key generated once into the state dir (mode 0600).
    Losing it invalidates every strategy's secret: back it up with the database."""
    return server_key_for(settings.state_path, settings.secret_key)


def server_key_for(state_dir: Path, configured: SecretStr | None = None) -> bytes:
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    return _key_file(state_dir.expanduser().resolve() / SERVER_KEY_FILE)


def _key_file(path: Path) -> bytes:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(tmp, path)  # atomic and refuses to replace: two first starts agree on one key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"the server key file {path} is empty: restore it from a backup")
    return key.encode()


# --- source addresses ---------------------------------------------------------------------


def source_address(
    peer: str | None, forwarded_for: str | None, trusted: Iterable[str]
) -> str | None:
    """The sender's address: the peer, or, when the peer is a trusted proxy, the nearest
    untrusted address in X-Forwarded-For (never a value a client could simply write). Always a
    valid IP, written one way, or None (unknown: no allow-list admits it): a hop that is not an
    address ends the walk, since what lies before it was written by whoever sent it."""
    networks = _networks(trusted)
    if peer is None or not forwarded_for or not _within(peer, networks):
        return _canonical_ip(peer)
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        ip = _canonical_ip(hop)
        if ip is None or not _within(ip, networks):
            return ip
    return _canonical_ip(hops[0]) if hops else _canonical_ip(peer)


def _canonical_ip(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def ip_allowed(address: str | None, allowed: Iterable[str], tradingview: bool) -> bool:
    """True when no list applies, or the address is in the strategy's list or the preset."""
    entries = list(allowed) + (list(TRADINGVIEW_IPS) if tradingview else [])
    if not entries:
        return True
    return address is not None and _within(address, _networks(entries))


def parse_network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IP or CIDR as given to the CLI; ValueError names the bad entry."""
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None


def _networks(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [parse_network(entry) for entry in entries]


def _within(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)
