"""What a running app holds: its config, database engine, carrier and (in-process) dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy.engine import Engine

from hotline.config import Config
from hotline.delivery import wake
from hotline.delivery.carrier.base import Carrier


@dataclass
class Runtime:
    config: Config
    engine: Engine
    carrier: Carrier
    dispatcher: object | None = None  # an outbox.Dispatcher when this process also sends

    def outbox_changed(self) -> None:
        """New deliveries were committed: wake an in-process dispatcher, or a worker listening on PostgreSQL."""
        if self.dispatcher is not None:
            self.dispatcher.wake()
        else:
            wake.notify(self.engine)


def current() -> Runtime:
    return current_app.extensions["hotline"]
