"""Logging in (email and password, throttled after repeated failures) and out."""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, request, session, url_for

from hotline import coordinators
from hotline.web import bp
from hotline.web.access import db, safe_next, stamp
from hotline.web.forms import LoginForm

log = logging.getLogger(__name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            person = coordinators.authenticate(
                session=db(), email=form.email.data, password=form.password.data, address=request.remote_addr or ""
            )
            db().commit()
        except coordinators.Throttled as exc:
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
