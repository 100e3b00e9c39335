"""Every sentence a resident reads or hears, in one place, marked for translation (gettext).

Each function answers in the language of the block it runs in (`translations.speaking(code)`); what
residents wrote or said is passed through as written. Placeholders are `{name}` fields: a translator
moves them, never renames or drops them (tests/residents/test_languages.py checks every catalogue).
Keywords (STOP, JOIN, OK, R42 …) stay in English in every language: they are what a resident types.
English replies are kept to one SMS segment; most other scripts are UCS-2 (70 characters a segment).
"""

from __future__ import annotations

import logging
from datetime import datetime

from hotline import translations
from hotline.delivery import segments

MAX_BROADCAST_SEGMENTS = 3
log = logging.getLogger(__name__)


def _fill(text: str, source: str, fields: dict) -> str:
    if not fields:
        return text
    try:
        return text.format(**fields)
    except (KeyError, IndexError, ValueError):  # a translator broke a placeholder: English, never an error
        log.error("broken placeholder in the %s catalogue for %r", translations.current(), source)
        return source.format(**fields)


def _(msgid: str, **fields) -> str:
    """The sentence in the current language, with its `{fields}` filled in."""
    return _fill(translations.translations().gettext(msgid), msgid, fields)


def _n(singular: str, plural: str, count: int, **fields) -> str:
    """A sentence with a number in it, in the current language's plural form; `{count}` is the number."""
    text = translations.translations().ngettext(singular, plural, count)
    return _fill(text, singular if count == 1 else plural, {"count": count, **fields})


def N_(msgid: str) -> str:
    """Marked for the catalogue, translated where it is used."""
    return msgid


def emergency() -> str:
    return _("Emergency? Call 999")


def _names(names: list[str]) -> str:
    if translations.current() != translations.DEFAULT and len(names) > 1:
        from babel.lists import format_list

        return format_list(list(names), locale=translations.current())
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _hhmm(local: datetime) -> str:
    return f"{local:%H:%M}"


def _day_month(local: datetime) -> str:
    """`29 Nov`, or the language's own short month."""
    if translations.current() == translations.DEFAULT:
        return f"{local:%d %b}"
    from babel.dates import format_date

    return format_date(local, "d MMM", locale=translations.current())


# --- broadcasts ---------------------------------------------------------------------------


def watch_name(street_name: str) -> str:
    return _("{street} Watch", street=street_name)


