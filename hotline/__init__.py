"""hotline: an SMS and voice-menu hotline for neighbourhood watch schemes."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict | None = None, *, instance_path: str | Path | None = None, environ: dict | None = None) -> Flask:
    """Build the app: config, database, carrier, blueprints. Starts no threads: `hotline serve/worker` do."""
    from flask_wtf.csrf import CSRFProtect
    from werkzeug.middleware.proxy_fix import ProxyFix

    from hotline import config as config_module
    from hotline import hardening, webhooks
    from hotline.db import make_engine
    from hotline.delivery.carrier import make_carrier
    from hotline.migrations import upgrade
    from hotline.ops import health, metrics
    from hotline.runtime import Runtime

    instance = Path(instance_path or Path.cwd() / "instance").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    config = config_module.load(instance, overrides, environ)
    app = Flask(__name__, instance_path=str(instance), template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    secure = bool(config.public_url and config.public_url.startswith("https://"))
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=64 * 1024,  # a Twilio webhook is a few kB; a CSV import is the largest thing we take
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        TESTING=config.testing,
    )
    engine = make_engine(config.database_url, timeout=config.db_timeout_seconds)
    upgrade(engine)  # first start creates the schema; several processes starting at once take turns
    app.extensions["hotline"] = Runtime(config=config, engine=engine, carrier=make_carrier(config, engine))

    hardening.install(app)  # before the blueprints: their routes use its `int`, their header hooks run first
    csrf = CSRFProtect(app)
    csrf.exempt(webhooks.bp)  # Twilio's signature protects these; every coordinator form needs a token
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    metrics.install(app)  # GET /metrics, and the clock around each webhook
    csrf.exempt(metrics.bp)  # a GET for Prometheus, guarded by its own token or loopback
    app.jinja_env.globals["simulator_mode"] = config.simulator  # every page can show the simulator banner
    from hotline import web

    app.register_blueprint(web.bp)
    if config.simulator:  # last: the simulated network may post a status callback to the app at once
        from hotline import simulator

        simulator.install(app)
    if secure and not config.proxy_hops:
        logging.getLogger("hotline").warning(
            "HOTLINE_PUBLIC_URL is HTTPS but HOTLINE_PROXY_HOPS is 0: behind a proxy every client has the proxy's"
            " address, so the per-address login throttle treats everyone as one client. Set HOTLINE_PROXY_HOPS to"
            " the number of proxies in front of the hotline."
        )
    if config.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops, x_host=config.proxy_hops)
    logging.getLogger("hotline").setLevel(logging.INFO)
    return app
