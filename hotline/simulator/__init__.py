"""The pretend phones of simulator mode (/simulator): registered only when there are no Twilio credentials."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("simulator", __name__, url_prefix="/simulator")


def install(app: Flask) -> None:
    """Register /simulator and let the simulated network post its status callbacks through this app."""
    from hotline.simulator.switchboard import Switchboard

    network = app.extensions["hotline"].carrier.network
    board = Switchboard(app, network)
    app.extensions["simulator"] = board
    app.register_blueprint(bp)
    network.attach(board.post)


from hotline.simulator import routes  # noqa: E402,F401  (routes register on import)
