"""The ceilings for the webhook benchmark, served by the same gunicorn as the app:

- POST /twilio/sms: bare Flask answering fixed TwiML (the framework's ceiling);
- POST /write/sms: the same plus one committed INSERT into the app's database (the price of durability).
"""

import os

from flask import Flask, Response, request
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, insert
from twilio.twiml.messaging_response import MessagingResponse

app = Flask(__name__)
_engine = create_engine(os.environ["HOTLINE_DATABASE_URL"]) if os.environ.get("HOTLINE_DATABASE_URL") else None
_inbox = Table("bench_inbox", MetaData(), Column("id", Integer, primary_key=True), Column("body", Text))


def create_inbox(database_url: str) -> None:
    """Called once by bench.webhook before gunicorn starts: its workers import this module at the same
    moment, and two check-then-create at once fail ("table bench_inbox already exists")."""
    engine = create_engine(database_url)
    _inbox.create(engine, checkfirst=True)
    engine.dispose()


def _reply() -> Response:
    response = MessagingResponse()
    response.message("Thanks, report R1 sent to 9 neighbours. Emergency? Call 999")
    return Response(str(response), mimetype="text/xml")


@app.post("/twilio/sms")
def sms():
    return _reply()


@app.post("/write/sms")
def sms_with_one_write():
    with _engine.begin() as connection:
        connection.execute(insert(_inbox).values(body=request.form.get("Body", "")))
    return _reply()
