"""X-Twilio-Signature: every /twilio/… request is checked (unless in simulator mode) before it acts."""

from __future__ import annotations

import logging
from hmac import compare_digest
from urllib.parse import quote

from flask import abort, request
from twilio.request_validator import RequestValidator

from hotline import runtime
from hotline.webhooks.blueprint import bp

log = logging.getLogger(__name__)


def signed_url() -> str:
    """The URL Twilio signed: the configured public base URL plus the *raw* path and query.

    Werkzeug's request.url decodes percent-encoded non-ASCII, which would no longer match.
    """
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        raw = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/%:@&=+$,;~!*'()")
        if environ.get("QUERY_STRING"):
            raw += "?" + environ["QUERY_STRING"]
    if raw.startswith(("http://", "https://")):  # an absolute request-target
        raw = "/" + raw.split("/", 3)[-1] if raw.count("/") >= 3 else "/"
    base = runtime.current().config.public_url or request.host_url.rstrip("/")
    return base + raw


@bp.before_request
def require_signature():
    config = runtime.current().config
    if config.simulator:
        return None
    validator = RequestValidator(config.auth_token)
    signature = request.headers.get("X-Twilio-Signature", "")
    url = signed_url()
    # The URL as configured is what Twilio signs: one HMAC. The library's validate() always computes two (the
    # URL with and without its port, as Twilio's signing is not consistent about it): only when the first fails.
    if not (compare_digest(validator.compute_signature(url, request.form), signature) or validator.validate(url, request.form, signature)):
        log.warning("refused a %s to %s: bad or missing X-Twilio-Signature", request.method, request.path)
        abort(403)
    return None
