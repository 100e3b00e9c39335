"""Who is asking and what they may see: the login check, the admin check, the request's database
session, security headers, and the filters every page uses (local time, masked numbers, safe links)."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError
from sqlmodel import Session

from hotline import phones, runtime
from hotline.coordination import accounts
from hotline.db import utcnow
from hotline.delivery import calls
from hotline.models import Coordinator, Membership, Street
from hotline.web.blueprint import bp

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' https:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def db() -> Session:
    """The request's session; the view commits what it changed, teardown closes it."""
    if "db" not in g:
        g.db = Session(runtime.current().engine, expire_on_commit=False)
    return g.db


@bp.teardown_app_request
def _close_db(_exc):
    session_ = g.pop("db", None)
    if session_ is not None:
        session_.close()


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        person = db().get(Coordinator, session.get("coordinator_id")) if session.get("coordinator_id") else None
        if person is None or session.get("stamp") != stamp(person):
            session.pop("coordinator_id", None)  # keep the CSRF secret: the login form needs it
            session.pop("stamp", None)
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        g.coordinator = person
        g.scope = accounts.scope_of(db(), person)
        return view(*args, **kwargs)

    return wrapped


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not g.coordinator.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def stamp(person: Coordinator) -> str:
    """Part of the password hash kept in the session: a changed password logs out other sessions."""
    return person.password_hash[-16:]


def visible_street(street_id: int) -> Street:
    """The street, if this coordinator looks after it; otherwise 404 (not 403: we do not say it exists)."""
    street = db().get(Street, street_id)
    if street is None or not g.scope.allows(street.id):
        abort(404)
    return street


def visible_membership(membership_id: int) -> Membership:
    """The membership, if it is on one of this coordinator's streets; otherwise 404."""
    membership = db().get(Membership, membership_id)
    if membership is None or not g.scope.allows(membership.street_id):
        abort(404)
    return membership


def safe_next(target: str | None) -> str:
    """Only a path on this site: never `//evil.example` or `https://…` after logging in."""
    if not target:
        return url_for("web.log")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("web.log")
    return target


@bp.after_app_request
def _security_headers(response):
    if request.blueprint == "web" or request.endpoint == "static":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.blueprint == "web":
            response.headers.setdefault("Cache-Control", "no-store")  # pages hold residents' reports
    return response


@bp.app_errorhandler(CSRFError)
def _csrf_error(error):
    return render_template("web/error.html", code=400, message="This form had expired or was sent from another site. Go back, reload the page and try again."), 400


@bp.errorhandler(403)
def _forbidden(_error):
    return render_template("web/error.html", code=403, message="That page is for admins only."), 403


@bp.errorhandler(404)
def _not_found(_error):
    return render_template("web/error.html", code=404, message="There is nothing here, or it is not on your streets."), 404


@bp.app_template_filter("local")
def local_time(moment, fmt: str = "%d %b %Y %H:%M") -> str:
    if moment is None:
        return ""
    return moment.astimezone(runtime.current().config.timezone).strftime(fmt)


@bp.app_template_filter("mask")
def mask(phone: str | None) -> str:
    return phones.mask(phone)


@bp.app_template_filter("mask_numbers")
def mask_numbers(text: str | None) -> str:
    """Numbers inside text others wrote (error messages stored before they were masked on the way in)."""
    return phones.mask_all(text) or ""


@bp.app_template_filter("safe_url")
def safe_url(url: str | None) -> str | None:
    """Links to recordings: http(s) only, so a stored `javascript:` URL never becomes a link."""
    return url if url and urlsplit(url).scheme in ("http", "https") else None


@bp.app_context_processor
def _page_globals():
    config = runtime.current().config
    return {
        "me": g.get("coordinator"),
        "scheme_name": config.scheme_name,
        "tz_name": config.timezone.key,
        "now_local": lambda: utcnow().astimezone(config.timezone).strftime("%H:%M:%S"),
        "caller_trouble": _caller_trouble,
    }


def _caller_trouble() -> int:
    """Only asked for by logged-in pages (base.html): alert calls refused lately for the number they ring from."""
    return calls.caller_trouble(db(), utcnow()) if g.get("coordinator") else 0
