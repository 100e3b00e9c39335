"""The pretend phones of simulator mode (/simulator): registered only when there are no Twilio credentials."""

from __future__ import annotations

from flask import Flask

from hotline.simulator import routes  # noqa: F401  (registers the pages on blueprint.bp)
from hotline.simulator.blueprint import bp
from hotline.simulator.switchboard import Switchboard


def install(app: Flask) -> None:
    """Register /simulator and let the simulated network post its status callbacks through this app."""
    network = app.extensions["hotline"].carrier.network
    board = Switchboard(app, network)
    app.extensions["simulator"] = board
    app.register_blueprint(bp)
    network.attach(board.post)
