"""Logging in and out: hashed passwords, throttling, CSRF on every form, safe cookies and headers."""

from __future__ import annotations

import pytest
from sqlmodel import select

from hotline.coordination import accounts
from hotline.models import Coordinator, LoginFailure
from tests.conftest import build_app
from tests.web.conftest import PASSWORD, Web


def test_login_with_the_right_password_opens_the_log(web, scheme):
    response = web.login("admin@example.org")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = web.get("/")
    assert page.status_code == 200
    assert "admin@example.org" in page.get_data(as_text=True)


def test_email_is_not_case_sensitive(web, scheme):
    assert web.login("  Admin@Example.ORG ").status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_answer(web, scheme):
    wrong = web.login("admin@example.org", "not the password")
    unknown = web.login("nobody@example.org", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True) and "do not match" in unknown.get_data(as_text=True)
    assert web.get("/").status_code == 302


def test_passwords_are_stored_hashed(session, scheme):
    person = accounts.create(session=session, email="new@example.org", password="a long password", is_admin=False, phone=None, street_ids=[])
    assert "a long password" not in person.password_hash
    assert person.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_login_is_throttled_after_repeated_failures(web, session, scheme):
    for _ in range(accounts.MAX_FAILURES_PER_EMAIL):
        assert web.login("admin@example.org", "guess").status_code == 401
    throttled = web.login("admin@example.org")  # even the right password waits now
    assert throttled.status_code == 429
    assert "Try again in" in throttled.get_data(as_text=True)
    assert web.get("/").status_code == 302
    # Another account is not locked by guesses at this one.
    assert Web(web.client.application).login("clay@example.org").status_code == 302


def test_throttle_ends_after_the_window_and_success_clears_failures(session, scheme):
    from datetime import timedelta

    from hotline.db import utcnow

    earlier = utcnow() - accounts.FAILURE_WINDOW - timedelta(minutes=1)
    for _ in range(accounts.MAX_FAILURES_PER_EMAIL):
        assert accounts.authenticate(session=session, email="admin@example.org", password="guess", now=earlier) is None
    session.commit()
    assert accounts.authenticate(session=session, email="admin@example.org", password=PASSWORD) is not None
    session.commit()
    assert session.exec(select(LoginFailure).where(LoginFailure.email == "admin@example.org")).all() == []


def test_one_address_guessing_many_accounts_is_throttled(session, scheme):
    assert accounts.authenticate(session=session, email="guess@example.org", password="x", address="203.0.113.9") is None
    for n in range(accounts.MAX_FAILURES_PER_ADDRESS - 1):  # the rest of the guesses, without spending a hash on each
        session.add(LoginFailure(email=f"guess{n}@example.org", address="203.0.113.9"))
    session.commit()
    with pytest.raises(accounts.Throttled):
        accounts.authenticate(session=session, email="admin@example.org", password=PASSWORD, address="203.0.113.9")
    assert accounts.authenticate(session=session, email="admin@example.org", password=PASSWORD, address="198.51.100.1") is not None


def test_forms_without_a_csrf_token_are_refused(web, scheme, session):
    assert web.post("/login", {"email": "admin@example.org", "password": PASSWORD}, csrf=False).status_code == 400
    assert web.login("admin@example.org").status_code == 302
    refused = web.post("/streets/new", {"name": "Forged Road"}, csrf=False)
    assert refused.status_code == 400
    assert "expired" in refused.get_data(as_text=True)
    assert web.post("/streets/new", {"name": "Forged Road", "csrf_token": "not-the-token"}).status_code == 400
    assert "Forged Road" not in web.get("/streets").get_data(as_text=True)


def test_logout_needs_a_post_and_ends_the_session(admin):
    assert admin.get("/logout").status_code == 405
    assert admin.logout().status_code == 302
    assert admin.get("/").status_code == 302


def test_login_returns_to_the_page_asked_for_but_never_offsite(web, scheme):
    assert web.login("admin@example.org", query="?next=/approvals").headers["Location"] == "/approvals"
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        other = Web(web.client.application)
        assert other.login("admin@example.org", query=f"?next={evil}").headers["Location"] == "/"


def test_a_changed_password_logs_out_other_sessions(admin, session, scheme):
    person = session.exec(select(Coordinator).where(Coordinator.email == "admin@example.org")).one()
    accounts.update(session=session, coordinator=person, is_admin=True, phone=None, street_ids=[], password="a brand new password")
    session.commit()
    assert admin.get("/").status_code == 302


