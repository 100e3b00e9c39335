"""What a carrier is: the seam every outbound SMS and call goes through, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Accepted:
    """The carrier took the message or call: its SID and the status it reported."""

    sid: str
    status: str


class CarrierError(Exception):
    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class Throttled(CarrierError):
    """HTTP 429: Twilio did not process the request, so sending again is safe."""


class Uncertain(CarrierError):
    """A timeout, a dropped connection or a 5xx: Twilio may have accepted it all the same."""


class Rejected(CarrierError):
    """Twilio refused the request for good (4xx); `code` says why (21610, 21614, 21211 …)."""


class Carrier(Protocol):
    # `pace`, if given, is called right before the request goes out (the dispatcher's rate limit).
    def send_sms(self, *, to: str, body: str, status_callback: str | None, pace=None) -> Accepted: ...

    def find_sms(self, *, to: str, body: str, since: datetime, exclude=frozenset()) -> Accepted | None:
        """A message to `to` with this body since `since`, none of the SIDs in `exclude` (messages we know)."""
        ...

    def place_call(
        self, *, to: str, twiml: str, status_callback: str | None, url: str | None = None, pace=None
    ) -> Accepted:
        """Ring `to`: Twilio fetches `url` (with AnsweredBy) when there is one, else plays `twiml`."""
        ...

    def find_call(self, *, to: str, since: datetime, exclude=frozenset()) -> Accepted | None:
        """A call to `to` placed since `since`, none of the SIDs in `exclude` (other deliveries' calls)."""
        ...

    def delete_recording(self, url: str) -> bool:
        """Delete a caller's recording where it is kept; True once it is gone (already gone included)."""
        ...

    def caller_id(self) -> str:
        """The number alert calls ring from; raises CarrierError when there is none to place a call from."""
        ...

    def fetch_status(self, *, channel: str, sid: str) -> tuple[str, int | None] | None:
        """Twilio's own status of a message or call (and its error code): for a callback that never came."""
        ...
