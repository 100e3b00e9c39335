"""The coordinators' web pages: log, reports, approvals, streets and members, announcements, overview, plates, the meeting pack.

Every page needs a login, every form a CSRF token, and every query is scoped to the coordinator's streets.
Each page module registers its routes on `blueprint.bp` when imported here; create_app registers `bp`.
"""

from hotline.web import access, announce, approvals, auth, incident, log, members, overview, people, plates, streets, summary  # noqa: F401
from hotline.web.blueprint import bp  # noqa: F401
