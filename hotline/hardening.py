"""What every request gets, whichever blueprint (or none) answers it: security headers (no MIME
sniffing, no framing, a CSP without inline script on HTML pages), and ids in URLs and queries bounded
to what a database integer holds, so /reports/99999999999999999999 is a 404, not a database error."""

from __future__ import annotations

from flask import Flask, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.routing import IntegerConverter

# Only for pages no blueprint gave a policy of its own (Flask's 404 and 405 pages, say): the web
# pages and /simulator set theirs (they play recordings, draw charts); none allows inline script.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MAX_ID = 2**31 - 1  # PostgreSQL's integer; SQLite refuses beyond 2**63


class RowId(IntegerConverter):
    """<int:…> in every route: a number a row id can be, or no match (404)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def row_id(text: str) -> int:
    """For request.args.get(…, type=row_id): a number beyond any row id is no number (the default)."""
    value = int(text)
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"not a row id: {text!r}")
    return value


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, but a request that brings no session cookie (every Twilio webhook: two
    status callbacks a message, 200 a second in `hotline serve` at 100/s) gets its empty session without the
    serializer Flask builds first for every request (~20 µs): the same session either way."""

    def open_session(self, app, request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def install(app: Flask) -> None:
    """Call before registering blueprints: their routes take this `int`, and after-request hooks run in
    reverse order, so the headers hook runs last and only fills in what the blueprints' hooks left unset."""
    app.url_map.converters["int"] = RowId
    app.session_interface = CookieSessions()
    app.after_request(_headers)


def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    return response
