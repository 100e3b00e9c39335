"""Nobody let in: signatures on every Twilio route, proxies, body limits, reply caps."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select
from twilio.request_validator import RequestValidator

from hotline.models import InboundEvent, Member, Report
from hotline.residents import members
from tests.conftest import AUTH_TOKEN, NUMBERS, PUBLIC_URL, SignedClient, add_members, add_street, build_app

TWILIO_ROUTES = ["/twilio/sms", "/twilio/status"]


def rows(rt) -> tuple[int, int, int]:
    with Session(rt.engine) as session:
        return tuple(session.exec(select(func.count()).select_from(m)).one() for m in (Report, Member, InboundEvent))


SMS = {"From": NUMBERS[0], "Body": "hello there", "MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered"}


@pytest.mark.parametrize("path", TWILIO_ROUTES)
def test_unsigned_forged_replayed_and_old_token_signatures_are_refused(rt, twilio, path):
    before = rows(rt)
    other_token = RequestValidator("an-old-rotated-token").compute_signature(PUBLIC_URL + path, SMS)
    wrong_params = twilio.validator.compute_signature(PUBLIC_URL + path, {**SMS, "Body": "something else"})
    attempts = [
        twilio.client.post(path, data=SMS),  # no header at all
        twilio.post(path, SMS, signature=""),
        twilio.post(path, SMS, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        twilio.post(path, SMS, sign_url=PUBLIC_URL + "/twilio/other"),  # replayed to another URL
        twilio.post(path, SMS, sign_url="https://attacker.example.org" + path),
        twilio.post(path, SMS, signature=other_token),
        twilio.post(path, SMS, signature=wrong_params),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert rows(rt) == before


def test_signature_uses_the_raw_percent_encoded_url(rt, twilio):
    """Werkzeug decodes %C3%A9 in request.url; Twilio signed the encoded form."""
    path = "/twilio/sms?street=Caf%C3%A9%20Row&x=%2F"
    data = {"From": NUMBERS[0], "Body": "HELP", "MessageSid": "SM" + "d" * 32}
    signature = twilio.validator.compute_signature(PUBLIC_URL + path, data)
    response = twilio.client.post(path, data=data, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def test_a_signature_made_over_the_url_with_its_port_is_accepted_too(rt, twilio):
    """Twilio signs some URLs with the scheme's port (:443) and some without; the one configured is checked first."""
    data = {"From": NUMBERS[0], "Body": "HELP", "MessageSid": "SM" + "9" * 32}
    with_port = PUBLIC_URL.replace("example.org", "example.org:443") + "/twilio/sms"
    assert twilio.post("/twilio/sms", data, sign_url=with_port).status_code == 200
    assert twilio.post("/twilio/sms", data, sign_url=PUBLIC_URL.replace("example.org", "example.org:8443") + "/twilio/sms").status_code == 403


def test_behind_a_proxy_the_public_url_is_what_counts(rt, twilio):
    """The app sees http://internal:8000, Twilio signed https://hotline.example.org."""
    data = {"From": NUMBERS[0], "Body": "HELP", "MessageSid": "SM" + "e" * 32}
    signature = twilio.validator.compute_signature(PUBLIC_URL + "/twilio/sms", data)
    response = twilio.client.post(
        "/twilio/sms", data=data, base_url="http://internal:8000", headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200


def test_forwarded_headers_are_trusted_only_with_proxy_hops(tmp_path):
    data = {"From": NUMBERS[0], "Body": "HELP", "MessageSid": "SM" + "f" * 32}
    signed_for = "https://public.example.net/twilio/sms"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(signed_for, data)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.net", "X-Twilio-Signature": signature}

    untrusting = build_app(tmp_path / "a", twilio=True, environ={"HOTLINE_PUBLIC_URL": ""})
    assert untrusting.test_client().post("/twilio/sms", data=data, base_url="http://internal:8000", headers=forwarded).status_code == 403

    trusting = build_app(tmp_path / "b", twilio=True, environ={"HOTLINE_PUBLIC_URL": "", "HOTLINE_PROXY_HOPS": "1"})
    assert trusting.test_client().post("/twilio/sms", data=data, base_url="http://internal:8000", headers=forwarded).status_code == 200
    for app in (untrusting, trusting):
        app.extensions["hotline"].engine.dispose()


def test_an_oversized_body_is_refused_before_anything_happens(rt, twilio):
    before = rows(rt)
    response = twilio.post("/twilio/sms", {"From": NUMBERS[0], "Body": "x" * 200_000, "MessageSid": "SM" + "1" * 32})
    assert response.status_code == 413
    assert rows(rt) == before


def test_a_flood_from_one_number_gets_a_capped_number_of_replies(rt, twilio):
    replies = []
    for n in range(25):
        response = twilio.sms(NUMBERS[50], f"spam message {n}")
        assert response.status_code == 200
        replies.append(b"<Message>" in response.data)
    assert replies.count(True) == rt.config.max_replies_per_hour
    with Session(rt.engine) as session:  # nothing lost: every message is logged for the coordinators
        assert session.exec(select(func.count(Report.id))).one() == 25


def test_a_member_cannot_make_the_hotline_send_more_than_the_hourly_cap(rt, session, twilio):
    street = add_street(session, "Clayhall Avenue", 101)
    add_members(session, street, NUMBERS[:20])
    from hotline.models import Delivery

    for n in range(30):
        twilio.sms(NUMBERS[0], f"report {n}")
    assert session.exec(select(func.count(Delivery.id))).one() == rt.config.max_reports_per_hour * 19


def test_webhooks_do_not_need_csrf_but_carry_no_session_cookie(rt, twilio):
    response = twilio.sms(NUMBERS[0], "HELP")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_simulator_mode_accepts_unsigned_webhooks_and_twilio_mode_does_not(sim_app, app):
    data = {"From": NUMBERS[0], "Body": "HELP", "MessageSid": "SM" + "2" * 32}
    assert sim_app.test_client().post("/twilio/sms", data=data).status_code == 200
    assert app.test_client().post("/twilio/sms", data=data).status_code == 403


def test_simulator_mode_never_calls_the_twilio_api(sim_app):
    import responses

    from hotline.delivery import outbox

    rt = sim_app.extensions["hotline"]
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:5])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:  # any HTTP would raise
        client = sim_app.test_client()
        client.post("/twilio/sms", data={"From": NUMBERS[0], "Body": "van on the pavement", "MessageSid": "SM" + "3" * 32})
        with Session(rt.engine) as session:
            assert outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config) == 4
        assert len(mock.calls) == 0
    from hotline.models import SimulatedMessage

    with Session(rt.engine) as session:
        assert session.exec(select(func.count(SimulatedMessage.id))).one() == 4


