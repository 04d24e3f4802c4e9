"""Sign-in for the dashboard: the admin token, once, for a signed session cookie.

The cookie holds `expiry.nonce.signature`, signed with a key derived from the admin token, so
changing the token signs every browser out and the server keeps no session table. It is
HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it).

Every action is a POST form that carries a CSRF token derived from the session's nonce; the
server checks it, and the request's Origin where the browser sends one. A cross-site form can
neither read the token nor make the browser send the cookie."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "tw_session"
SESSION_S = 12 * 3600  # a working day; then the token is asked again
_KEY_LABEL = b"tradewire-ui-session-v1"


class NotSignedIn(Exception):
    """No valid session: the page redirects to sign-in."""


class CsrfRefused(Exception):
    """A form without the session's CSRF token, or from another origin."""


def _key(admin_token: str) -> bytes:
    return hmac.new(admin_token.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def token_matches(given: str, admin_token: str | None) -> bool:
    """Constant-time: the sign-in form's token is the admin token."""
    if not admin_token or not given:
        return False
    return secrets.compare_digest(given.strip().encode(), admin_token.encode())


@dataclass(frozen=True)
class Session:
    nonce: str
    expires: int

    def csrf(self, admin_token: str) -> str:
        """The token every form of this session carries."""
        return _sign(_key(admin_token), f"csrf:{self.nonce}")


def new_cookie(admin_token: str, now: int | None = None) -> str:
    expires = (now if now is not None else int(time.time())) + SESSION_S
    body = f"{expires}.{secrets.token_hex(16)}"
    return f"{body}.{_sign(_key(admin_token), body)}"


def read_cookie(value: str | None, admin_token: str | None, now: int | None = None) -> Session:
    """The session the cookie proves, or NotSignedIn (missing, forged, expired, or signed with
    another admin token)."""
    if not value or not admin_token:
        raise NotSignedIn
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        raise NotSignedIn
    expires, nonce, signature = parts
    if not secrets.compare_digest(signature, _sign(_key(admin_token), f"{expires}.{nonce}")):
        raise NotSignedIn
    if int(expires) <= (now if now is not None else int(time.time())):
        raise NotSignedIn
    return Session(nonce=nonce, expires=int(expires))


def check_csrf(session: Session, admin_token: str, given: str | None) -> None:
    if not given or not secrets.compare_digest(given, session.csrf(admin_token)):
        raise CsrfRefused("the form's CSRF token is missing or wrong: reload the page")


def check_origin(origin: str | None, host: str | None) -> None:
    """A browser sends Origin with every POST; one from another site is refused (a request
    without Origin is not a cross-site browser form)."""
    if origin is None:
        return
    if host is None or origin.split("://", 1)[-1] != host:
        raise CsrfRefused(f"a form from another origin ({origin}) is refused")
