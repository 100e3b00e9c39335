"""Every sentence a resident reads or hears, in one place. Replies are kept to one SMS segment."""

from __future__ import annotations

from datetime import datetime

from hotline.delivery import segments

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


def _alert_tails(ref: str) -> list[str]:
    """How to answer an alert, most helpful first; the first that keeps the alert in one SMS is used."""
    return [
        f". Reply OK if seen, or {ref} and your news to add to it. Emergency 999",
        f". Reply OK if seen, {ref} + news to add. Emergency 999",
        f". Reply OK if seen, {ref}+news to add. 999",
        ". Reply OK if seen. 999",
    ]


def _alert(head: str, text: str, ref: str) -> str:
    """`head` + what the resident wrote (as written) + how to answer: one SMS when a short tail allows it,
    else the full tail and at most three segments (the log keeps the whole text)."""
    text = " ".join(text.split()).rstrip(".")
    tails = _alert_tails(ref)
    for tail in tails:
        if segments.count(head + text + tail) == 1:
            return head + text + tail
    return segments.fit(head, text, tails[1], MAX_BROADCAST_SEGMENTS)


def broadcast(street_name: str, ref: str, local_time: datetime, text: str, *, urgent: bool = False) -> str:
    """The alert neighbours get: never who sent it, at most three segments (the log keeps the rest)."""
    head = f"{watch_name(street_name)} {ref} {local_time:%H:%M}: " + ("URGENT: " if urgent else "")
    return _alert(head, text, ref)


def update_alert(ref: str, local_time: datetime, text: str, *, urgent: bool = False) -> str:
    """A follow-up of incident `ref`, to the streets its first alert went to."""
    return _alert(f"Update {ref} {local_time:%H:%M}: " + ("URGENT: " if urgent else ""), text, ref)


def all_clear(ref: str, words: str | None) -> str:
    words = " ".join((words or "").split()).rstrip(".") or "the coordinators say it is over"
    return segments.fit(f"All clear {ref}: ", words, ". Thank you for looking out.", MAX_BROADCAST_SEGMENTS)


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


# --- incidents: updates, the all-clear, the outcome --------------------------------------


def update_ack(ref: str, count: int) -> str:
    return f"Thanks, your update to {ref} is sent to {_plural(count, 'neighbour')}. {EMERGENCY}"


def update_held(ref: str) -> str:
    return f"Thanks, your update to {ref} is logged. A coordinator will check it before it goes out. {EMERGENCY}"


def update_over_limit(ref: str, limit: int, period: str) -> str:
    return f"Your update to {ref} is logged but not sent: the limit is {_plural(limit, 'report')} {period}. {EMERGENCY}"


def update_duplicate(ref: str) -> str:
    return f"You sent that a few minutes ago, so your update to {ref} is not sent again. {EMERGENCY}"


def closed_so_new_report(old_ref: str, reply: str) -> str:
    """`R42 …` when R42 is closed or unknown: it went as a new report; `reply` says how that went."""
    return f"{old_ref} is closed, so this is a new report. {reply}"


OUTCOME_WORDS = {
    "police_informed": "the police have been informed",
    "resolved": "it has been resolved",
    "false_alarm": "it turned out to be a false alarm",
    "no_further_action": "no further action will be taken",
}


def outcome_to_reporter(scheme: str, ref: str, outcome: str, note: str | None) -> str:
    text = f"{scheme}: about your report {ref}, {OUTCOME_WORDS.get(outcome, outcome)}."
    note = " ".join((note or "").split())
    return segments.fit(text + " ", note, " Thank you.", 2) if note else text + " Thank you for reporting it."


def voice_outcome(ref: str, outcome: str, note: str | None) -> str:
    """First thing on the next call of a reporter with no mobile: what became of their report."""
    note = " ".join((note or "").split())
    return f"Before the menu, news about your report, {spoken_ref(ref)}: {OUTCOME_WORDS.get(outcome, outcome)}. {note}".strip()


