"""Deployment: the compose file's shape, and the same commands it runs — gunicorn with two workers
(`hotline web`) and `hotline worker` on PostgreSQL — serving a signed report end to end."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests
import yaml
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from hotline import create_app
from hotline.models import Delivery, DeliveryState, Report
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, NUMBERS, add_members, add_street
from tests.ops.test_workers import wait_until, worker_env
from tests.standin.processes import HotlineProcess, free_port
from tests.standin.processes import wait_until as eventually
from tests.standin.twilio import TwilioStandIn

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_VARIABLES = {
    "HOTLINE_DATABASE_URL", "HOTLINE_SECRET_KEY", "HOTLINE_PUBLIC_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
    "TWILIO_API_URL", "HOTLINE_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID", "HOTLINE_SEND_RATE", "HOTLINE_CALL_RATE",
    "HOTLINE_CALL_CONCURRENCY", "HOTLINE_SCHEME_NAME", "HOTLINE_TIMEZONE", "HOTLINE_QUIET_HOURS",
    "HOTLINE_RETENTION_DAYS", "HOTLINE_PENDING_DAYS",
}
BEHIND_A_PROXY = {"HOTLINE_PROXY_HOPS"}
OPERATIONS = {"HOTLINE_DB_TIMEOUT", "HOTLINE_BACKUP_KEEP", "HOTLINE_METRICS_TOKEN"}  # the backup folder is the worker's volume


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_postgres_web_and_worker(compose):
    services = compose["services"]
    assert set(services) == {"db", "web", "worker"}
    db = services["db"]
    assert db["image"].startswith("postgres:")
    volume, _, mounted_at = db["volumes"][0].partition(":")
    assert mounted_at == "/var/lib/postgresql/data" and volume in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_compose_web_is_gunicorn_with_several_workers_and_the_worker_runs_alone(compose):
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["command"][:2] == ["hotline", "web"]  # gunicorn serving create_app(), see cli.web
    workers = int(web["command"][web["command"].index("--workers") + 1])
    assert workers >= 2
    assert any(str(port).endswith(":8000") for port in web["ports"])
    assert worker["command"] == ["hotline", "worker"]
    for service in (web, worker):
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert service["build"] == "."


def test_compose_configures_both_by_the_contract_variables(compose):
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["environment"] == worker["environment"]
    names = set(web["environment"])
    assert names == CONTRACT_VARIABLES | BEHIND_A_PROXY | OPERATIONS
    url = web["environment"]["HOTLINE_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@db:5432/" in url
    assert compose["services"]["db"]["environment"]["POSTGRES_DB"] == url.rsplit("/", 1)[1]


def test_dockerfile_installs_the_package_and_serves_the_web(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install -e \.", dockerfile, re.M)
    assert re.search(r'^CMD \["hotline", "web"', dockerfile, re.M)
    assert re.search(r"^USER (?!root)", dockerfile, re.M)


def test_the_image_can_back_up_the_compose_database_and_the_worker_keeps_its_backups(compose):
    """pg_dump must not be older than the server (it refuses), nor newer (its dumps may not restore)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    server = re.fullmatch(r"postgres:(\d+)", compose["services"]["db"]["image"]).group(1)
    assert re.search(rf"apt-get install .*postgresql-client-{server}\b", dockerfile)
    volume, _, mounted_at = compose["services"]["worker"]["volumes"][0].partition(":")
    assert mounted_at == "/app/instance/backups" and volume in compose["volumes"]  # HOTLINE_BACKUP_DIR's default
    assert "chown -R hotline /app/instance" in dockerfile


def test_workers_starting_together_share_one_generated_secret_key(tmp_path):
    script = "import sys; from pathlib import Path; from hotline import config; print(config.load(Path(sys.argv[1]), environ={}).secret_key)"
    starts = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "instance")], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    keys = {process.communicate(timeout=60)[0].strip() for process in starts}
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert sorted(p.name for p in (tmp_path / "instance").iterdir()) == ["secret_key"]


