"""Logging in (email and password, throttled after repeated failures) and out; changing one's password."""

from __future__ import annotations

import logging

from flask import flash, g, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash

from hotline.coordination import accounts
from hotline.web.access import db, login_required, safe_next, stamp
from hotline.web.blueprint import bp
from hotline.web.forms import LoginForm, PasswordForm

log = logging.getLogger(__name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            person = accounts.authenticate(
                session=db(), email=form.email.data, password=form.password.data, address=request.remote_addr or ""
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
            return redirect(safe_next(request.args.get("next")))
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
