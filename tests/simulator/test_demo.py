"""`hotline demo` and `hotline serve --demo`: a small scheme for the simulator, seeded only when asked."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlmodel import Session, func, select
from werkzeug.security import check_password_hash

from hotline import cli, phones
from hotline.models import AlertChannel, Coordinator, Member, Membership, MembershipStatus, SimulatedPhone, Street
from hotline.simulator import demo
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN


def count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_demo_seeds_three_streets_with_mobiles_a_landline_and_an_admin(sim_app):
    engine = sim_app.extensions["hotline"].engine
    with Session(engine) as session:
        login = demo.seed(session)
        session.commit()
    with Session(engine) as session:
        streets = session.exec(select(Street).order_by(Street.code)).all()
        assert [(s.name, s.code) for s in streets] == [("Clayhall Avenue", 101), ("Beehive Lane", 102), ("Redbridge Lane East", 103)]
        for street in streets:
            active = session.exec(select(Membership).where(Membership.street_id == street.id, Membership.status == MembershipStatus.ACTIVE)).all()
            assert len(active) >= 2
        landlines = session.exec(select(Member).where(Member.alerts == AlertChannel.CALL)).all()
        assert landlines and all(not phones.is_mobile(m.phone) for m in landlines)
        mobiles = session.exec(select(Member).where(Member.alerts == AlertChannel.SMS)).all()
        assert mobiles and all(phones.is_mobile(m.phone) for m in mobiles)  # drama mobiles: told outcomes by text
        assert count(session, SimulatedPhone) == count(session, Member) == len(demo.MEMBERS)
        admin = session.exec(select(Coordinator)).one()
        assert admin.email == login.email and admin.is_admin
        assert check_password_hash(admin.password_hash, login.password) and len(login.password) >= 8


def test_seeding_twice_adds_nothing_and_gives_a_fresh_password(sim_app):
    engine = sim_app.extensions["hotline"].engine
    with Session(engine) as session:
        first = demo.seed(session)
        session.commit()
    with Session(engine) as session:
        second = demo.seed(session)
        session.commit()
    with Session(engine) as session:
        assert (count(session, Street), count(session, Member), count(session, Membership), count(session, Coordinator)) == (3, 9, 9, 1)
        admin = session.exec(select(Coordinator)).one()
        assert check_password_hash(admin.password_hash, second.password)
        assert not check_password_hash(admin.password_hash, first.password)


def test_demo_keeps_clear_of_a_street_code_already_taken(sim_app):
    engine = sim_app.extensions["hotline"].engine
    with Session(engine) as session:
        session.add(Street(name="Woodford Avenue", code=101))
        session.commit()
        demo.seed(session)
        session.commit()
        codes = session.exec(select(Street.code)).all()
        assert len(codes) == len(set(codes)) == 4


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """The CLI runs as an operator would: in a folder of its own, settings from the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "HOTLINE_DATABASE_URL", "HOTLINE_FROM_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return tmp_path


def streets_in(tmp_path) -> int:
    from hotline.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with Session(engine) as session:
        found = count(session, Street)
    engine.dispose()
    return found


def test_hotline_demo_prints_the_login_and_can_run_twice(in_tmp):
    runner = CliRunner()
    first = runner.invoke(cli.main, ["demo"])
    assert first.exit_code == 0, first.output
    assert re.search(r"coordinator login: admin@example\.org\s+password: \S{8,}", first.output)
    again = runner.invoke(cli.main, ["demo"])
    assert again.exit_code == 0, again.output
    assert streets_in(in_tmp) == 3


def test_serve_seeds_only_with_demo(in_tmp, monkeypatch):
    from hotline.ops import server

    served = []
    monkeypatch.setattr(server, "run", lambda host, port, app: served.append((host, port)))
    plain = CliRunner().invoke(cli.main, ["serve"])
    assert plain.exit_code == 0, plain.output
    assert "/simulator" in plain.output and "password" not in plain.output
    assert streets_in(in_tmp) == 0
    seeded = CliRunner().invoke(cli.main, ["serve", "--demo", "--port", "5077"])
    assert seeded.exit_code == 0, seeded.output
    assert "coordinator login: admin@example.org" in seeded.output
    assert streets_in(in_tmp) == 3
    assert served == [("127.0.0.1", 5000), ("127.0.0.1", 5077)]  # the default host is the machine itself


def test_demo_refuses_a_real_twilio_account(in_tmp, monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("HOTLINE_FROM_NUMBER", "+447400123456")
    result = CliRunner().invoke(cli.main, ["demo"])
    assert result.exit_code != 0 and "simulator mode only" in result.output
    assert streets_in(in_tmp) == 0