def escalation_held(ref: str, streets: list[str], minutes: int, text: str | None) -> str:
    """To a coordinator (then an admin) when a held report waits too long; the reply works as a command."""
    head = f"{ref} for {_names(streets)} has waited {minutes} min for a decision: \""
    tail = f"\". Reply SEND {ref} or DROP {ref}."
    return segments.fit(head, " ".join((text or "a recording").split()), tail, 2)


def escalation_join(code: str, street: str, who: str, minutes: int) -> str:
    return f"{who} has waited {minutes} min to join {street} ({code}). Reply APPROVE {code} or REJECT {code}."


def check_on_me(ref: str, local_time: datetime, people: list[str]) -> str:
    """To a street's coordinators: "check on me" members who have not confirmed an urgent alert."""
    head = f"Please check on {'; '.join(people)}: "
    return segments.fit(head, f"no word from them since urgent alert {ref} at {local_time:%H:%M}", ".", 3)


def coordinator_cleared(ref: str, count: int) -> str:
    return f"All clear for {ref} is going to {count} {'person' if count == 1 else 'people'}. {ref} is closed."


def coordinator_not_open(ref: str) -> str:
    return f"{ref} is not an open incident (already clear, closed, or not known). Nothing was sent."


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


def approved_by_call(scheme: str, street: str) -> str:
    """Said on a call to a member who gets alerts by phone (a landline cannot read a text)."""
    return (
        f"This is {scheme}. You are now a member of {watch_name(street)}. Alerts for your street will come to this"
        " phone as a call. To report something, call this number back and press 1. If a crime is happening, dial 999."
    )


# --- keywords -----------------------------------------------------------------------------


def help_text(scheme: str) -> str:
    return (
        f"{scheme}: text what you see to alert your street. OK = seen. R42 + news adds to alert R42."
        " JOIN street, LEAVE, CALL ME, TEXT ME, URGENT text, STOP. 999"
    )


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


def update_call(scheme: str, street: str, local_time: datetime, text: str) -> str:
    return f"This is {scheme}, with an urgent update for {street}, at {local_time:%H:%M}. {text}"


def all_clear_call(scheme: str, street: str, alert_time: datetime, words: str | None) -> str:
    said = " ".join((words or "").split())
    return f"This is {scheme}. All clear for {street}: the alert of {alert_time:%H:%M} is over. {said}".strip()


def sorry_try_later() -> str:
    return f"Sorry, the hotline could not take your message just now. Please try again in a minute. {EMERGENCY}"


# --- the voice menu: what a caller hears ---------------------------------------------------

SAY_999 = "If a crime is happening now, hang up and dial 999."


def spoken_time(local: datetime) -> str:
    """`2:05 pm`, `9 am`: how a person says a time."""
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{hour}{minutes} {'am' if local.hour < 12 else 'pm'}"


def spoken_when(local: datetime, today_local: datetime) -> str:
    days = (today_local.date() - local.date()).days
    day = "today" if days <= 0 else "yesterday" if days == 1 else f"on {local:%A}"
    return f"{day} at {spoken_time(local)}"


def spoken_ref(ref: str) -> str:
    return f"{ref[0]} {ref[1:]}"


def voice_greeting(scheme: str, street_names: list[str]) -> str:
    if street_names:
        return f"Welcome to {scheme} for {_names(street_names)}. {SAY_999}"
    return f"Welcome to the {scheme} hotline. {SAY_999}"


def voice_main_menu() -> str:
    return (
        "To report something, press 1. To hear the latest alerts, press 2. "
        "To change how you get alerts, press 3. To hear this again, press 9."
    )


def voice_pending(street_names: list[str]) -> str:
    return (
        f"Your request to join {_names(street_names)} is waiting for a coordinator. Once it is approved, "
        "you will get alerts. To leave a message for the coordinators, press 1. To hear this again, press 9."
    )


def voice_opted_out(scheme: str) -> str:
    return (
        f"You asked {scheme} to stop all messages to this number, so you get no alerts. "
        "To get alerts again, press 1. To hear this again, press 9."
    )


def voice_join_prompt() -> str:
    return (
        "To join your street's alerts, key in your street's code, then the hash key. "
        "Or say the name of your street."
    )


