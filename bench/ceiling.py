"""The ceiling for the webhook benchmark: bare Flask answering /twilio/sms with fixed TwiML."""

from flask import Flask, Response
from twilio.twiml.messaging_response import MessagingResponse

app = Flask(__name__)


@app.post("/twilio/sms")
def sms():
    response = MessagingResponse()
    response.message("Thanks, report R1 sent to 9 neighbours. Emergency? Call 999")
    return Response(str(response), mimetype="text/xml")
