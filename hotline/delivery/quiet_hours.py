"""When an alert call may ring: at once, or at the end of quiet hours (HOTLINE_QUIET_HOURS) unless urgent.

Every call the hotline queues — a report's alert, an update, an approval, an announcement — takes its
time from here, so a landline is never rung at night for something that can wait. SMS never waits.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def call_release_time(config, now: datetime, urgent: bool) -> datetime:
    """Alert calls wait for the end of quiet hours unless the report is urgent; SMS never waits."""
    local = now.astimezone(config.timezone)
    if urgent or not config.quiet_hours.contains(local.time()):
        return now
    end = local.replace(hour=config.quiet_hours.end.hour, minute=config.quiet_hours.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(timezone.utc)
