"""What a running app holds: its config, database engine, carrier and (in-process) dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from hotline.config import Config
from hotline.delivery import wake
from hotline.delivery.carrier.base import Carrier


@dataclass
class Runtime:
    config: Config
    engine: Engine
    carrier: Carrier
    dispatcher: object | None = None  # an outbox.Dispatcher when this process also sends

    def outbox_changing(self, connection: Connection) -> None:
        """Inside the transaction writing deliveries: a worker listening on PostgreSQL gets NOTIFY with its
        commit (no connection of its own to take, and nothing for a rollback). Then call
        `outbox_changed(notified=True)` after the commit, for an in-process dispatcher."""
        if self.dispatcher is None and connection.dialect.name == "postgresql":
            connection.execute(_NOTIFY)

    def outbox_changed(self, *, notified: bool = False) -> None:
        """New deliveries were committed: wake an in-process dispatcher, or a worker listening on PostgreSQL
        (unless `outbox_changing` told it already)."""
        if self.dispatcher is not None:
            self.dispatcher.wake()
        elif not notified:
            wake.notify(self.engine)


_NOTIFY = text(f"NOTIFY {wake.CHANNEL}")


def current() -> Runtime:
    return current_app.extensions["hotline"]
