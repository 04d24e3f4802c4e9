"""The dashboard's sign-in cookie and CSRF token (ui/session.py), pure."""

from __future__ import annotations

import pytest

from ui.session import (
    SESSION_S,
    CsrfRefused,
    NotSignedIn,
    check_csrf,
    check_origin,
    new_cookie,
    read_cookie,
    token_matches,
)

TOKEN = "admin-token-for-the-session-tests-0123456789"
NOW = 1_800_000_000


def test_a_cookie_signed_with_the_token_is_a_session_until_it_expires() -> None:
    cookie = new_cookie(TOKEN, now=NOW)
    session = read_cookie(cookie, TOKEN, now=NOW + SESSION_S - 1)
    assert session.expires == int(NOW) + SESSION_S
    with pytest.raises(NotSignedIn):
        read_cookie(cookie, TOKEN, now=NOW + SESSION_S)


@pytest.mark.parametrize("mangle", [
    lambda c: c[:-1] + ("0" if c[-1] != "0" else "1"),  # signature changed
    lambda c: str(int(c.split(".")[0]) + 3600) + c[c.index("."):],  # expiry pushed out
    lambda c: c.replace(".", "", 1),  # not three parts
    lambda c: "",
])
def test_a_forged_or_damaged_cookie_is_refused(mangle) -> None:
    with pytest.raises(NotSignedIn):
        read_cookie(mangle(new_cookie(TOKEN, now=NOW)), TOKEN, now=NOW)


def test_changing_the_admin_token_signs_every_browser_out() -> None:
    cookie = new_cookie(TOKEN, now=NOW)
    with pytest.raises(NotSignedIn):
        read_cookie(cookie, TOKEN + "-rotated", now=NOW)
    with pytest.raises(NotSignedIn):
        read_cookie(cookie, None, now=NOW)


def test_the_csrf_token_belongs_to_one_session() -> None:
    one = read_cookie(new_cookie(TOKEN, now=NOW), TOKEN, now=NOW)
    two = read_cookie(new_cookie(TOKEN, now=NOW), TOKEN, now=NOW)
    check_csrf(one, TOKEN, one.csrf(TOKEN))
    for wrong in (two.csrf(TOKEN), "", None):
        with pytest.raises(CsrfRefused):
            check_csrf(one, TOKEN, wrong)


def test_a_form_from_another_origin_is_refused() -> None:
    check_origin(None, "127.0.0.1:8300")  # no Origin: not a browser's cross-site form
    check_origin("http://127.0.0.1:8300", "127.0.0.1:8300")
    for origin in ("http://evil.example", "null", "http://127.0.0.1:8000"):
        with pytest.raises(CsrfRefused):
            check_origin(origin, "127.0.0.1:8300")


def test_only_the_admin_token_signs_in() -> None:
    assert token_matches(TOKEN, TOKEN) and token_matches(f" {TOKEN}\n", TOKEN)
    assert not token_matches(TOKEN[:-1], TOKEN)
    assert not token_matches("", TOKEN) and not token_matches(TOKEN, None)
