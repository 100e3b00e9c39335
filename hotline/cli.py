"""The `hotline` commands: serve / web / worker, and managing streets, members and coordinators."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from hotline import translations  # standard library only: the codes for --language
from hotline.cli_db import db

# Commands import what they use when they run: `hotline --help` (and every command) then pays for Flask and
# the database layer once, not for every room of the app as well.


def _app():
    from hotline import create_app
    
    try:
        return create_app()
    except ValueError as exc:  # ConfigError
        raise click.ClickException(str(exc)) from exc


def _start_dispatcher(app):
    from hotline.delivery.calls import check_caller
    from hotline.delivery.outbox import Dispatcher
    from hotline.delivery.wake import Listener

    rt = app.extensions["hotline"]
    check_caller(rt.carrier)  # a scheme that cannot ring its landlines hears it now, not call by call
    rt.dispatcher = Dispatcher(engine=rt.engine, carrier=rt.carrier, config=rt.config).start()
    Listener(rt.engine, rt.dispatcher.wake).start()  # PostgreSQL: `hotline web` NOTIFYs when it writes deliveries
    return rt.dispatcher


def _log_to_console():
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our jobs log their own summary
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The Twilio library logs every request at INFO (ten lines a send, and a look-up's query names the number).
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


def _start_scheduler(app):
    """Scheduled jobs: only in `serve` and `worker`, never in create_app (gunicorn would run one per worker)."""
    from hotline.ops.scheduler import Scheduler

    return Scheduler(app.extensions["hotline"]).start()


@click.group()
def main():
    """Street Watch hotline."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo", "with_demo", is_flag=True, help="simulator mode: seed a demo scheme first (see `hotline demo`)")
def serve(host, port, with_demo):
    """Web, webhooks and dispatcher in one process (embedded SQLite unless configured)."""
    from hotline.ops import server

    _log_to_console()
    app = _app()
    config = app.extensions["hotline"].config
    seeded = _seed_demo(app) if with_demo else None
    dispatcher = _start_dispatcher(app)
    scheduler = _start_scheduler(app)
    mode = "SIMULATOR mode: nothing is sent" if config.simulator else "Twilio mode"
    click.echo(f"hotline on http://{host}:{port}/ ({mode}; database {config.database_url.split('@')[-1]})")
    if config.simulator:
        click.echo(f"pretend phones: http://{host}:{port}/simulator")
    if seeded:
        click.echo(seeded)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))  # stop as cleanly as on Ctrl-C
    try:
        server.run(host, port, app)
    finally:
        scheduler.stop()
        dispatcher.stop()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
def web(host, port, workers):
    """Web and webhooks only, under gunicorn (run `hotline worker` beside it)."""
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("timeout", 30)

        def load(self):
            return _app()

    _share_metrics_between_workers(port)
    # Fail fast on bad configuration, and bring the schema up to date once before workers start;
    # each worker then builds its own app (and engine) after the fork.
    _app().extensions["hotline"].engine.dispose()
    Gunicorn().run()


def _share_metrics_between_workers(port: int) -> None:
    """GET /metrics is answered by whichever gunicorn worker gets it: prometheus_client's multiprocess mode
    lets each add up every worker's webhook timings. It is chosen by this variable, which must be set
    before the first metric exists (so before the app is built), in a folder emptied at each start."""
    import os
    import shutil

    folder = Path.cwd() / "instance" / f"metrics-{port}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


@main.command()
def worker():
    """The dispatcher (and scheduled jobs): sends what the web process wrote to the outbox."""
    _log_to_console()
    app = _app()
    dispatcher = _start_dispatcher(app)
    scheduler = _start_scheduler(app)
    click.echo(f"hotline worker sending at {dispatcher.config.send_rate}/s")
    sys.stdout.flush()

    def _stop(_signum, _frame):
        scheduler.stop()
        dispatcher.stop()
        click.echo(f"hotline worker stopped: {dispatcher.summary()}")
        sys.exit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    dispatcher.thread.join()


@main.command()
def demo():
    """Simulator mode: seed three streets, members with pretend phones, and an admin coordinator."""
    click.echo(_seed_demo(_app()))


def _seed_demo(app) -> str:
    from hotline.db import session_scope
    from hotline.simulator import demo as demo_scheme

    if not app.extensions["hotline"].config.simulator:
        raise click.ClickException("the demo is for simulator mode only: it would add made-up members to a real scheme")
    with session_scope(runtime_engine(app)) as session:
        login = demo_scheme.seed(session)
    return f"demo scheme ready: 3 streets, {len(demo_scheme.MEMBERS)} members with pretend phones\ncoordinator login: {login.email}  password: {login.password}"


@main.group()
def street():
    """Add and list streets."""