def test_signed_client_helper_matches_twilio(app):
    """Guard for the fixtures: a request signed as Twilio signs it is accepted."""
    assert SignedClient(app).sms(NUMBERS[0], "HELP").status_code == 200


def test_a_spoofed_flood_from_many_numbers_gets_no_more_replies_than_the_hourly_cap(tmp_path):
    """Cost amplification: 300 texts from 150 different (spoofed) numbers; each reply is an SMS we pay for.
    Strangers stop short of the cap by the members' reserve (a fifth): 32 of 40."""
    from hotline.models import Delivery
    from tests.delivery.test_faults import record

    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_REPLIES_PER_HOUR_TOTAL": "40"})
    rt = app.extensions["hotline"]
    assert rt.config.max_replies_per_hour_total == 40 and rt.config.member_reply_reserve == 8
    with Session(rt.engine) as session:
        add_members(session, add_street(session, "Clayhall Avenue", 101), NUMBERS[:5])
    client, replies, bodies = SignedClient(app), 0, ["HELP", "JOIN Clayhall Avenue", "someone in my garden", "JOIN nowhere"]
    for n in range(300):
        response = client.sms(NUMBERS[100 + n % 150], bodies[n % len(bodies)])
        assert response.status_code == 200
        replies += b"<Message>" in response.data
    assert replies == 32
    with Session(rt.engine) as session:  # everything was still acted on and logged
        assert session.exec(select(func.count(InboundEvent.key))).one() == 300
        assert session.exec(select(func.count(Report.id))).one() == 75
        assert session.exec(select(func.count(Delivery.id))).one() == 0  # strangers' texts are never broadcast
    record("spoofed flood from 150 numbers", requests=300, replies=replies, cap=40, reserved_for_members=8, logged=300, lost=0)
    rt.engine.dispose()


def test_members_are_still_answered_from_their_reserve_when_strangers_have_used_theirs(tmp_path):
    """HOTLINE_REPLIES_PER_HOUR_TOTAL 40, 10 of them reserved for members: a flood of strangers gets 30 replies,
    then members, pending members and coordinators are answered until the total, and nobody after it.
    The flood's own JOINs do not make its senders members: a membership counts once it is an hour old."""
    from datetime import timedelta

    from sqlalchemy import update

    from hotline.db import utcnow
    from hotline.models import Coordinator, Membership

    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_REPLIES_PER_HOUR_TOTAL": "40", "HOTLINE_REPLIES_RESERVED_FOR_MEMBERS": "10"})
    rt = app.extensions["hotline"]
    assert rt.config.member_reply_reserve == 10
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:8])
        members.join(session, members.get_or_create(session, NUMBERS[20]), street)  # pending: waits for approval
        session.add(Coordinator(email="clay@example.org", password_hash="x", phone=NUMBERS[30]))
        session.exec(update(Membership).values(joined_at=utcnow() - timedelta(hours=2)))  # known before this hour
        session.commit()
    client = SignedClient(app)

    def answered(sender: str, body: str) -> bool:
        response = client.sms(sender, body)
        assert response.status_code == 200
        return b"<Message>" in response.data

    flood = [answered(NUMBERS[100 + n % 60], "HELP" if n % 2 else "JOIN Clayhall Avenue") for n in range(120)]
    assert flood.count(True) == 30 and flood[:30] == [True] * 30
    assert not answered(NUMBERS[99], "HELP")  # one more stranger: silenced
    assert not answered(NUMBERS[100], "HELP")  # a flooder whose JOIN just made them pending is no member yet
    assert not answered(NUMBERS[9], "JOIN Clayhall Avenue")
    ours = [
        answered(NUMBERS[0], "van with no plates outside 12"),  # a member's report: its acknowledgement
        answered(NUMBERS[20], "is anyone there?"),  # a pending member
        answered(NUMBERS[30], "HELP"),  # a coordinator's phone
    ] + [answered(NUMBERS[n], f"report {n}: gate open") for n in range(1, 8)]
    assert ours == [True] * 10
    assert not answered(NUMBERS[0], "HELP")  # the total is reached: members too are silenced now
    with Session(rt.engine) as session:
        assert session.exec(select(func.count(InboundEvent.key))).one() == 120 + 3 + 10 + 1  # all acted on and logged
    rt.engine.dispose()


