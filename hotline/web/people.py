"""Coordinators (admins only): who looks after which streets, their SMS phone, adding and removing them."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, url_for
from sqlmodel import select

from hotline.coordination import accounts
from hotline.models import Coordinator
from hotline.web.access import admin_required, db
from hotline.web.blueprint import bp
from hotline.web.forms import CoordinatorForm, choices


def _form(**kw) -> CoordinatorForm:
    form = CoordinatorForm(**kw)
    form.streets.choices = choices((s.id, s.name) for s in accounts.visible_streets(db(), g.scope))
    return form


@bp.get("/coordinators")
@admin_required
def people():
    listed = list(db().exec(select(Coordinator).order_by(Coordinator.email)))
    names = {p.id: accounts.street_names(db(), p) for p in listed}
    return render_template("web/coordinators.html", people=listed, names=names)


@bp.route("/coordinators/new", methods=["GET", "POST"])
@admin_required
def new_person():
    form = _form()
    if form.validate_on_submit():
        try:
            person = accounts.create(
                session=db(), email=form.email.data, password=form.password.data or "", is_admin=form.is_admin.data,
                phone=form.phone.data or None, street_ids=form.streets.data or [],
            )
            db().commit()
        except accounts.AccountError as exc:
            db().rollback()
            form.email.errors.append(str(exc).capitalize() + ".")
        else:
            flash(f"Added {person.email}. Give them their password in person.", "ok")
            return redirect(url_for("web.people"))
    return render_template("web/coordinator.html", form=form, person=None), 400 if form.errors else 200


@bp.route("/coordinators/<int:person_id>", methods=["GET", "POST"])
@admin_required
def edit_person(person_id: int):
    person = db().get(Coordinator, person_id)
    if person is None:
        abort(404)
    form = _form(obj=person)
    form.email.data = person.email  # the login name stays; add a new coordinator to change it
    if form.validate_on_submit():
        admin = form.is_admin.data or person.id == g.coordinator.id  # nobody locks themself out
        try:
            accounts.update(
                session=db(), coordinator=person, is_admin=admin, phone=form.phone.data or None,
                street_ids=form.streets.data or [], password=form.password.data or None,
            )
            db().commit()
        except accounts.AccountError as exc:
            db().rollback()
            form.phone.errors.append(str(exc).capitalize() + ".")
        else:
            flash(f"Saved {person.email}.", "ok")
            return redirect(url_for("web.people"))
    elif not form.is_submitted():
        form.streets.data = accounts.assigned_street_ids(db(), person)
    return render_template("web/coordinator.html", form=form, person=person), 400 if form.errors else 200


@bp.post("/coordinators/<int:person_id>/delete")
@admin_required
def delete_person(person_id: int):
    person = db().get(Coordinator, person_id)
    if person is None:
        abort(404)
    if person.id == g.coordinator.id:
        flash("You cannot remove yourself.", "error")
        return redirect(url_for("web.people"))
    db().delete(person)
    db().commit()
    flash(f"Removed {person.email}.", "ok")
    return redirect(url_for("web.people"))