def voice_withheld(scheme: str) -> str:
    return (
        f"This is the {scheme} hotline. Your number is withheld, so we cannot tell who is calling. "
        f"Please call again without withholding your number, or send a text. {SAY_999} Goodbye."
    )


def voice_no_input() -> str:
    return "Sorry, I didn't hear anything."


def voice_wrong_key() -> str:
    return "Sorry, that key is not one of the choices."


def voice_goodbye() -> str:
    return "Sorry we could not help this time. Please call again later, or ask your street's coordinator. Goodbye."


def voice_error() -> str:
    return f"Sorry, the hotline is not working properly just now. {SAY_999} Otherwise, please try again later. Goodbye."


def voice_anything_else() -> str:
    return "If there is nothing else, you can hang up now."


# reporting by phone

def voice_report_prompt() -> str:
    return "Please say what you saw, and where. When you have finished, stop talking and wait."


def voice_report_again() -> str:
    return "Sorry, I did not catch that. Please say it again, slowly and clearly."


def voice_read_back(text: str) -> str:
    return f"I heard: {text}."


def voice_check_menu() -> str:
    return (
        "To send it, press 1. To say it again, press 2. To cancel, press 3. "
        "If it is urgent, and neighbours' phones should ring even at night, press 4. To hear it again, press 9."
    )


def voice_record_prompt() -> str:
    return (
        "Sorry, I still could not make that out. After the tone, say what you saw, then press the hash key. "
        "A coordinator will listen to it."
    )


def voice_nothing_recorded() -> str:
    return "Sorry, nothing was recorded."


def voice_report_cancelled() -> str:
    return "Cancelled. Nothing was sent."


def voice_report_not_sent() -> str:
    return "Your report was not sent. Please call again when you are ready. Goodbye."


def voice_report_sent(ref: str, count: int) -> str:
    if count == 0:
        return f"Thank you. Your report, {spoken_ref(ref)}, is logged, but no neighbours can get alerts yet."
    return f"Thank you. Your report, {spoken_ref(ref)}, has gone to {_plural(count, 'neighbour')}."


def voice_report_held(ref: str) -> str:
    return f"Thank you. Your report, {spoken_ref(ref)}, is logged. A coordinator will check it before it goes out."


def voice_recording_held() -> str:
    return "Thank you. Your message is recorded. A coordinator will listen to it before it goes to your street."


def voice_over_limit(limit: int, period: str) -> str:
    return f"Your report is logged, but not sent: the limit is {_plural(limit, 'report')} {period}."


def voice_duplicate() -> str:
    return "You sent that a few minutes ago, so it is logged but not sent again."


def voice_logged_for_coordinators() -> str:
    return "Thank you. Your message is logged for the coordinators."


# hearing the latest alerts

def voice_no_alerts() -> str:
    return "There have been no alerts for your street in the past week."


def voice_alerts_intro(count: int) -> str:
    return "Here is the latest alert." if count == 1 else f"Here are the latest {count} alerts, newest first."


def voice_alert_item(when: str, street: str | None, text: str | None) -> str:
    where = f", {street}" if street else ""
    return f"{when[0].upper()}{when[1:]}{where}: {text or 'a recorded message, passed on by a coordinator'}."


def voice_update_item(when: str, text: str | None) -> str:
    return f"Update {when}: {text or 'a recorded message'}."


def voice_all_clear_item(words: str | None) -> str:
    words = " ".join((words or "").split())
    return f"That is now all clear. {words}".strip()


def voice_update_or_new(ref: str) -> str:
    return (
        f"Is this more news about your earlier report, {spoken_ref(ref)}? If it is, press 1, and it goes to the same "
        "neighbours as an update. If it is something new, press 2. To hear this again, press 9."
    )


def voice_update_sent(ref: str, count: int) -> str:
    return f"Thank you. Your update to {spoken_ref(ref)} has gone to {_plural(count, 'neighbour')}."


def voice_update_held(ref: str) -> str:
    return f"Thank you. Your update to {spoken_ref(ref)} is logged. A coordinator will check it before it goes out."


# changing how alerts come

