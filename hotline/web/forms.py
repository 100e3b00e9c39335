"""The coordinators' forms (Flask-WTF: each carries a CSRF token and checks what was typed)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from hotline import phones, translations

try:  # WTForms 3.3 wants SelectChoice objects and will refuse (value, label) tuples in 3.4
    from wtforms.fields.choices import SelectChoice
except ImportError:  # older WTForms: tuples it is
    SelectChoice = None


def choices(pairs) -> list:
    """(value, label) pairs as the installed WTForms wants them."""
    return [SelectChoice(value, label) for value, label in pairs] if SelectChoice else list(pairs)


def chosen_values(field) -> set:
    """The values a select field offers, whatever shape its choices have."""
    return {next(iter(choice)) for choice in field.choices or []}


ALERTS = choices([("sms", "Text message"), ("call", "Phone call")])


class MultiCheckbox(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def valid_phone(_form, field):
    if field.data:
        try:
            field.data = phones.parse(field.data)
        except phones.InvalidPhone as exc:
            raise ValidationError("That is not a valid UK or international phone number.") from exc


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class StreetForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    code = IntegerField("Street code (what callers key in)", validators=[Optional(), NumberRange(1, 99999)])
    aliases = TextAreaField("Other names (one per line or comma-separated)", validators=[Length(max=2000)])
    postcodes = TextAreaField("Postcodes", validators=[Length(max=2000)])
    open = BooleanField("Open: people who text JOIN are members at once, without approval")
    moderated = BooleanField("Moderated: reports wait for a coordinator before they go out")


class MemberForm(FlaskForm):
    phone = StringField("Phone number", validators=[DataRequired(), Length(max=40), valid_phone])
    name = StringField("Name (optional, only coordinators see it)", validators=[Optional(), Length(max=120)])
    alerts = SelectField("Alerts by", choices=ALERTS, default="sms")


class AlertsForm(FlaskForm):
    alerts = SelectField("Alerts by", choices=ALERTS)


class CheckOnMeForm(FlaskForm):
    check_on_me = BooleanField("Check on me: tell their coordinators when they do not confirm an urgent alert")


class LanguageForm(FlaskForm):
    language = SelectField(
        "Language",
        choices=[(lang.code, f"{lang.english} ({lang.native})" if lang.native != lang.english else lang.english)
                 for lang in translations.LANGUAGES.values()],
        validators=[DataRequired()],
    )


class MoveForm(FlaskForm):
    street = SelectField("Move to", coerce=int)


class ImportForm(FlaskForm):
    file = FileField("CSV file with the columns phone, street and (optionally) alerts", validators=[FileRequired()])


class ImportConfirmForm(FlaskForm):
    content = TextAreaField(validators=[DataRequired(), Length(max=60000)])


class AnnounceForm(FlaskForm):
    text = TextAreaField("Message", validators=[DataRequired(), Length(max=1000)])
    everywhere = BooleanField("All my streets")
    streets = MultiCheckbox("Or only these streets", coerce=int, validate_choice=False)
    when = RadioField("When", choices=choices([("now", "Now"), ("later", "At a set time")]), default="now")
    at = DateTimeLocalField("Date and time", format="%Y-%m-%dT%H:%M", validators=[Optional()])

    def validate_streets(self, field):
        if not self.everywhere.data and not field.data:
            raise ValidationError("Choose at least one street.")
        allowed = chosen_values(field)
        if any(value not in allowed for value in field.data or []):
            raise ValidationError("Choose from your own streets.")

    def validate_at(self, field):
        if self.when.data == "later" and field.data is None:
            raise ValidationError("Give the date and time to send it.")


class HeldForm(FlaskForm):
    text = TextAreaField("Text to send (for a recording, type what it says)", validators=[Optional(), Length(max=4000)])


class CoordinatorForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password (at least 8 characters; leave empty to keep it)", validators=[Optional(), Length(max=200)])
    is_admin = BooleanField("Admin: sees every street and manages coordinators")
    phone = StringField("Phone for SMS commands (optional)", validators=[Optional(), Length(max=40), valid_phone])
    streets = MultiCheckbox("Streets", coerce=int)


class PasswordForm(FlaskForm):
    current = PasswordField("Your password now", validators=[DataRequired(), Length(max=200)])
    new = PasswordField("New password (at least 8 characters)", validators=[DataRequired(), Length(min=8, max=200)])
    again = PasswordField("New password again", validators=[DataRequired(), EqualTo("new", message="The two new passwords differ.")])


OUTCOME_CHOICES = [
    ("police_informed", "Police informed"), ("resolved", "Resolved"), ("false_alarm", "False alarm"),
    ("no_further_action", "No further action"),
]


class AllClearForm(FlaskForm):
    words = TextAreaField("All-clear message (optional: what happened)", validators=[Optional(), Length(max=300)])


class OutcomeForm(FlaskForm):
    outcome = SelectField("Outcome", choices=choices(OUTCOME_CHOICES), validators=[DataRequired()])
    note = TextAreaField("Note for the reporter (e.g. a crime reference)", validators=[Optional(), Length(max=300)])


class WatchForm(FlaskForm):
    plate = StringField("Number plate", validators=[DataRequired(), Length(max=20)])
    note = StringField("Note (what to look out for; every coordinator sees it)", validators=[Optional(), Length(max=200)])
