"""Waking the dispatcher instead of polling: in one process (`hotline serve`) a webhook that wrote deliveries
sets the dispatcher's event; across processes on PostgreSQL (`hotline web` + `hotline worker`) it sends
NOTIFY hotline_outbox, which the worker LISTENs for. The dispatcher's own poll (HOTLINE_DISPATCH_POLL,
1 s) is only the safety net: retries coming due, a notification lost while the worker reconnected, SQLite.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
CHANNEL = "hotline_outbox"


def notify(engine: Engine) -> None:
    """Tell a worker listening on PostgreSQL that the outbox has new rows (nothing to do on SQLite)."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect() as connection:
            connection.execute(text(f"NOTIFY {CHANNEL}"))
            connection.commit()
    except Exception:  # the poll will find the rows anyway; a webhook must not fail for this
        log.warning("could not notify the worker of new deliveries; its poll will find them", exc_info=True)


class Listener:
    """A thread holding one PostgreSQL connection in LISTEN; each notification calls `wake`."""

    def __init__(self, engine: Engine, wake):
        self.engine, self.wake = engine, wake
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="outbox-listener", daemon=True)

    def start(self) -> "Listener":
        if self.engine.dialect.name == "postgresql":
            self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except Exception:
                failures += 1
                log.warning("outbox listener lost its connection; trying again", exc_info=failures == 1)
                self._stop.wait(min(30.0, 0.5 * 2**failures))

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        try:
            connection = raw.driver_connection
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self.wake()  # anything written while we were not listening
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=1.0, stop_after=1):
                    self.wake()
        finally:
            raw.invalidate()  # a LISTENing connection is not returned to the pool