def voice_settings(by_call: bool, can_text: bool, street_names: list[str]) -> str:
    now = "as a phone call" if by_call else "by text message"
    text = "To get alerts by text message, press 1. " if can_text else ""
    return (
        f"At the moment your alerts come {now}. {text}To get alerts as a phone call, press 2. "
        f"To leave {_names(street_names)} and stop alerts, press 3. To go back, press 0. To hear this again, press 9."
    )


def voice_alerts_by_text() -> str:
    return "Done. From now on your alerts come by text message."


def voice_alerts_by_call() -> str:
    return "Done. From now on your alerts come as a phone call."


def voice_cannot_text() -> str:
    return "This phone cannot get text messages, so your alerts stay as phone calls."


def voice_leave_confirm(street_names: list[str]) -> str:
    return f"You will stop getting alerts for {_names(street_names)}. To leave, press 1. To stay, press 2."


def voice_left(street_names: list[str]) -> str:
    return f"You have left {_names(street_names)}, and will get no more alerts. Goodbye."


# joining by phone

def voice_join_confirm(street: str) -> str:
    return f"{street}. To join {watch_name(street)}, press 1. To choose a different street, press 2."


def voice_street_unknown(candidates: list[str]) -> str:
    if candidates:
        return f"Sorry, I could not find that street. Did you mean {_names(candidates[:3])}?"
    return "Sorry, I could not find that street."


def voice_street_ambiguous(candidates: list[str]) -> str:
    return f"There is more than one street like that: {_names(candidates[:3])}. Please say the full name, or key in its code."


def voice_code_not_digits() -> str:
    return "Sorry, street codes are numbers."


def voice_joined_pending(street: str) -> str:
    return (
        f"Thank you. Your request to join {watch_name(street)} is with a coordinator. Once it is approved, "
        f"alerts will come to this phone. {SAY_999} Goodbye."
    )


def voice_joined_active(street: str, by_call: bool) -> str:
    how = "as a call" if by_call else "by text message"
    return f"Welcome to {watch_name(street)}. Alerts will come to this phone {how}."


def voice_opted_in(scheme: str) -> str:
    return f"Welcome back to {scheme}."


# alert calls

def voice_alert_options() -> str:
    return "To say you have heard this alert, and hear it again, press 1. To stop these alert calls, press 2."


def voice_alert_heard() -> str:
    return "Thank you: we have noted that you heard it."


def voice_alert_left_on_machine(scheme: str) -> str:
    return (
        f"This was an automated alert from {scheme}. To say you have heard it, call this number and press 1. "
        "Goodbye."
    )


def voice_unconfirmed(when: str, alert: str) -> str:
    """At the start of a member's call: an alert they have not said they heard (left on a machine, say)."""
    return (
        f"You have an alert from {when} that you have not said you heard. {alert} "
        "To say you have heard it, press 1. For the menu, press 0."
    )


def voice_confirmed() -> str:
    return "Thank you: we have noted that you heard it."


def voice_alert_gone(scheme: str) -> str:
    return f"This is {scheme}. Sorry, this alert is no longer available. Goodbye."


def voice_calls_stopped_to_text() -> str:
    return "You will not get alert calls any more. Alerts will come by text message instead. Goodbye."


def voice_calls_stopped(scheme: str) -> str:
    return f"You will not get any more alert calls from {scheme}. To get them again, call this number. Goodbye."


def voice_alert_goodbye() -> str:
    return "Thank you for listening. Goodbye."

# --- announcements from coordinators --------------------------------------------------------

MAX_ANNOUNCEMENT_SEGMENTS = 3


def announcement(scheme: str, text: str) -> str:
    """What members get when a coordinator announces something (a meeting, a warning)."""
    return f"{scheme}: " + " ".join(text.split())


def announcement_call(scheme: str, text: str) -> str:
    return f"This is {scheme}, with a message from your coordinators. " + " ".join(text.split())


# --- replies to a coordinator's phone (APPROVE, REJECT, SEND, DROP) -------------------------


def coordinator_approved(who: str, street_names: list[str]) -> str:
    return f"Approved {who} for {_names(street_names)}. They have been told."


