"""A member's page (alerts by text or call, move to another street, remove) and importing members from CSV
with a preview, a per-row error report, and nothing imported while any row is bad."""

from __future__ import annotations

from flask import abort, flash, g, make_response, redirect, render_template, url_for
from sqlmodel import select

from hotline import phones, translations
from hotline.coordination import accounts
from hotline.db import utcnow
from hotline.models import AlertChannel, Coordinator, Member, MembershipStatus, NumberReveal, Street
from hotline.residents import csv_import, languages
from hotline.residents import members as member_book
from hotline.web.access import admin_required, db, login_required, visible_membership, visible_street
from hotline.web.blueprint import bp
from hotline.web.forms import (
    AlertsForm,
    CheckOnMeForm,
    ImportConfirmForm,
    ImportForm,
    LanguageForm,
    MoveForm,
    choices,
)


def _visible_member(member_id: int) -> Member:
    member = db().get(Member, member_id)
    if member is None or not member_book.member_visible(db(), member, g.scope):
        abort(404)
    return member


def _move_form() -> MoveForm:
    form = MoveForm()
    form.street.choices = choices((s.id, s.name) for s in accounts.visible_streets(db(), g.scope))
    return form


@bp.get("/members/<int:member_id>")
@login_required
def member(member_id: int):
    return _member_page(_visible_member(member_id))


def _member_page(found: Member, revealed: str | None = None):
    rows = [(m, s) for m, s in member_book.memberships(db(), found) if g.scope.allows(s.id)]
    alerts = AlertsForm(formdata=None, alerts=found.alerts)
    check = CheckOnMeForm(formdata=None, check_on_me=found.check_on_me)
    language = LanguageForm(formdata=None, language=translations.known(found.language))
    targets = accounts.visible_streets(db(), g.scope)
    return render_template("web/member.html", member=found, memberships=rows, alerts_form=alerts, check_form=check,
                           language_form=language, review=translations.review_status(translations.known(found.language)),
                           targets=targets, revealed=revealed)


@bp.post("/members/<int:member_id>/reveal")
@login_required
def reveal_number(member_id: int):
    """Show the whole number (to ring them, say), once, in this response only; recorded for the admins."""
    found = _visible_member(member_id)
    if not _on_my_streets_now(found):
        abort(404)  # a rejected, expired or departed request, or someone now on another street: not theirs to ring
    db().add(NumberReveal(coordinator_id=g.coordinator.id, member_id=found.id, at=utcnow()))
    db().commit()
    response = make_response(_member_page(found, revealed=phones.national(found.phone)))
    response.headers["Cache-Control"] = "no-store"  # the number must not stay in a cache
    return response


def _on_my_streets_now(found: Member) -> bool:
    if g.scope.everything:
        return True
    return any(g.scope.allows(street.id) for _, street in member_book.memberships(db(), found, MembershipStatus.ACTIVE, MembershipStatus.PENDING))


@bp.get("/reveals")
@admin_required
def reveals():
    """Who was shown which member's number, when: newest first."""
    rows = db().exec(
        select(NumberReveal, Coordinator.email, Member)
        .join(Coordinator, Coordinator.id == NumberReveal.coordinator_id, isouter=True)
        .join(Member, Member.id == NumberReveal.member_id, isouter=True)
        .order_by(NumberReveal.at.desc(), NumberReveal.id.desc()).limit(500)
    ).all()
    return render_template("web/reveals.html", rows=rows)


@bp.post("/members/<int:member_id>/alerts")
@login_required
def member_alerts(member_id: int):
    found = _visible_member(member_id)
    form = AlertsForm()
    if form.validate_on_submit():
        member_book.set_alerts(db(), found, AlertChannel(form.alerts.data))
        db().commit()
        flash("Alerts will come by " + ("phone call." if form.alerts.data == "call" else "text message."), "ok")
    return redirect(url_for("web.member", member_id=found.id))


@bp.post("/members/<int:member_id>/check-on-me")
@login_required
def member_check_on_me(member_id: int):
    """Flag (or unflag) a member whose silence after an urgent alert their coordinators want to hear about."""
    found = _visible_member(member_id)
    form = CheckOnMeForm()
    if form.validate_on_submit():
        found.check_on_me = form.check_on_me.data
        db().add(found)
        db().commit()
        flash("Check on me: on. Their coordinators are texted when they do not confirm an urgent alert." if found.check_on_me
              else "Check on me: off.", "ok")
    return redirect(url_for("web.member", member_id=found.id))


@bp.post("/members/<int:member_id>/language")
@login_required
def member_language(member_id: int):
    """What the hotline writes and says to them; their own words always pass as written."""
    found = _visible_member(member_id)
    form = LanguageForm()
    if form.validate_on_submit():
        languages.set_language(db(), found, form.language.data)
        db().commit()
        flash(f"Language: {translations.LANGUAGES[found.language].english}. Texts and calls to them are in it from now on.", "ok")
    else:
        flash("Choose one of the languages listed.", "error")
    return redirect(url_for("web.member", member_id=found.id))


@bp.post("/memberships/<int:membership_id>/move")
@login_required
def move_member(membership_id: int):
    membership = visible_membership(membership_id)
    form = _move_form()
    if not form.validate_on_submit():
        abort(400)
    target = visible_street(form.street.data)
    member_book.move(session=db(), membership=membership, to=target)
    db().commit()
    flash(f"Moved to {target.name}.", "ok")
    return redirect(url_for("web.member", member_id=membership.member_id))


@bp.post("/memberships/<int:membership_id>/remove")
@login_required
def remove_member(membership_id: int):
    membership = visible_membership(membership_id)
    street = db().get(Street, membership.street_id)
    member_book.remove(session=db(), membership=membership)
    db().commit()
    flash(f"Removed from {street.name}. Nothing more goes to them from this street.", "ok")
    return redirect(url_for("web.street", street_id=street.id))


def _check(text: str) -> csv_import.Checked:
    """csv_import.check, plus: a street coordinator imports only into their own streets."""
    checked = csv_import.check(db(), text)
    kept = []
    for row in checked.rows:
        if g.scope.allows(row.street.id):
            kept.append(row)
        else:
            checked.errors.append(f"line {row.line}: {row.street.name} is not one of your streets")
    checked.rows = kept
    checked.errors.sort(key=lambda e: int(e.split(":")[0].removeprefix("line ")) if e.startswith("line ") else 0)
    return checked


@bp.route("/import", methods=["GET", "POST"])
@login_required
def import_members():
    form = ImportForm()
    if form.validate_on_submit():
        raw = form.file.data.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            form.file.errors.append("The file is not UTF-8 text. Save it from the spreadsheet as 'CSV UTF-8'.")
        else:
            checked = _check(text)
            confirm = ImportConfirmForm(formdata=None, content=text)
            return render_template("web/import_preview.html", checked=checked, confirm=confirm)
    return render_template("web/import.html", form=form), 400 if form.errors else 200


@bp.post("/import/confirm")
@login_required
def import_confirm():
    form = ImportConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    checked = _check(form.content.data)  # checked again: streets or members may have changed meanwhile
    if checked.errors:
        flash("Nothing was imported: the file has errors.", "error")
        return render_template("web/import_preview.html", checked=checked, confirm=form), 400
    count = csv_import.apply(db(), checked)
    db().commit()
    flash(f"Imported {count} member{'s' if count != 1 else ''}. They are active at once.", "ok")
    return redirect(url_for("web.streets"))