def test_the_hourly_cap_on_all_replies_frees_up_after_an_hour(tmp_path):
    from datetime import timedelta

    from hotline.db import utcnow
    from hotline.reports import inbox

    app = build_app(tmp_path, twilio=True, max_replies_per_hour_total=3)
    rt = app.extensions["hotline"]
    start = utcnow()

    def text(n: int, minutes: int) -> str | None:
        with Session(rt.engine) as session:
            reply = inbox.receive_sms(session=session, config=rt.config, sender=NUMBERS[200 + n], body="HELP", sid=f"SM{n:032d}", now=start + timedelta(minutes=minutes))
            session.commit()
        return reply.text

    assert [text(n, n) is not None for n in range(5)] == [True, True, True, False, False]
    assert text(5, 61) is not None  # the first reply is more than an hour old now
    assert text(6, 62) is not None and text(7, 62) is None
    rt.engine.dispose()
    default = build_app(tmp_path / "default", twilio=True).extensions["hotline"]
    assert default.config.max_replies_per_hour_total == 500
    default.engine.dispose()


def test_a_reached_reply_cap_is_logged_once_an_hour_not_once_a_text(tmp_path, caplog):
    """A flood past the cap writes one warning line, not one a text (the log would grow as fast as the flood)."""
    from hotline.reports import inbox

    inbox._CAP_WARNED.clear()
    app = build_app(tmp_path, twilio=True, max_replies_per_hour_total=3)
    client = SignedClient(app)
    with caplog.at_level("WARNING", logger="hotline.reports.inbox"):
        for n in range(20):
            assert client.sms(NUMBERS[100 + n], "HELP").status_code == 200
        said = [r for r in caplog.records if "cap of" in r.getMessage()]
        assert len(said) == 1 and "strangers'" in said[0].getMessage()
        inbox._warn_cap_reached(3, "strangers'", clock=lambda: 7200.0)  # a new hour: said again, once
        inbox._warn_cap_reached(3, "strangers'", clock=lambda: 7260.0)
        assert len([r for r in caplog.records if "cap of" in r.getMessage()]) == 2
    app.extensions["hotline"].engine.dispose()


def test_past_the_cap_the_reply_counts_read_only_the_answered_texts(rt):
    """Once a flood passes the cap its texts are logged unanswered; the hour's reply counts, run by every later
    text, are read from partial indexes of the answered ones, so they do not grow with the flood. The plan is
    asked of the database itself (SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN after ANALYZE, with
    thousands of unanswered texts that make reading them dear)."""
    from datetime import timedelta

    from sqlalchemy import insert

    from hotline.db import utcnow
    from hotline.reports import inbox

    now = utcnow()
    flood = [{"key": f"sms:SM{n:032d}", "kind": "sms", "phone": NUMBERS[100 + n % 50], "created_at": now - timedelta(seconds=n % 3000),
              "reply": "Thanks" if n < 40 else None} for n in range(5000)]
    with rt.engine.begin() as connection:
        connection.execute(insert(InboundEvent), flood)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE inboundevent")
    values = {"key": "sms:SM-new", "phone": NUMBERS[100], "hour_ago": now - timedelta(hours=1), "all_cap": 500, "own_cap": 10,
              "joined_before": now - timedelta(hours=1)}
    compiled = inbox._CONTEXT.statement.compile(dialect=rt.engine.dialect)
    with rt.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), (None,) * str(compiled).count("?")).all()
        else:
            plan = connection.exec_driver_sql("EXPLAIN " + str(compiled), compiled.construct_params(values)).all()
        plan = "\n".join(str(row[-1]) for row in plan)
        assert "ix_inboundevent_replied" in plan and "ix_inboundevent_phone_replied" in plan, plan
        assert [row[:5] for row in inbox._CONTEXT.rows(connection, values)] == [(False, None, 40, 1, False)]  # and the counts are right
