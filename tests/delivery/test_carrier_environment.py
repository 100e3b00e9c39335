"""The Twilio carrier's HTTP session honours the environment (proxies, NO_PROXY, CA bundle) as requests does, but
reads it once per host instead of walking the process environment on every send."""

from __future__ import annotations

from types import SimpleNamespace

import requests
import requests.sessions

from hotline.delivery.carrier.twilio import EnvironmentOnceSession, TwilioCarrier
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN

URLS = [
    f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
    "https://messaging.twilio.com/v1/Services/MG1/PhoneNumbers",
    "http://127.0.0.1:8080/2010-04-01/Accounts/x/Calls.json",
]


def carrier() -> TwilioCarrier:
    config = SimpleNamespace(api_url="https://api.twilio.com", rest_timeout_seconds=5.0, account_sid=ACCOUNT_SID,
                             auth_token=AUTH_TOKEN, messaging_service_sid=None, from_number="+447400123456",
                             sms_validity_seconds=3600)
    return TwilioCarrier(config)


def test_the_environment_settings_are_those_requests_would_use(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "messaging.twilio.com,127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/our-bundle.pem")
    ours, plain = EnvironmentOnceSession(), requests.Session()
    for url in URLS * 2:  # the second time from what was kept
        assert ours.merge_environment_settings(url, {}, None, None, None) == plain.merge_environment_settings(url, {}, None, None, None)
    assert ours.merge_environment_settings(URLS[0], {}, None, None, None)["proxies"]["https"] == "http://proxy.example:3128"
    assert "https" not in ours.merge_environment_settings(URLS[1], {}, None, None, None)["proxies"]  # NO_PROXY
    assert ours.merge_environment_settings(URLS[0], {}, None, None, None)["verify"] == "/etc/ssl/our-bundle.pem"


def test_a_caller_changing_the_returned_proxies_changes_nothing_kept(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    ours = EnvironmentOnceSession()
    ours.merge_environment_settings(URLS[0], {}, None, None, None)["proxies"]["https"] = "http://elsewhere:1"
    assert ours.merge_environment_settings(URLS[0], {}, None, None, None)["proxies"]["https"] == "http://proxy.example:3128"


def test_sends_read_the_environment_once_per_host(monkeypatch, twilio_api):
    reads = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", lambda url, no_proxy=None: reads.append(url) or real(url, no_proxy))
    sender = carrier()
    for n in range(3):
        accepted = sender.send_sms(to=f"+4474009000{n:02d}", body="hello", status_callback=None)
        assert accepted.sid.startswith("SM")
    assert len(twilio_api.sent) == 3
    assert len(reads) == 1


def test_without_trust_env_the_session_reads_nothing(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    ours = EnvironmentOnceSession()
    ours.trust_env = False
    assert ours.merge_environment_settings(URLS[0], {}, None, None, None)["proxies"] == {}
