"""Members from a CSV file (`phone,street[,alerts][,check_on_me][,language]`): every row checked first, then all
or nothing. `language` is an ISO 639-1 code of hotline/translations (en, ur, pa, bn, gu, ta, pl, ro)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import text as sql_text
from sqlmodel import Session

from hotline import phones, translations
from hotline.models import AlertChannel, Member, Street
from hotline.residents import members, streets


@dataclass
class Row:
    line: int
    phone: str
    street: Street
    alerts: AlertChannel
    check_on_me: bool | None = None  # None: the column is absent or empty, leave the member as they are
    language: str | None = None  # None: absent or empty, leave the member as they are (English if new)


@dataclass
class Checked:
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "line 4: not a valid phone number: '0123'"


def check(session: Session, text: str) -> Checked:
    result = Checked()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "phone" not in header or "street" not in header:
        result.errors.append("line 1: the header must name the columns phone and street (and optionally alerts)")
        return result
    reader.fieldnames = header
    for line, raw in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in raw.items() if k}
        if not any(row.values()):
            continue
        problems = []
        try:
            phone = phones.parse(row.get("phone", ""))
        except phones.InvalidPhone:
            phone, problems = None, [f"not a valid phone number: {row.get('phone', '')!r}"]
        try:
            street = streets.find(session, row.get("street", ""))
        except (streets.StreetNotFound, streets.AmbiguousStreet):
            street = None
            problems.append(f"unknown street: {row.get('street', '')!r}")
        alerts = (row.get("alerts") or "sms").lower()
        if alerts not in ("sms", "call"):
            problems.append(f"alerts must be sms or call, not {alerts!r}")
        check_on_me = _yes_no(row.get("check_on_me", ""))
        if check_on_me == "bad":
            problems.append(f"check_on_me must be yes or no, not {row.get('check_on_me')!r}")
        language = row.get("language", "").lower() or None
        if language is not None and language not in translations.LANGUAGES:
            problems.append(f"language must be one of {', '.join(translations.CODES)}, not {row.get('language')!r}")
        if problems:
            result.errors.append(f"line {line}: " + "; ".join(problems))
        else:
            result.rows.append(Row(line, phone, street, AlertChannel(alerts), check_on_me, language))
    if not result.rows and not result.errors:
        result.errors.append("the file has no members in it")
    return result


def _yes_no(value: str) -> bool | None | str:
    value = value.strip().lower()
    if not value:
        return None
    if value in ("yes", "y", "true", "1"):
        return True
    if value in ("no", "n", "false", "0"):
        return False
    return "bad"


def apply(session: Session, checked: Checked) -> int:
    """Imported members are active at once."""
    if checked.errors:
        raise ValueError("refusing to import a file with errors")
    for row in checked.rows:
        membership = members.add(session, row.phone, row.street, alerts=row.alerts, active=True)
        member = session.get(Member, membership.member_id)
        if row.check_on_me is not None:
            member.check_on_me = row.check_on_me
        if row.language is not None:
            member.language = row.language
        session.add(member)
    _refresh_statistics(session)
    return len(checked.rows)


def _refresh_statistics(session: Session) -> None:
    """PostgreSQL plans each query from statistics that autovacuum refreshes within a minute or so; a report sent
    straight after a big import was planned for tables of a few rows: the recipients of a 500-member street
    counted by a nested loop over every member, 43 ms instead of 0.9 ms (EXPLAIN ANALYZE, a fresh database).
    ANALYZE inside the import's transaction sees its rows, and blocks no reader or writer."""
    if session.get_bind().dialect.name == "postgresql":
        session.flush()
        session.execute(sql_text("ANALYZE member, membership"))
