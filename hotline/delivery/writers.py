"""SQLite lets one connection write at a time, and one that finds the lock taken sleeps in SQLite's busy handler
(1, 2, 5 … up to 100 ms a time) however soon the lock comes free. In one process (`hotline serve`) the delivery's
writers — status callbacks, the dispatcher's claims and records, the send turns — take turns on a lock of ours
instead, and the next one goes the moment the last commits. Other processes still meet SQLite's own lock, and
PostgreSQL needs neither."""

from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext
from typing import Iterator

from sqlalchemy.engine import Engine

_guard = threading.Lock()


def turn(engine: Engine):
    """A context manager holding this process's SQLite write turn for `engine` (nothing on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return _held(engine)


@contextmanager
def _held(engine: Engine) -> Iterator[None]:
    with _guard:
        lock = engine.__dict__.setdefault("_hotline_write_turn", threading.Lock())
    with lock:
        yield