def _signed_sms(base: str, sender: str, body: str, sid: str) -> requests.Response:
    url = f"{base}/twilio/sms"
    form = {"From": sender, "To": "+447400123456", "Body": body, "MessageSid": sid, "AccountSid": ACCOUNT_SID, "NumMedia": "0"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)


@pytest.mark.slow
@pytest.mark.postgres
def test_gunicorn_two_workers_and_a_worker_serve_a_signed_report_end_to_end(postgres_url, tmp_path):
    app = create_app({"testing": True}, instance_path=tmp_path / "instance", environ={"HOTLINE_DATABASE_URL": postgres_url})
    engine = app.extensions["hotline"].engine
    with Session(engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:4])
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, status_callbacks=True) as standin:
        env = worker_env(postgres_url, standin, HOTLINE_PUBLIC_URL=base)
        web = HotlineProcess(["web", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"], env=env, cwd=tmp_path, name="web")
        worker = HotlineProcess(["worker"], env=env, cwd=tmp_path, name="worker")
        try:
            worker.wait_for("scheduler running")
            wait_until(lambda: len(re.findall(r"Booting worker with pid", web.output)) == 2, 60, "two gunicorn workers")
            wait_until(lambda: _healthy(base), 30, "/healthz")

            unsigned = requests.post(f"{base}/twilio/sms", data={"From": NUMBERS[0], "Body": "forged", "MessageSid": "SM" + "f" * 32}, timeout=10)
            assert unsigned.status_code == 403
            answer = _signed_sms(base, NUMBERS[0], "man trying car door handles, red hoodie", "SM" + "a" * 32)
            assert answer.status_code == 200, answer.text
            reply = " ".join(m.text or "" for m in ElementTree.fromstring(answer.content).iter("Message"))
            assert "sent to 3 neighbours" in reply

            def delivered():
                with Session(engine) as session:
                    states = session.exec(select(Delivery.state)).all()
                return len(states) == 3 and set(states) == {DeliveryState.DELIVERED}

            if not eventually(delivered, 60):
                with Session(engine) as session:
                    rows = session.exec(select(Delivery.state, Delivery.sid, Delivery.attempts)).all()
                pytest.fail(f"three deliveries marked delivered by signed status callbacks: not within 60 s; deliveries {rows},"
                            f" callback errors {standin.callback_errors}\n--- web\n{web.output}\n--- worker\n{worker.output}")
        finally:
            codes = {"web": web.stop(), "worker": worker.stop()}

    assert sorted(m["to"] for m in standin.messages) == NUMBERS[1:4]
    assert all("man trying car door handles" in m["body"] and m["_callback"] == f"{base}/twilio/status" for m in standin.messages)
    assert standin.callback_errors == []
    with Session(engine) as session:
        assert session.exec(select(Report.text)).all() == ["man trying car door handles, red hoodie"]
    assert "scheduler running" not in web.output  # gunicorn's workers never run the jobs
    assert codes == {"web": 0, "worker": 0}, web.output + "\n" + worker.output
    engine.dispose()


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        time.sleep(0.2)
        return False


@pytest.mark.slow
def test_serve_runs_web_dispatcher_and_scheduler_in_one_process_on_sqlite_by_default(tmp_path):
    port = free_port()
    serve = HotlineProcess(["serve", "--port", str(port)], env={"HOTLINE_SECRET_KEY": "test-secret"}, cwd=tmp_path, name="serve")
    try:
        serve.wait_for("scheduler running")
        wait_until(lambda: _healthy(f"http://127.0.0.1:{port}"), 30, "/healthz")
        answer = requests.post(f"http://127.0.0.1:{port}/twilio/sms", data={"From": NUMBERS[0], "Body": "HELP", "MessageSid": "SM" + "b" * 32}, timeout=10)
        assert answer.status_code == 200 and "JOIN" in answer.text  # simulator mode: no signature needed
    finally:
        code = serve.stop()
    assert code == 0, serve.output
    assert (tmp_path / "instance" / "hotline.db").exists()  # first start made the SQLite database itself