def coordinator_rejected(who: str, street_names: list[str]) -> str:
    return f"Rejected {who} for {_names(street_names)}."


def coordinator_nothing_pending(who: str) -> str:
    return f"{who} has no request waiting on your streets."


def coordinator_unknown_member(who: str) -> str:
    return f"No member matches {who!r}. Text APPROVE or REJECT with their phone number or name."


def coordinator_ambiguous_member(who: str, count: int) -> str:
    return f"{count} members match {who!r}. Text APPROVE or REJECT with their phone number."


def coordinator_report_sent(ref: str, count: int) -> str:
    return f"Report {ref} sent to {_plural(count, 'neighbour')}."


def coordinator_report_dropped(ref: str) -> str:
    return f"Report {ref} dropped. Nobody was sent it."


def coordinator_report_not_theirs(ref: str, streets: list[str]) -> str:
    return f"{ref} is held for {', '.join(streets)}: its coordinators or an admin decide it. Nothing was sent."[:300]


def coordinator_report_not_held(ref: str, state: str) -> str:
    return f"Report {ref} is not waiting for a decision (it is {state.replace('_', ' ')})."


def coordinator_report_unknown(ref: str) -> str:
    return f"No report {ref} on your streets."


def coordinator_report_needs_text(ref: str) -> str:
    return f"Report {ref} is a recording with no text. Type what it says on the web log to send it."

# --- coordinators ------------------------------------------------------------------------


def digest(scheme: str, *, new_reports: int, held: int, pending: int, failed: int, open_incidents: int = 0,
           without_outcome: int = 0, url: str | None = None) -> str:
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
    if open_incidents:
        parts.append(f"{_plural(open_incidents, 'incident')} open")
    if without_outcome:
        parts.append(f"{without_outcome} closed without an outcome")
    where = f" {url}" if url else ""
    return f"{scheme} daily: {'; '.join(parts)}.{where}"


# --- number plates, to coordinators --------------------------------------------------------

MAX_PLATE_SEGMENTS = 2  # the ceiling; with everyday street names each of these fits in one


def _seen(street: str | None, ref: str, local_time: datetime, *, clock: bool = True) -> str:
    where = f"on {street}" if street else "with no street"
    return f"{where} ({ref}, {local_time:%d %b}" + (f" {local_time:%H:%M})" if clock else ")")


def _clipped(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip()


def plate_on_two_streets(scheme: str, plate: str, new: tuple, earlier: tuple, url: str | None = None) -> str:
    """To the coordinators of both streets when a plate turns up on a second one: `new` and `earlier` are
    (street name, reference, local time). Long names are shortened before the message grows past its budget."""
    street, ref, _ = new
    other, other_ref, other_when = earlier
    for limit, link in ((120, True), (120, False), (40, False), (20, False)):
        text = (
            f"{_clipped(scheme, limit)}: plate {plate} is in {ref} ({_clipped(street, limit)}) "
            f"and {other_ref} ({_clipped(other, limit)}, {other_when:%d %b})." + (f" {url}" if url and link else "")
        )
        if segments.count(text) <= MAX_PLATE_SEGMENTS:
            break
    return text


def watched_plate(scheme: str, plate: str, new: tuple, note: str, url: str | None = None, earlier: tuple | None = None) -> str:
    """To the street's coordinators and the admins: a report names a plate on the watch list (with the note
    it was added with, cut to fit, and the last other street it was seen on, if any)."""
    street, ref, when = new
    head = f"{_clipped(scheme, 40)}: WATCHED plate {plate} reported {_seen(_clipped(street or '', 40) or None, ref, when)}"
    if earlier:
        other, other_ref, other_when = earlier
        head += f", also {_seen(_clipped(other, 40), other_ref, other_when, clock=False)}"
    note = " ".join((note or "").split())
    for tail in ([f" {url}"] if url else []) + [""]:
        text = segments.fit(head + ". Note: ", note, tail, MAX_PLATE_SEGMENTS) if note else f"{head}.{tail}"
        if segments.count(text) <= MAX_PLATE_SEGMENTS:
            break
    return text
