"""Logging in (email and password, throttled after repeated failures) and out; changing one's password."""

from __future__ import annotations

import logging
import secrets

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.security import check_password_hash

from hotline.coordination import accounts
from hotline.web.access import db, login_required, safe_next, stamp
from hotline.web.blueprint import bp
from hotline.web.forms import LoginForm, PasswordForm

log = logging.getLogger(__name__)


DEVICE_COOKIE = "hotline_device"
DEVICE_DAYS = 180


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="hotline-login-device")


def _device_for(email: str) -> str | None:
    """The device id in this browser's signed cookie, if it was issued to this email at a login."""
    try:
        found = _devices().loads(request.cookies.get(DEVICE_COOKIE, ""), max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return None
    same = isinstance(found, dict) and found.get("e") == (email or "").strip().lower()
    return str(found.get("d"))[:40] if same else None


def _remember_device(response, email: str, device: str | None):
    token = _devices().dumps({"e": email.strip().lower(), "d": device or secrets.token_urlsafe(16)})
    response.set_cookie(DEVICE_COOKIE, token, max_age=DEVICE_DAYS * 86400, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"], path="/login")
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        device = _device_for(form.email.data)
        try:
            person = accounts.authenticate(
                session=db(), email=form.email.data, password=form.password.data, address=request.remote_addr or "",
                device=device,
            )
            db().commit()
        except accounts.Throttled as exc:
            db().rollback()
            log.warning("login throttled for %s", request.remote_addr)
            flash(f"Too many failed attempts. Try again in {exc.minutes} minute{'s' if exc.minutes != 1 else ''}.", "error")
            return render_template("web/login.html", form=form), 429
        if person is not None:
            session.clear()  # a fresh session: nothing from before the login carries over
            session["coordinator_id"], session["stamp"] = person.id, stamp(person)
            return _remember_device(redirect(safe_next(request.args.get("next"))), person.email, device)
        flash("That email and password do not match.", "error")
        status = 401
    return render_template("web/login.html", form=form), status


@bp.post("/logout")
def logout():
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("web.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """A coordinator changes their own password (other sessions of theirs are logged out)."""
    form = PasswordForm()
    if form.validate_on_submit():
        if not check_password_hash(g.coordinator.password_hash, form.current.data):
            form.current.errors.append("That is not your password now.")
        else:
            accounts.update(
                session=db(), coordinator=g.coordinator, is_admin=g.coordinator.is_admin, phone=g.coordinator.phone,
                street_ids=accounts.assigned_street_ids(db(), g.coordinator), password=form.new.data,
            )
            db().commit()
            session["stamp"] = stamp(g.coordinator)  # this session stays logged in
            flash("Your password is changed.", "ok")
            return redirect(url_for("web.log"))
    return render_template("web/account.html", form=form), 400 if form.errors else 200
