"""The one place that reads the environment (and `.env`); simulator mode is decided here."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

from dotenv import dotenv_values


class ConfigError(ValueError):
    """A setting has a value the hotline cannot use."""


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> "QuietHours":
        try:
            start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError as exc:
            raise ConfigError(f"HOTLINE_QUIET_HOURS must look like 22:00-07:00, not {text!r}") from exc
        return cls(start, end)

    def contains(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class Config:
    instance_path: Path
    database_url: str
    secret_key: str
    public_url: str | None
    account_sid: str | None
    auth_token: str | None
    api_url: str
    from_number: str | None
    messaging_service_sid: str | None
    send_rate: float
    call_rate: float
    call_concurrency: int
    scheme_name: str
    timezone: ZoneInfo
    quiet_hours: QuietHours
    retention_days: int
    pending_days: int
    incident_minutes: int = 60  # a reply or a reporter's text counts as a follow-up of an incident this long
    check_minutes: int = 20  # after an urgent alert, a "check on me" member's silence is reported after this
    escalate_minutes: int = 15  # a held report or a JOIN waits this long before coordinators, then admins, are texted
    db_timeout_seconds: float = 3.0  # the longest one wait on the database may take: a connect, a statement, a lock
    backup_dir: Path | None = None  # where the daily backup is written; None: <instance>/backups
    backup_keep: int = 7  # daily backups kept in backup_dir, the newest
    metrics_token: str | None = None  # GET /metrics wants `Authorization: Bearer <token>`; None: loopback only
    metrics_multiprocess_dir: str | None = None  # gunicorn: prometheus_client's shared files (set by `hotline web`)
    # Not part of the operator contract: knobs for tests and tuning.
    proxy_hops: int = 0
    max_reports_per_hour: int = 5
    max_reports_per_day: int = 20
    duplicate_window_minutes: int = 10
    max_replies_per_hour: int = 10  # per number: a flood of texts cannot make us send a flood of replies
    max_replies_per_hour_total: int = 500  # all numbers together: a spoofed flood from many numbers cannot either
    replies_reserved_for_members: int | None = None  # of that total, kept for members' texts; None: a fifth of it
    sms_validity_seconds: int = 3600
    max_send_attempts: int = 6
    dispatch_lease_seconds: float = 30
    dispatch_poll_seconds: float = 1.0  # the dispatcher's safety-net poll; new deliveries wake it (delivery/wake.py)
    rest_timeout_seconds: float = 10.0
    retry_base_seconds: float = 5.0
    testing: bool = False
    simulator_step_seconds: float = 0.5  # simulator mode: the gap between one status callback and the next
    simulator_ring_seconds: float = 30.0  # simulator mode: an alert call rings this long before the answering machine takes it
    extra: dict = field(default_factory=dict)

    @property
    def member_reply_reserve(self) -> int:
        """Replies an hour only members and coordinators may have: strangers are answered until the hour's
        replies reach the total minus this, members until they reach the total."""
        reserve = self.max_replies_per_hour_total // 5 if self.replies_reserved_for_members is None else self.replies_reserved_for_members
        return min(reserve, self.max_replies_per_hour_total)

    @property
    def simulator(self) -> bool:
        """No Twilio credentials at all: nothing leaves the machine."""
        return not (self.account_sid or self.auth_token)

    def with_overrides(self, **changes) -> "Config":
        return replace(self, **changes)


def _secret_key(instance_path: Path) -> str:
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # Several gunicorn workers may get here at once: write aside, then link into place, which only
    # one of them can do; the others read the winner's key, so every worker signs with the same one.
    draft = instance_path / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    draft.write_text(key)
    draft.chmod(0o600)
    try:
        os.link(draft, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        draft.unlink()
    return key


def _number(env: dict, name: str, default: str, kind=float):
    raw = env.get(name) or default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be above zero")
    return value


def _replies_reserved(env: dict) -> int | None:
    """HOTLINE_REPLIES_RESERVED_FOR_MEMBERS: unset, a fifth of the total; 0 turns the reserve off."""
    raw = env.get("HOTLINE_REPLIES_RESERVED_FOR_MEMBERS")
    if not raw:
        return None
    if not raw.isdecimal():
        raise ConfigError(f"HOTLINE_REPLIES_RESERVED_FOR_MEMBERS must be a whole number, not {raw!r}")
    return int(raw)


def load(instance_path: Path, overrides: dict | None = None, environ: dict | None = None) -> Config:
    """Read settings from `.env` (in the working directory) and the environment, environment first."""
    env = {k: v for k, v in dotenv_values(Path.cwd() / ".env").items() if v is not None}
    env.update(os.environ if environ is None else environ)
    env = {k: v.strip() if isinstance(v, str) else v for k, v in env.items()}

    sid, token = env.get("TWILIO_ACCOUNT_SID") or None, env.get("TWILIO_AUTH_TOKEN") or None
    if bool(sid) != bool(token):
        raise ConfigError("set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or neither (simulator mode)")
    instance_path = Path(instance_path)
    try:
        zone = ZoneInfo(env.get("HOTLINE_TIMEZONE") or "Europe/London")
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        raise ConfigError(f"unknown HOTLINE_TIMEZONE {env.get('HOTLINE_TIMEZONE')!r}") from exc

    config = Config(
        instance_path=instance_path,
        database_url=env.get("HOTLINE_DATABASE_URL") or f"sqlite:///{instance_path / 'hotline.db'}",
        secret_key=env.get("HOTLINE_SECRET_KEY") or _secret_key(instance_path),
        public_url=(env.get("HOTLINE_PUBLIC_URL") or "").rstrip("/") or None,
        account_sid=sid,
        auth_token=token,
        api_url=(env.get("TWILIO_API_URL") or "https://api.twilio.com").rstrip("/"),
        from_number=env.get("HOTLINE_FROM_NUMBER") or None,
        messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID") or None,
        send_rate=_number(env, "HOTLINE_SEND_RATE", "10"),
        call_rate=_number(env, "HOTLINE_CALL_RATE", "1"),
        call_concurrency=_number(env, "HOTLINE_CALL_CONCURRENCY", "2", int),
        scheme_name=env.get("HOTLINE_SCHEME_NAME") or "Street Watch",
        timezone=zone,
        quiet_hours=QuietHours.parse(env.get("HOTLINE_QUIET_HOURS") or "22:00-07:00"),
        retention_days=_number(env, "HOTLINE_RETENTION_DAYS", "180", int),
        pending_days=_number(env, "HOTLINE_PENDING_DAYS", "14", int),
        incident_minutes=_number(env, "HOTLINE_INCIDENT_MINUTES", "60", int),
        check_minutes=_number(env, "HOTLINE_CHECK_MINUTES", "20", int),
        escalate_minutes=_number(env, "HOTLINE_ESCALATE_MINUTES", "15", int),
        db_timeout_seconds=_number(env, "HOTLINE_DB_TIMEOUT", "3"),
        backup_dir=Path(env["HOTLINE_BACKUP_DIR"]) if env.get("HOTLINE_BACKUP_DIR") else instance_path / "backups",
        backup_keep=_number(env, "HOTLINE_BACKUP_KEEP", "7", int),
        metrics_token=env.get("HOTLINE_METRICS_TOKEN") or None,
        metrics_multiprocess_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        proxy_hops=int(env.get("HOTLINE_PROXY_HOPS") or 0),
        max_reports_per_hour=_number(env, "HOTLINE_REPORTS_PER_HOUR", "5", int),
        max_reports_per_day=_number(env, "HOTLINE_REPORTS_PER_DAY", "20", int),
        max_replies_per_hour=_number(env, "HOTLINE_REPLIES_PER_HOUR", "10", int),
        max_replies_per_hour_total=_number(env, "HOTLINE_REPLIES_PER_HOUR_TOTAL", "500", int),
        replies_reserved_for_members=_replies_reserved(env),
        max_send_attempts=_number(env, "HOTLINE_SEND_ATTEMPTS", "6", int),
        dispatch_lease_seconds=_number(env, "HOTLINE_DISPATCH_LEASE", "30"),
        rest_timeout_seconds=_number(env, "HOTLINE_REST_TIMEOUT", "10"),
        retry_base_seconds=_number(env, "HOTLINE_RETRY_BASE", "5"),
        dispatch_poll_seconds=_number(env, "HOTLINE_DISPATCH_POLL", "1"),
    )
    if not config.simulator and not (config.from_number or config.messaging_service_sid):
        raise ConfigError("with Twilio credentials, set HOTLINE_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
    return config.with_overrides(**(overrides or {}))
