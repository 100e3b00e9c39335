"""A member's language set by a coordinator (their page), by an operator (`hotline member add --language`)
and by a CSV's `language` column; the simulator's pretend phones show it, and the demo seeds one."""

from __future__ import annotations

from click.testing import CliRunner
from sqlmodel import Session, select

from hotline import cli
from hotline.models import Member
from hotline.simulator import demo, phonebook
from tests.conftest import NUMBERS
from tests.web.test_streets import upload


def member(session, phone: str) -> Member:
    session.expire_all()
    return session.exec(select(Member).where(Member.phone == phone)).one()


def test_coordinator_sets_a_members_language_on_their_page_and_the_page_says_it_is_a_draft(admin, session, scheme):
    found = member(session, NUMBERS[0])
    page = admin.get(f"/members/{found.id}").get_data(as_text=True)
    assert "ਪੰਜਾਬੀ" in page and "Română" in page  # every choice, named in its own script too
    response = admin.post(f"/members/{found.id}/language", {"language": "pa"})
    assert response.status_code == 302
    assert member(session, NUMBERS[0]).language == "pa"
    assert "unreviewed draft" in admin.get(f"/members/{found.id}").get_data(as_text=True)


def test_a_language_that_is_not_offered_changes_nothing(admin, session, scheme):
    found = member(session, NUMBERS[0])
    admin.post(f"/members/{found.id}/language", {"language": "xx"})
    assert member(session, NUMBERS[0]).language == "en"


def test_street_coordinator_cannot_set_the_language_of_another_streets_member(clay, session, scheme):
    other = member(session, NUMBERS[10])  # Beehive Lane
    assert clay.post(f"/members/{other.id}/language", {"language": "ur"}).status_code == 404
    assert member(session, NUMBERS[10]).language == "en"


def test_csv_language_column_sets_it_and_a_wrong_code_is_refused_with_the_choices(admin, session, scheme):
    bad = "phone,street,language\n07911 100800,Clayhall Avenue,urdu\n"
    html = upload(admin, bad).get_data(as_text=True)
    assert "line 2: language must be one of en, ur, pa, bn, gu, ta, pl, ro" in html
    good = "phone,street,language\n07911 100800,Clayhall Avenue,UR\n07911 100801,Clayhall Avenue,\n"
    assert admin.post("/import/confirm", {"content": good}).status_code == 302
    assert member(session, "+447911100800").language == "ur"
    assert member(session, "+447911100801").language == "en"  # empty: English, as for a new member


def test_member_add_takes_a_language_and_refuses_one_we_do_not_have(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner(env={"HOTLINE_DATABASE_URL": url, "HOTLINE_SECRET_KEY": "x"})
    assert runner.invoke(cli.main, ["street", "add", "Clayhall Avenue", "--code", "101"]).exit_code == 0
    added = runner.invoke(cli.main, ["member", "add", "07911 123456", "--street", "Clayhall", "--active", "--language", "bn"])
    assert added.exit_code == 0 and "Bengali" in added.output, added.output
    refused = runner.invoke(cli.main, ["member", "add", "07911 123457", "--street", "Clayhall", "--language", "fr"])
    assert refused.exit_code != 0 and "'fr' is not one of" in refused.output
    from sqlalchemy import create_engine

    with Session(create_engine(url)) as session:
        languages = dict(session.exec(select(Member.phone, Member.language)).all())
    assert languages == {"+447911123456": "bn"}


def test_demo_seeds_a_member_in_another_language_and_her_pretend_phone_shows_it(sim_app):
    engine = sim_app.extensions["hotline"].engine
    with Session(engine) as session:
        demo.seed(session)
        session.commit()
    with Session(engine) as session:
        spoken = dict(session.exec(select(Member.phone, Member.language)).all())
        shown = {p["number"]: p["language"] for p in phonebook.snapshot(session, timezone=sim_app.extensions["hotline"].config.timezone)["phones"]}
    others = {phone: code for phone, code in spoken.items() if code != "en"}
    assert others, "the demo has no member in another language"
    for phone, code in others.items():
        assert shown[phone]["code"] == code and shown[phone]["name"] != "English"
    assert all(shown[phone]["code"] == "en" for phone in spoken if phone not in others)
