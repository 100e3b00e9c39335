"""Streets: the list, creating one (admins), editing one, and its members with a form to add another."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from sqlalchemy import case, func
from sqlmodel import select

from hotline import phones
from hotline.coordination import accounts
from hotline.models import AlertChannel, Member, Membership, MembershipStatus, Street
from hotline.residents import members
from hotline.residents import streets as street_book
from hotline.web.access import admin_required, db, login_required, visible_street
from hotline.web.blueprint import bp
from hotline.web.forms import MemberForm, StreetForm


def _counts(street_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """Per street: (active members, pending requests, active members who opted out of everything)."""
    if not street_ids:
        return {}
    active = Membership.status == MembershipStatus.ACTIVE.value
    rows = db().exec(
        select(
            Membership.street_id,
            func.sum(case((active, 1), else_=0)),
            func.sum(case((Membership.status == MembershipStatus.PENDING.value, 1), else_=0)),
            func.sum(case((active & Member.opted_out_at.is_not(None), 1), else_=0)),
        )
        .join(Member, Member.id == Membership.member_id)
        .where(Membership.street_id.in_(street_ids))
        .group_by(Membership.street_id)
    )
    return {sid: (a or 0, p or 0, o or 0) for sid, a, p, o in rows}


@bp.get("/streets")
@login_required
def streets():
    listed = accounts.visible_streets(db(), g.scope)
    return render_template("web/streets.html", streets=listed, counts=_counts([s.id for s in listed]))


def _fields(form: StreetForm) -> street_book.StreetFields:
    return street_book.StreetFields(
        name=form.name.data, code=form.code.data, aliases=street_book.split_list(form.aliases.data),
        postcodes=street_book.split_list(form.postcodes.data), open=form.open.data, moderated=form.moderated.data,
    )


@bp.route("/streets/new", methods=["GET", "POST"])
@admin_required
def new_street():
    form = StreetForm()
    if form.validate_on_submit():
        try:
            street = street_book.save_street(session=db(), street=None, fields=_fields(form))
            db().commit()
        except street_book.StreetError as exc:
            db().rollback()
            form.name.errors.append(str(exc))
        else:
            flash(f"Added {street.name} (code {street.code}).", "ok")
            return redirect(url_for("web.street", street_id=street.id))
    return render_template("web/street_new.html", form=form), 400 if form.errors else 200


def _street_page(street: Street, form: StreetForm, member_form: MemberForm, status: int = 200):
    listed = members.street_members(db(), street)
    counts = _counts([street.id]).get(street.id, (0, 0, 0))
    return render_template("web/street.html", street=street, form=form, member_form=member_form, members=listed, counts=counts), status


@bp.get("/streets/<int:street_id>")
@login_required
def street(street_id: int):
    found = visible_street(street_id)
    form = StreetForm(obj=found, formdata=None)
    form.aliases.data, form.postcodes.data = "\n".join(found.aliases or []), "\n".join(found.postcodes or [])
    return _street_page(found, form, MemberForm(formdata=None))


@bp.post("/streets/<int:street_id>")
@login_required
def edit_street(street_id: int):
    found = visible_street(street_id)
    form = StreetForm()
    if form.validate_on_submit():
        try:
            street_book.save_street(session=db(), street=found, fields=_fields(form))
            db().commit()
        except street_book.StreetError as exc:
            db().rollback()
            form.name.errors.append(str(exc))
        else:
            flash(f"Saved {found.name}.", "ok")
            return redirect(url_for("web.street", street_id=found.id))
    db().refresh(found)
    return _street_page(found, form, MemberForm(formdata=None), 400)


@bp.post("/streets/<int:street_id>/members")
@login_required
def add_member(street_id: int):
    found = visible_street(street_id)
    member_form = MemberForm()
    if not member_form.validate_on_submit():
        form = StreetForm(obj=found, formdata=None)
        return _street_page(found, form, member_form, 400)
    membership = members.add_member(
        session=db(), phone=member_form.phone.data, street=found, alerts=AlertChannel(member_form.alerts.data), name=member_form.name.data
    )
    member = db().get(Member, membership.member_id)
    db().commit()
    note = " They have opted out of all messages, so they get nothing until they text START." if member.opted_out else ""
    flash(f"Added {phones.mask(member.phone)} to {found.name}.{note}", "ok")
    return redirect(url_for("web.street", street_id=found.id))

