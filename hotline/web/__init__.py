"""The coordinators' web pages: log, reports, approvals, streets and members, announcements, overview.

Every page needs a login, every form a CSRF token, and every query is scoped to the coordinator's streets.
"""

from flask import Blueprint

bp = Blueprint("web", __name__)

from hotline.web import (  # noqa: E402,F401  (routes register on import)
    access,
    announce,
    approvals,
    auth,
    log,
    members,
    overview,
    people,
    streets,
)
