"""GET /healthz for load balancers: 200 with the database reachable, 503 without."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text

from hotline import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        with runtime.current().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "simulator": runtime.current().config.simulator}, 200