def test_session_cookie_is_httponly_lax_and_secure_over_https(tmp_path, scheme, web):
    response = web.login("admin@example.org")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    (tmp_path / "https").mkdir()
    secure_app = build_app(tmp_path / "https", twilio=False, environ={"HOTLINE_PUBLIC_URL": "https://hotline.example.org"})
    assert secure_app.config["SESSION_COOKIE_SECURE"] is True
    secure_app.extensions["hotline"].engine.dispose()


def test_pages_send_security_headers(web, scheme):
    for path in ("/login", "/static/web.js"):
        headers = web.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"


def test_no_page_has_inline_script(admin, scheme):
    for path in ("/", "/approvals", "/streets", "/announce", "/overview", "/coordinators", "/login"):
        page = admin.get(path).get_data(as_text=True)
        assert "<script>" not in page and "onclick" not in page.lower()
        assert '<script src="/static/web.js" defer></script>' in page


def test_coordinator_changes_their_own_password(clay, sim_app, scheme):
    wrong = clay.post("/account", {"current": "not it", "new": "a new long password", "again": "a new long password"})
    assert wrong.status_code == 400 and "not your password" in wrong.get_data(as_text=True)
    differ = clay.post("/account", {"current": PASSWORD, "new": "a new long password", "again": "another one"})
    assert differ.status_code == 400 and "differ" in differ.get_data(as_text=True)
    assert clay.post("/account", {"current": PASSWORD, "new": "a new long password", "again": "a new long password"}).status_code == 302
    assert clay.get("/").status_code == 200  # this session carries on
    assert Web(sim_app).login("clay@example.org").status_code == 401
    assert Web(sim_app).login("clay@example.org", "a new long password").status_code == 302


# --- one attacker behind the same proxy ------------------------------------------------------------


def test_an_attacker_at_the_same_address_cannot_lock_out_a_coordinator_who_logged_in_here_before(sim_app, session, scheme):
    """Behind a proxy with HOTLINE_PROXY_HOPS unset every client is 127.0.0.1 to us. The attacker's guesses
    throttle the address and the account for every new browser, but not the coordinator's own browser,
    which carries the device cookie from an earlier login."""
    owner = Web(sim_app)
    assert owner.login("admin@example.org").status_code == 302
    owner.logout()
    attacker = Web(sim_app)
    for n in range(accounts.MAX_FAILURES_PER_ADDRESS):
        attacker.login(f"guess{n}@example.org", "guess")
    for _ in range(accounts.MAX_FAILURES_PER_EMAIL):
        attacker.login("admin@example.org", "guess")
    assert attacker.login("admin@example.org").status_code == 429  # even the right password, from a new browser
    assert Web(sim_app).login("clay@example.org").status_code == 429  # the address is throttled for new browsers

    assert owner.login("admin@example.org").status_code == 302
    assert owner.get("/").status_code == 200


def test_a_known_browser_is_still_throttled_on_its_own_failures(sim_app, session, scheme):
    owner = Web(sim_app)
    assert owner.login("clay@example.org").status_code == 302
    owner.logout()
    for _ in range(accounts.MAX_FAILURES_PER_EMAIL):
        assert owner.login("clay@example.org", "guess").status_code == 401
    assert owner.login("clay@example.org").status_code == 429


def test_a_device_cookie_for_another_account_or_forged_counts_for_nothing(sim_app, session, scheme):
    owner = Web(sim_app)
    assert owner.login("clay@example.org").status_code == 302
    owner.logout()
    for _ in range(accounts.MAX_FAILURES_PER_EMAIL):
        Web(sim_app).login("admin@example.org", "guess")
    assert owner.login("admin@example.org").status_code == 429  # clay's cookie is not admin's
    forged = Web(sim_app)
    forged.client.set_cookie("hotline_device", "eyJlIjoiYWRtaW5AZXhhbXBsZS5vcmcifQ.forged", path="/login")
    assert forged.login("admin@example.org").status_code == 429


def test_https_without_proxy_hops_is_warned_about_at_start(tmp_path, caplog):
    from tests.conftest import build_app

    with caplog.at_level("WARNING", logger="hotline"):
        app = build_app(tmp_path, twilio=True)
    assert any("HOTLINE_PROXY_HOPS is 0" in r.getMessage() for r in caplog.records)
    app.extensions["hotline"].engine.dispose()
    caplog.clear()
    with caplog.at_level("WARNING", logger="hotline"):
        app = build_app(tmp_path / "hops", twilio=True, environ={"HOTLINE_PROXY_HOPS": "1"})
    assert not any("HOTLINE_PROXY_HOPS" in r.getMessage() for r in caplog.records)
    app.extensions["hotline"].engine.dispose()