@street.command("add")
@click.argument("name")
@click.option("--code", type=int)
@click.option("--alias", "aliases", multiple=True)
@click.option("--postcode", "postcodes", multiple=True)
@click.option("--open", "is_open", is_flag=True, help="JOINs are active at once, no approval")
@click.option("--moderated", is_flag=True, help="reports wait for a coordinator")
def street_add(name, code, aliases, postcodes, is_open, moderated):
    from sqlmodel import func, select
    
    from hotline.db import session_scope
    from hotline.models import Street
    
    app = _app()
    with session_scope(runtime_engine(app)) as session:
        if session.exec(select(Street).where(Street.name == name.strip())).first():
            raise click.ClickException(f"a street called {name!r} exists already")
        if code is not None and session.exec(select(Street).where(Street.code == code)).first():
            raise click.ClickException(f"street code {code} is taken")
        if code is None:
            code = (session.exec(select(func.max(Street.code))).one() or 100) + 1
        new = Street(name=name.strip(), code=code, aliases=list(aliases), postcodes=[p.upper() for p in postcodes], open=is_open, moderated=moderated)
        session.add(new)
    click.echo(f"added {new.name} (code {new.code})")


@street.command("list")
def street_list():
    from sqlmodel import Session, func, select
    
    from hotline.models import Membership, MembershipStatus, Street
    
    app = _app()
    with Session(runtime_engine(app)) as session:
        for s in session.exec(select(Street).order_by(Street.name)):
            active = session.exec(
                select(func.count(Membership.id)).where(Membership.street_id == s.id, Membership.status == MembershipStatus.ACTIVE)
            ).one()
            flags = ", ".join(f for f, on in (("open", s.open), ("moderated", s.moderated)) if on) or "approval"
            click.echo(f"{s.code:>5}  {s.name}  [{flags}]  {active} active  aliases: {', '.join(s.aliases) or '-'}  postcodes: {', '.join(s.postcodes) or '-'}")


@main.group()
def member():
    """Add and import members."""


@member.command("add")
@click.argument("phone")
@click.option("--street", "street_name", required=True)
@click.option("--call", is_flag=True, help="alerts by phone call instead of SMS")
@click.option("--active", is_flag=True, help="active at once, no approval")
@click.option("--language", type=click.Choice(translations.CODES, case_sensitive=False), default=None,
              help="what the hotline writes and says to them (ISO 639-1; default English)")
def member_add(phone, street_name, call, active, language):
    from hotline import phones
    from hotline.db import session_scope
    from hotline.models import AlertChannel, Member
    from hotline.residents import languages, members

    app = _app()
    try:
        e164 = phones.parse(phone)
    except phones.InvalidPhone as exc:
        raise click.ClickException(str(exc)) from exc
    with session_scope(runtime_engine(app)) as session:
        target = _street(session, street_name)
        membership = members.add(session, e164, target, alerts=AlertChannel.CALL if call else AlertChannel.SMS, active=active)
        if language:
            languages.set_language(session, session.get(Member, membership.member_id), language)
        status = membership.status
    click.echo(f"{phones.mask(e164)} is {status} on {target.name}" + (f" ({translations.LANGUAGES[language.lower()].english})" if language else ""))


@member.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def member_import(file):
    from hotline.db import session_scope
    from hotline.residents import csv_import
    
    app = _app()
    with open(file, encoding="utf-8-sig", newline="") as handle:
        text = handle.read()
    with session_scope(runtime_engine(app)) as session:
        checked = csv_import.check(session, text)
        if checked.errors:
            for error in checked.errors:
                click.echo(error, err=True)
            raise click.ClickException(f"nothing imported: {len(checked.errors)} bad row(s)")
        count = csv_import.apply(session, checked)
    click.echo(f"imported {count} member(s)")


@main.group()
def coordinator():
    """Add coordinators."""


@coordinator.command("add")
@click.argument("email")
@click.option("--admin", is_flag=True)
@click.option("--street", "street_names", multiple=True)
@click.option("--phone")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def coordinator_add(email, admin, street_names, phone, password_stdin):
    from sqlmodel import select
    from werkzeug.security import generate_password_hash

    from hotline import phones
    from hotline.db import session_scope
    from hotline.models import Coordinator, CoordinatorStreet

    app = _app()
    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    try:
        e164 = phones.parse(phone) if phone else None
    except phones.InvalidPhone as exc:
        raise click.ClickException(str(exc)) from exc
    email = email.strip().lower()
    with session_scope(runtime_engine(app)) as session:
        if session.exec(select(Coordinator).where(Coordinator.email == email)).first():
            raise click.ClickException(f"{email} is a coordinator already")
        person = Coordinator(email=email, password_hash=generate_password_hash(password), is_admin=admin, phone=e164)
        session.add(person)
        session.flush()
        for name in street_names:
            session.add(CoordinatorStreet(coordinator_id=person.id, street_id=_street(session, name).id))
    click.echo(f"added coordinator {email}" + (" (admin)" if admin else ""))


main.add_command(db)


def runtime_engine(app):
    return app.extensions["hotline"].engine


def _street(session, name: str):
    from hotline.residents import streets

    try:
        return streets.find(session, name)
    except (streets.StreetNotFound, streets.AmbiguousStreet) as exc:
        hint = f" (closest: {', '.join(exc.candidates)})" if exc.candidates else ""
        raise click.ClickException(f"no single street matches {name!r}{hint}") from exc
