"""Every sentence a resident reads or hears, in one place. Replies are kept to one SMS segment."""

from __future__ import annotations

from datetime import datetime

from hotline import segments

EMERGENCY = "Emergency? Call 999"
MAX_BROADCAST_SEGMENTS = 3


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _names(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --- broadcasts ---------------------------------------------------------------------------


def watch_name(street_name: str) -> str:
    return f"{street_name} Watch"


def broadcast(street_name: str, ref: str, local_time: datetime, text: str, *, urgent: bool = False) -> str:
    """The alert neighbours get: never who sent it, at most three segments (the log keeps the rest)."""
    head = f"{watch_name(street_name)} {ref} {local_time:%H:%M}: " + ("URGENT: " if urgent else "")
    tail = ". Reply here to report. Emergency 999"
    text = " ".join(text.split()).rstrip(".")
    return segments.fit(head, text, tail, MAX_BROADCAST_SEGMENTS)


# --- replies to reports -------------------------------------------------------------------


def report_ack(ref: str, count: int) -> str:
    if count == 0:
        return f"Thanks, report {ref} is logged, but no neighbours can get alerts yet. {EMERGENCY}"
    return f"Thanks, report {ref} sent to {_plural(count, 'neighbour')}. {EMERGENCY}"


def report_held(ref: str) -> str:
    return f"Thanks, report {ref} is logged. A coordinator will check it before it goes out. {EMERGENCY}"


def over_hourly_limit(ref: str, limit: int) -> str:
    return f"Report {ref} is logged but not sent: the limit is {_plural(limit, 'report')} an hour. {EMERGENCY}"


def over_daily_limit(ref: str, limit: int) -> str:
    return f"Report {ref} is logged but not sent: the limit is {_plural(limit, 'report')} a day. {EMERGENCY}"


def duplicate_report(ref: str) -> str:
    return f"You sent that a few minutes ago, so {ref} is logged but not sent again. {EMERGENCY}"


def empty_report() -> str:
    return f"Your message was empty. Text what you saw to alert your street. {EMERGENCY}"


def urgent_needs_text() -> str:
    return f"Text URGENT followed by what you saw, e.g. URGENT man in my garden. {EMERGENCY}"


# --- strangers, joining, pending ----------------------------------------------------------


def how_to_join(scheme: str) -> str:
    return f"This is the {scheme} hotline. To join your street's alerts, text JOIN and your street, e.g. JOIN Clayhall Ave. {EMERGENCY}"


def logged_for_stranger(scheme: str) -> str:
    return f"Your message is logged for the {scheme} coordinators. To get street alerts, text JOIN and your street name. {EMERGENCY}"


def logged_while_pending(street_names: list[str]) -> str:
    return f"Your request to join {_names(street_names)} is waiting for a coordinator. Your message is logged for them. {EMERGENCY}"


def join_needs_street() -> str:
    return "Text JOIN followed by your street name, postcode or street code, e.g. JOIN Clayhall Ave."


def join_unknown(candidates: list[str]) -> str:
    if candidates:
        return f"Sorry, we don't know that street. Did you mean {_names(candidates[:3])}? Text JOIN and the name."
    return "Sorry, we don't know that street. Text JOIN and your street name, postcode or street code."


def join_ambiguous(candidates: list[str]) -> str:
    return f"Which street? {_names(candidates[:3])}. Text JOIN and the full name."


def join_pending(street: str) -> str:
    return f"Thanks. Your request to join {watch_name(street)} is with a coordinator. We'll text you when it's approved."


def join_active(street: str) -> str:
    return f"Welcome to {watch_name(street)}. Text what you see to alert your neighbours. HELP for commands. {EMERGENCY}"


def already_member(street: str) -> str:
    return f"You're already in {watch_name(street)}. Text what you see to alert your neighbours. {EMERGENCY}"


def join_while_opted_out(street: str) -> str:
    return f"You asked to join {street}, but you opted out of all messages. Text START to get them again."


def approved(street: str) -> str:
    return f"You're now in {watch_name(street)}. Text what you see to alert your neighbours. HELP for commands. {EMERGENCY}"


# --- keywords -----------------------------------------------------------------------------


def help_text(scheme: str) -> str:
    return f"{scheme}: text what you see to alert your street. JOIN street, LEAVE, CALL ME, TEXT ME, URGENT text, STOP. Emergency 999"


def opted_out(scheme: str) -> str:
    return f"You won't get any more messages from {scheme}. Text START to get them again."


def opted_in(scheme: str, active_streets: list[str]) -> str:
    if active_streets:
        return f"Welcome back to {scheme}. You'll get alerts for {_names(active_streets)} again."
    return f"Welcome back to {scheme}. To get street alerts, text JOIN and your street name."


def left(street_names: list[str]) -> str:
    return f"You've left {_names(street_names)}. No more alerts. Text JOIN and a street name to join again."


def not_a_member(scheme: str) -> str:
    return f"You're not in any {scheme} street yet. Text JOIN and your street name."


def alerts_by_call() -> str:
    return "From now on your alerts come as a phone call. Text TEXT ME to get them by text again."


def alerts_by_text() -> str:
    return "From now on your alerts come by text. Text CALL ME to get them as a phone call."


def stopped_calls_sms() -> str:
    return "You asked us to stop alert calls. Alerts now come by text. Text CALL ME to get calls again, STOP to end all."


# --- things a caller hears (alert calls) ---------------------------------------------------


def alert_call(scheme: str, street: str, local_time: datetime, text: str) -> str:
    return f"This is {scheme}, with an alert for {street}, at {local_time:%H:%M}. {text}"


def sorry_try_later() -> str:
    return f"Sorry, the hotline could not take your message just now. Please try again in a minute. {EMERGENCY}"


# --- coordinators ------------------------------------------------------------------------


def digest(scheme: str, *, new_reports: int, held: int, pending: int, failed: int, url: str | None = None) -> str:
    """The daily SMS to a coordinator: only the numbers that need them, and where to look."""
    parts = []
    if new_reports:
        parts.append(f"{_plural(new_reports, 'new report')}")
    if held:
        parts.append(f"{held} held for you to send or drop")
    if pending:
        parts.append(f"{pending} waiting to join")
    if failed:
        parts.append(f"{_plural(failed, 'alert')} not delivered")
    where = f" {url}" if url else ""
    return f"{scheme} daily: {'; '.join(parts)}.{where}"