def _alert_tails(ref: str) -> list[str]:
    """How to answer an alert, most helpful first; the first that keeps the alert in one SMS is used."""
    return [
        # NOTE: the tail of an alert; OK and R42 are keywords and stay in English.
        _(". Reply OK if seen, or {ref} and your news to add to it. Emergency 999", ref=ref),
        _(". Reply OK if seen, {ref} + news to add. Emergency 999", ref=ref),
        _(". Reply OK if seen, {ref}+news to add. 999", ref=ref),
        _(". Reply OK if seen. 999"),
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


def _urgent() -> str:
    return _("URGENT: ")


def broadcast(street_name: str, ref: str, local_time: datetime, text: str, *, urgent: bool = False) -> str:
    """The alert neighbours get: never who sent it, at most three segments (the log keeps the rest)."""
    head = _("{watch} {ref} {time}: ", watch=watch_name(street_name), ref=ref, time=_hhmm(local_time))
    return _alert(head + (_urgent() if urgent else ""), text, ref)


def update_alert(ref: str, local_time: datetime, text: str, *, urgent: bool = False) -> str:
    """A follow-up of incident `ref`, to the streets its first alert went to."""
    head = _("Update {ref} {time}: ", ref=ref, time=_hhmm(local_time))
    return _alert(head + (_urgent() if urgent else ""), text, ref)


def all_clear(ref: str, words: str | None) -> str:
    words = " ".join((words or "").split()).rstrip(".") or _("the coordinators say it is over")
    return segments.fit(_("All clear {ref}: ", ref=ref), words, _(". Thank you for looking out."), MAX_BROADCAST_SEGMENTS)


# --- replies to reports -------------------------------------------------------------------


def report_ack(ref: str, count: int) -> str:
    if count == 0:
        return _("Thanks, report {ref} is logged, but no neighbours can get alerts yet. {emergency}", ref=ref, emergency=emergency())
    return _n(
        "Thanks, report {ref} sent to {count} neighbour. {emergency}",
        "Thanks, report {ref} sent to {count} neighbours. {emergency}",
        count, ref=ref, emergency=emergency(),
    )


def report_held(ref: str) -> str:
    return _("Thanks, report {ref} is logged. A coordinator will check it before it goes out. {emergency}", ref=ref, emergency=emergency())


def over_hourly_limit(ref: str, limit: int) -> str:
    return _n(
        "Report {ref} is logged but not sent: the limit is {count} report an hour. {emergency}",
        "Report {ref} is logged but not sent: the limit is {count} reports an hour. {emergency}",
        limit, ref=ref, emergency=emergency(),
    )


def over_daily_limit(ref: str, limit: int) -> str:
    return _n(
        "Report {ref} is logged but not sent: the limit is {count} report a day. {emergency}",
        "Report {ref} is logged but not sent: the limit is {count} reports a day. {emergency}",
        limit, ref=ref, emergency=emergency(),
    )


def duplicate_report(ref: str) -> str:
    return _("You sent that a few minutes ago, so {ref} is logged but not sent again. {emergency}", ref=ref, emergency=emergency())


def empty_report() -> str:
    return _("Your message was empty. Text what you saw to alert your street. {emergency}", emergency=emergency())


def urgent_needs_text() -> str:
    return _("Text URGENT followed by what you saw, e.g. URGENT man in my garden. {emergency}", emergency=emergency())


# --- incidents: updates, the all-clear, the outcome --------------------------------------


def update_ack(ref: str, count: int) -> str:
    return _n(
        "Thanks, your update to {ref} is sent to {count} neighbour. {emergency}",
        "Thanks, your update to {ref} is sent to {count} neighbours. {emergency}",
        count, ref=ref, emergency=emergency(),
    )


def update_held(ref: str) -> str:
    return _(
        "Thanks, your update to {ref} is logged. A coordinator will check it before it goes out. {emergency}",
        ref=ref, emergency=emergency(),
    )


def update_over_limit(ref: str, limit: int, period: str) -> str:
    """`period` is "an hour" or "a day"."""
    if period == "a day":
        return _n(
            "Your update to {ref} is logged but not sent: the limit is {count} report a day. {emergency}",
            "Your update to {ref} is logged but not sent: the limit is {count} reports a day. {emergency}",
            limit, ref=ref, emergency=emergency(),
        )
    return _n(
        "Your update to {ref} is logged but not sent: the limit is {count} report an hour. {emergency}",
        "Your update to {ref} is logged but not sent: the limit is {count} reports an hour. {emergency}",
        limit, ref=ref, emergency=emergency(),
    )


def update_duplicate(ref: str) -> str:
    return _("You sent that a few minutes ago, so your update to {ref} is not sent again. {emergency}", ref=ref, emergency=emergency())


def closed_so_new_report(old_ref: str, reply: str) -> str:
    """`R42 …` when R42 is closed or unknown: it went as a new report; `reply` says how that went."""
    return _("{ref} is closed, so this is a new report. {reply}", ref=old_ref, reply=reply)


OUTCOME_WORDS = {
    "police_informed": N_("the police have been informed"),
    "resolved": N_("it has been resolved"),
    "false_alarm": N_("it turned out to be a false alarm"),
    "no_further_action": N_("no further action will be taken"),
}


def outcome_words(outcome: str) -> str:
    return _(OUTCOME_WORDS[outcome]) if outcome in OUTCOME_WORDS else outcome


def outcome_to_reporter(scheme: str, ref: str, outcome: str, note: str | None) -> str:
    text = _("{scheme}: about your report {ref}, {outcome}.", scheme=scheme, ref=ref, outcome=outcome_words(outcome))
    note = " ".join((note or "").split())
    if note:
        return segments.fit(text + " ", note, " " + _("Thank you."), 2)
    return text + " " + _("Thank you for reporting it.")


def voice_outcome(ref: str, outcome: str, note: str | None) -> str:
    """First thing on the next call of a reporter with no mobile: what became of their report."""
    note = " ".join((note or "").split())
    return (_("Before the menu, news about your report, {ref}: {outcome}.", ref=spoken_ref(ref), outcome=outcome_words(outcome))
            + f" {note}").strip()


def escalation_held(ref: str, streets: list[str], minutes: int, text: str | None) -> str:
    """To a coordinator (then an admin) when a held report waits too long; the reply works as a command."""
    head = _('{ref} for {streets} has waited {minutes} min for a decision: "', ref=ref, streets=_names(streets), minutes=minutes)
    tail = _('". Reply SEND {ref} or DROP {ref}.', ref=ref)
    return segments.fit(head, " ".join((text or _("a recording")).split()), tail, 2)


def escalation_join(code: str, street: str, who: str, minutes: int) -> str:
    return _(
        "{who} has waited {minutes} min to join {street} ({code}). Reply APPROVE {code} or REJECT {code}.",
        who=who, minutes=minutes, street=street, code=code,
    )


def check_on_me(ref: str, local_time: datetime, people: list[str]) -> str:
    """To a street's coordinators: "check on me" members who have not confirmed an urgent alert."""
    head = _("Please check on {people}: ", people="; ".join(people))
    text = _("no word from them since urgent alert {ref} at {time}", ref=ref, time=_hhmm(local_time))
    return segments.fit(head, text, ".", 3)


def coordinator_cleared(ref: str, count: int) -> str:
    return _n(
        "All clear for {ref} is going to {count} person. {ref} is closed.",
        "All clear for {ref} is going to {count} people. {ref} is closed.",
        count, ref=ref,
    )


def coordinator_not_open(ref: str) -> str:
    return _("{ref} is not an open incident (already clear, closed, or not known). Nothing was sent.", ref=ref)


# --- strangers, joining, pending ----------------------------------------------------------


def how_to_join(scheme: str) -> str:
    return _(
        "This is the {scheme} hotline. To join your street's alerts, text JOIN and your street, e.g. JOIN Clayhall Ave. {emergency}",
        scheme=scheme, emergency=emergency(),
    )


def logged_for_stranger(scheme: str) -> str:
    return _(
        "Your message is logged for the {scheme} coordinators. To get street alerts, text JOIN and your street name. {emergency}",
        scheme=scheme, emergency=emergency(),
    )


def logged_while_pending(street_names: list[str]) -> str:
    return _(
        "Your request to join {streets} is waiting for a coordinator. Your message is logged for them. {emergency}",
        streets=_names(street_names), emergency=emergency(),
    )


def join_needs_street() -> str:
    return _("Text JOIN followed by your street name, postcode or street code, e.g. JOIN Clayhall Ave.")


def join_unknown(candidates: list[str]) -> str:
    if candidates:
        return _("Sorry, we don't know that street. Did you mean {streets}? Text JOIN and the name.", streets=_names(candidates[:3]))
    return _("Sorry, we don't know that street. Text JOIN and your street name, postcode or street code.")


def join_ambiguous(candidates: list[str]) -> str:
    return _("Which street? {streets}. Text JOIN and the full name.", streets=_names(candidates[:3]))


def join_pending(street: str) -> str:
    return _("Thanks. Your request to join {watch} is with a coordinator. We'll text you when it's approved.", watch=watch_name(street))


def join_active(street: str) -> str:
    return _(
        "Welcome to {watch}. Text what you see to alert your neighbours. HELP for commands. {emergency}",
        watch=watch_name(street), emergency=emergency(),
    )


def already_member(street: str) -> str:
    return _(
        "You're already in {watch}. Text what you see to alert your neighbours. {emergency}",
        watch=watch_name(street), emergency=emergency(),
    )


def join_while_opted_out(street: str) -> str:
    return _("You asked to join {street}, but you opted out of all messages. Text START to get them again.", street=street)


def approved(street: str) -> str:
    return _(
        "You're now in {watch}. Text what you see to alert your neighbours. HELP for commands. {emergency}",
        watch=watch_name(street), emergency=emergency(),
    )


def approved_by_call(scheme: str, street: str) -> str:
    """Said on a call to a member who gets alerts by phone (a landline cannot read a text)."""
    return _(
        "This is {scheme}. You are now a member of {watch}. Alerts for your street will come to this"
        " phone as a call. To report something, call this number back and press 1. If a crime is happening, dial 999.",
        scheme=scheme, watch=watch_name(street),
    )


# --- keywords -----------------------------------------------------------------------------


def help_text(scheme: str) -> str:
    return _(
        "{scheme}: text what you see to alert your street. OK = seen. R42 + news adds to R42."
        " JOIN street, LEAVE, CALL ME, TEXT ME, URGENT, LANGUAGE, STOP. 999",
        scheme=scheme,
    )


def opted_out(scheme: str) -> str:
    return _("You won't get any more messages from {scheme}. Text START to get them again.", scheme=scheme)


def opted_in(scheme: str, active_streets: list[str]) -> str:
    if active_streets:
        return _("Welcome back to {scheme}. You'll get alerts for {streets} again.", scheme=scheme, streets=_names(active_streets))
    return _("Welcome back to {scheme}. To get street alerts, text JOIN and your street name.", scheme=scheme)


def left(street_names: list[str]) -> str:
    return _("You've left {streets}. No more alerts. Text JOIN and a street name to join again.", streets=_names(street_names))


def not_a_member(scheme: str) -> str:
    return _("You're not in any {scheme} street yet. Text JOIN and your street name.", scheme=scheme)


def alerts_by_call() -> str:
    return _("From now on your alerts come as a phone call. Text TEXT ME to get them by text again.")


def alerts_by_text() -> str:
    return _("From now on your alerts come by text. Text CALL ME to get them as a phone call.")


def stopped_calls_sms() -> str:
    return _("You asked us to stop alert calls. Alerts now come by text. Text CALL ME to get calls again, STOP to end all.")


# --- languages ----------------------------------------------------------------------------


def language_choices() -> str:
    """The answer to LANGUAGE: how to choose (in the member's language), then each choice in its own script."""
    listed = ", ".join(f"{n} {lang.native}" for n, lang in enumerate(translations.LANGUAGES.values(), start=1))
    return _("Reply LANGUAGE and a number:") + " " + listed


def language_set(scheme: str) -> str:
    """Said in the language just chosen."""
    # NOTE: name your own language where the English says "in English".
    return _("From now on {scheme} writes to you in English. Text LANGUAGE to choose another.", scheme=scheme)


# --- things a caller hears (alert calls) ---------------------------------------------------


def voice_again() -> str:
    """Before an alert said a second time (for an answering machine that picked up late)."""
    return _("Again:")


def alert_call(scheme: str, street: str, local_time: datetime, text: str) -> str:
    return _("This is {scheme}, with an alert for {street}, at {time}.", scheme=scheme, street=street, time=_hhmm(local_time)) + f" {text}"


def update_call(scheme: str, street: str, local_time: datetime, text: str) -> str:
    return _(
        "This is {scheme}, with an urgent update for {street}, at {time}.", scheme=scheme, street=street, time=_hhmm(local_time)
    ) + f" {text}"


def all_clear_call(scheme: str, street: str, alert_time: datetime, words: str | None) -> str:
    said = " ".join((words or "").split())
    return (_(
        "This is {scheme}. All clear for {street}: the alert of {time} is over.", scheme=scheme, street=street, time=_hhmm(alert_time)
    ) + f" {said}").strip()


def sorry_try_later() -> str:
    return _("Sorry, the hotline could not take your message just now. Please try again in a minute. {emergency}", emergency=emergency())


# --- the voice menu: what a caller hears ---------------------------------------------------


def say_999() -> str:
    return _("If a crime is happening now, hang up and dial 999.")


def spoken_time(local: datetime) -> str:
    """`2:05 pm`, `9 am`: how a person says a time (in other languages, the language's own short time)."""
    if translations.current() != translations.DEFAULT:
        from babel.dates import format_time

        return format_time(local, "short", locale=translations.current())
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{hour}{minutes} {'am' if local.hour < 12 else 'pm'}"


def spoken_when(local: datetime, today_local: datetime) -> str:
    days = (today_local.date() - local.date()).days
    if days <= 0:
        return _("today at {time}", time=spoken_time(local))
    if days == 1:
        return _("yesterday at {time}", time=spoken_time(local))
    if translations.current() == translations.DEFAULT:
        day = f"{local:%A}"
    else:
        from babel.dates import format_date

        day = format_date(local, "EEEE", locale=translations.current())
    return _("on {day} at {time}", day=day, time=spoken_time(local))


def spoken_ref(ref: str) -> str:
    return f"{ref[0]} {ref[1:]}"


def voice_greeting(scheme: str, street_names: list[str]) -> str:
    if street_names:
        return _("Welcome to {scheme} for {streets}.", scheme=scheme, streets=_names(street_names)) + " " + say_999()
    return _("Welcome to the {scheme} hotline.", scheme=scheme) + " " + say_999()


def voice_main_menu() -> str:
    return _(
        "To report something, press 1. To hear the latest alerts, press 2. "
        "To change how you get alerts, press 3. For another language, press 8. To hear this again, press 9."
    )


def voice_pending(street_names: list[str]) -> str:
    return _(
        "Your request to join {streets} is waiting for a coordinator. Once it is approved, "
        "you will get alerts. To leave a message for the coordinators, press 1. To hear this again, press 9.",
        streets=_names(street_names),
    )


def voice_opted_out(scheme: str) -> str:
    return _(
        "You asked {scheme} to stop all messages to this number, so you get no alerts. "
        "To get alerts again, press 1. To hear this again, press 9.",
        scheme=scheme,
    )


def voice_join_prompt() -> str:
    return _(
        "To join your street's alerts, key in your street's code, then the hash key. "
        "Or say the name of your street."
    )


def voice_withheld(scheme: str) -> str:
    return _(
        "This is the {scheme} hotline. Your number is withheld, so we cannot tell who is calling. "
        "Please call again without withholding your number, or send a text.",
        scheme=scheme,
    ) + " " + say_999() + " " + _("Goodbye.")


def voice_no_input() -> str:
    return _("Sorry, I didn't hear anything.")


def voice_wrong_key() -> str:
    return _("Sorry, that key is not one of the choices.")


def voice_goodbye() -> str:
    return _("Sorry we could not help this time. Please call again later, or ask your street's coordinator. Goodbye.")


def voice_error() -> str:
    return (_("Sorry, the hotline is not working properly just now.") + " " + say_999() + " "
            + _("Otherwise, please try again later. Goodbye."))


def voice_anything_else() -> str:
    return _("If there is nothing else, you can hang up now.")


# choosing a language by phone (8)

def voice_language_choice(number: int, language) -> str:
    """One line of the language menu, said in that language by its own voice (a language with no voice of its
    own is named in English by the English voice: README, "Languages")."""
    name = language.native if language.speaks == language.code else language.english
    # NOTE: {language} is your language's own name; {key} is the key to press.
    return _("For {language}, press {key}.", language=name, key=number)


def voice_language_more() -> str:
    return _("To go back, press 0. To hear this again, press 9.")


def voice_language_set() -> str:
    """Said in the language just chosen."""
    # NOTE: name your own language where the English says "in English".
    return _("Done. From now on the hotline speaks to you in English.")


# reporting by phone

def voice_report_prompt() -> str:
    return _("Please say what you saw, and where. When you have finished, stop talking and wait.")


def voice_report_again() -> str:
    return _("Sorry, I did not catch that. Please say it again, slowly and clearly.")


def voice_read_back(text: str) -> str:
    return _("I heard: {text}.", text=text)


def voice_check_menu() -> str:
    return _(
        "To send it, press 1. To say it again, press 2. To cancel, press 3. "
        "If it is urgent, and neighbours' phones should ring even at night, press 4. To hear it again, press 9."
    )


def voice_record_prompt() -> str:
    return _(
        "Sorry, I still could not make that out. After the tone, say what you saw, then press the hash key. "
        "A coordinator will listen to it."
    )


def voice_nothing_recorded() -> str:
    return _("Sorry, nothing was recorded.")


def voice_report_cancelled() -> str:
    return _("Cancelled. Nothing was sent.")


def voice_report_not_sent() -> str:
    return _("Your report was not sent. Please call again when you are ready. Goodbye.")


def voice_report_sent(ref: str, count: int) -> str:
    if count == 0:
        return _("Thank you. Your report, {ref}, is logged, but no neighbours can get alerts yet.", ref=spoken_ref(ref))
    return _n(
        "Thank you. Your report, {ref}, has gone to {count} neighbour.",
        "Thank you. Your report, {ref}, has gone to {count} neighbours.",
        count, ref=spoken_ref(ref),
    )


def voice_report_held(ref: str) -> str:
    return _("Thank you. Your report, {ref}, is logged. A coordinator will check it before it goes out.", ref=spoken_ref(ref))


def voice_recording_held() -> str:
    return _("Thank you. Your message is recorded. A coordinator will listen to it before it goes to your street.")


def voice_over_limit(limit: int, period: str) -> str:
    """`period` is "an hour" or "a day"."""
    if period == "a day":
        return _n(
            "Your report is logged, but not sent: the limit is {count} report a day.",
            "Your report is logged, but not sent: the limit is {count} reports a day.", limit,
        )
    return _n(
        "Your report is logged, but not sent: the limit is {count} report an hour.",
        "Your report is logged, but not sent: the limit is {count} reports an hour.", limit,
    )


def voice_duplicate() -> str:
    return _("You sent that a few minutes ago, so it is logged but not sent again.")


def voice_logged_for_coordinators() -> str:
    return _("Thank you. Your message is logged for the coordinators.")


# hearing the latest alerts

def voice_no_alerts() -> str:
    return _("There have been no alerts for your street in the past week.")


def voice_alerts_intro(count: int) -> str:
    return _n("Here is the latest alert.", "Here are the latest {count} alerts, newest first.", count)


def voice_alert_item(when: str, street: str | None, text: str | None) -> str:
    when = when[0].upper() + when[1:]
    said = text or _("a recorded message, passed on by a coordinator")
    if street:
        return _("{when}, {street}: {text}.", when=when, street=street, text=said)
    return _("{when}: {text}.", when=when, text=said)


def voice_update_item(when: str, text: str | None) -> str:
    return _("Update {when}: {text}.", when=when, text=text or _("a recorded message"))


def voice_all_clear_item(words: str | None) -> str:
    words = " ".join((words or "").split())
    return (_("That is now all clear.") + f" {words}").strip()


def voice_update_or_new(ref: str) -> str:
    return _(
        "Is this more news about your earlier report, {ref}? If it is, press 1, and it goes to the same "
        "neighbours as an update. If it is something new, press 2. To hear this again, press 9.",
        ref=spoken_ref(ref),
    )


def voice_update_sent(ref: str, count: int) -> str:
    return _n(
        "Thank you. Your update to {ref} has gone to {count} neighbour.",
        "Thank you. Your update to {ref} has gone to {count} neighbours.",
        count, ref=spoken_ref(ref),
    )


def voice_update_held(ref: str) -> str:
    return _("Thank you. Your update to {ref} is logged. A coordinator will check it before it goes out.", ref=spoken_ref(ref))


# changing how alerts come

def voice_settings(by_call: bool, can_text: bool, street_names: list[str]) -> str:
    now = _("At the moment your alerts come as a phone call.") if by_call else _("At the moment your alerts come by text message.")
    text = (" " + _("To get alerts by text message, press 1.")) if can_text else ""
    return now + text + " " + _(
        "To get alerts as a phone call, press 2. "
        "To leave {streets} and stop alerts, press 3. To go back, press 0. To hear this again, press 9.",
        streets=_names(street_names),
    )


def voice_alerts_by_text() -> str:
    return _("Done. From now on your alerts come by text message.")


def voice_alerts_by_call() -> str:
    return _("Done. From now on your alerts come as a phone call.")


def voice_cannot_text() -> str:
    return _("This phone cannot get text messages, so your alerts stay as phone calls.")


def voice_leave_confirm(street_names: list[str]) -> str:
    return _("You will stop getting alerts for {streets}. To leave, press 1. To stay, press 2.", streets=_names(street_names))


def voice_left(street_names: list[str]) -> str:
    return _("You have left {streets}, and will get no more alerts. Goodbye.", streets=_names(street_names))


# joining by phone

def voice_join_confirm(street: str) -> str:
    return _("{street}. To join {watch}, press 1. To choose a different street, press 2.", street=street, watch=watch_name(street))


def voice_street_unknown(candidates: list[str]) -> str:
    if candidates:
        return _("Sorry, I could not find that street. Did you mean {streets}?", streets=_names(candidates[:3]))
    return _("Sorry, I could not find that street.")


def voice_street_ambiguous(candidates: list[str]) -> str:
    return _(
        "There is more than one street like that: {streets}. Please say the full name, or key in its code.",
        streets=_names(candidates[:3]),
    )


def voice_code_not_digits() -> str:
    return _("Sorry, street codes are numbers.")


def voice_joined_pending(street: str) -> str:
    return _(
        "Thank you. Your request to join {watch} is with a coordinator. Once it is approved, "
        "alerts will come to this phone.", watch=watch_name(street),
    ) + " " + say_999() + " " + _("Goodbye.")


def voice_joined_active(street: str, by_call: bool) -> str:
    if by_call:
        return _("Welcome to {watch}. Alerts will come to this phone as a call.", watch=watch_name(street))
    return _("Welcome to {watch}. Alerts will come to this phone by text message.", watch=watch_name(street))


def voice_opted_in(scheme: str) -> str:
    return _("Welcome back to {scheme}.", scheme=scheme)


# alert calls

def voice_alert_options() -> str:
    return _("To say you have heard this alert, and hear it again, press 1. To stop these alert calls, press 2.")


def voice_alert_heard() -> str:
    return _("Thank you: we have noted that you heard it.")


def voice_alert_left_on_machine(scheme: str) -> str:
    return _(
        "This was an automated alert from {scheme}. To say you have heard it, call this number and press 1. Goodbye.",
        scheme=scheme,
    )


def voice_unconfirmed(when: str, alert: str) -> str:
    """At the start of a member's call: an alert they have not said they heard (left on a machine, say)."""
    return _(
        "You have an alert from {when} that you have not said you heard. {alert} "
        "To say you have heard it, press 1. For the menu, press 0.",
        when=when, alert=alert,
    )


def voice_confirmed() -> str:
    return _("Thank you: we have noted that you heard it.")


def voice_alert_gone(scheme: str) -> str:
    return _("This is {scheme}. Sorry, this alert is no longer available. Goodbye.", scheme=scheme)


def voice_calls_stopped_to_text() -> str:
    return _("You will not get alert calls any more. Alerts will come by text message instead. Goodbye.")


def voice_calls_stopped(scheme: str) -> str:
    return _("You will not get any more alert calls from {scheme}. To get them again, call this number. Goodbye.", scheme=scheme)


def voice_alert_goodbye() -> str:
    return _("Thank you for listening. Goodbye.")

# --- announcements from coordinators --------------------------------------------------------

MAX_ANNOUNCEMENT_SEGMENTS = 3


def announcement(scheme: str, text: str) -> str:
    """What members get when a coordinator announces something (a meeting, a warning)."""
    return f"{scheme}: " + " ".join(text.split())


def announcement_call(scheme: str, text: str) -> str:
    return _("This is {scheme}, with a message from your coordinators.", scheme=scheme) + " " + " ".join(text.split())


# --- replies to a coordinator's phone (APPROVE, REJECT, SEND, DROP) -------------------------


def coordinator_approved(who: str, street_names: list[str]) -> str:
    return _("Approved {who} for {streets}. They have been told.", who=who, streets=_names(street_names))


def coordinator_rejected(who: str, street_names: list[str]) -> str:
    return _("Rejected {who} for {streets}.", who=who, streets=_names(street_names))


def coordinator_nothing_pending(who: str) -> str:
    return _("{who} has no request waiting on your streets.", who=who)


def coordinator_unknown_member(who: str) -> str:
    return _("No member matches {who}. Text APPROVE or REJECT with their phone number or name.", who=repr(who))


def coordinator_ambiguous_member(who: str, count: int) -> str:
    return _n(
        "{count} member matches {who}. Text APPROVE or REJECT with their phone number.",
        "{count} members match {who}. Text APPROVE or REJECT with their phone number.",
        count, who=repr(who),
    )


def coordinator_report_sent(ref: str, count: int) -> str:
    return _n("Report {ref} sent to {count} neighbour.", "Report {ref} sent to {count} neighbours.", count, ref=ref)


def coordinator_report_dropped(ref: str) -> str:
    return _("Report {ref} dropped. Nobody was sent it.", ref=ref)


def coordinator_report_not_theirs(ref: str, streets: list[str]) -> str:
    return _(
        "{ref} is held for {streets}: its coordinators or an admin decide it. Nothing was sent.", ref=ref, streets=", ".join(streets)
    )[:300]


def coordinator_report_not_held(ref: str, state: str) -> str:
    return _("Report {ref} is not waiting for a decision (it is {state}).", ref=ref, state=state.replace("_", " "))


def coordinator_report_unknown(ref: str) -> str:
    return _("No report {ref} on your streets.", ref=ref)


def coordinator_report_needs_text(ref: str) -> str:
    return _("Report {ref} is a recording with no text. Type what it says on the web log to send it.", ref=ref)

# --- coordinators ------------------------------------------------------------------------


def digest(scheme: str, *, new_reports: int, held: int, pending: int, failed: int, open_incidents: int = 0,
           without_outcome: int = 0, url: str | None = None) -> str:
    """The daily SMS to a coordinator: only the numbers that need them, and where to look."""
    parts = []
    if new_reports:
        parts.append(_n("{count} new report", "{count} new reports", new_reports))
    if held:
        parts.append(_n("{count} held for you to send or drop", "{count} held for you to send or drop", held))
    if pending:
        parts.append(_n("{count} waiting to join", "{count} waiting to join", pending))
    if failed:
        parts.append(_n("{count} alert not delivered", "{count} alerts not delivered", failed))
    if open_incidents:
        parts.append(_n("{count} incident open", "{count} incidents open", open_incidents))
    if without_outcome:
        parts.append(_n("{count} closed without an outcome", "{count} closed without an outcome", without_outcome))
    where = f" {url}" if url else ""
    return _("{scheme} daily: {parts}.", scheme=scheme, parts="; ".join(parts)) + where


# --- number plates, to coordinators --------------------------------------------------------

MAX_PLATE_SEGMENTS = 2  # the ceiling; with everyday street names each of these fits in one


def _seen(street: str | None, ref: str, local_time: datetime, *, clock: bool = True) -> str:
    when = f"{_day_month(local_time)} {_hhmm(local_time)}" if clock else _day_month(local_time)
    if street:
        return _("on {street} ({ref}, {when})", street=street, ref=ref, when=when)
    return _("with no street ({ref}, {when})", ref=ref, when=when)


def _clipped(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip()


def plate_on_two_streets(scheme: str, plate: str, new: tuple, earlier: tuple, url: str | None = None) -> str:
    """To the coordinators of both streets when a plate turns up on a second one: `new` and `earlier` are
    (street name, reference, local time). Long names are shortened before the message grows past its budget."""
    street, ref, _when = new
    other, other_ref, other_when = earlier
    for limit, link in ((120, True), (120, False), (40, False), (20, False)):
        text = _(
            "{scheme}: plate {plate} is in {ref} ({street}) and {other_ref} ({other}, {other_when}).",
            scheme=_clipped(scheme, limit), plate=plate, ref=ref, street=_clipped(street, limit),
            other_ref=other_ref, other=_clipped(other, limit), other_when=_day_month(other_when),
        ) + (f" {url}" if url and link else "")
        if segments.count(text) <= MAX_PLATE_SEGMENTS:
            break
    return text


def watched_plate(scheme: str, plate: str, new: tuple, note: str, url: str | None = None, earlier: tuple | None = None) -> str:
    """To the street's coordinators and the admins: a report names a plate on the watch list (with the note
    it was added with, cut to fit, and the last other street it was seen on, if any)."""
    street, ref, when = new
    head = _(
        "{scheme}: WATCHED plate {plate} reported {seen}",
        scheme=_clipped(scheme, 40), plate=plate, seen=_seen(_clipped(street or "", 40) or None, ref, when),
    )
    if earlier:
        other, other_ref, other_when = earlier
        head += _(", also {seen}", seen=_seen(_clipped(other, 40), other_ref, other_when, clock=False))
    note = " ".join((note or "").split())
    for tail in ([f" {url}"] if url else []) + [""]:
        text = segments.fit(head + _(". Note: "), note, tail, MAX_PLATE_SEGMENTS) if note else f"{head}.{tail}"
        if segments.count(text) <= MAX_PLATE_SEGMENTS:
            break
    return text
