"""SQLite lets one connection write at a time, and one that finds the lock taken sleeps in SQLite's busy handler
(1, 2, 5 … up to 100 ms a time) however soon the lock comes free. In one process (`hotline serve`) the delivery's
writers — status callbacks, the dispatcher's claims and records, the send turns — take turns on a lock of ours
instead, and the next one goes the moment the last commits. Other processes still meet SQLite's own lock, and
PostgreSQL needs neither.

Status callbacks are many writers at once (two a message, each on a thread of the web server's); the dispatcher's
writers are few (its claim, its send turns, its recorder of accepted sends). A callback first queues among the other
callbacks (`crowd=True`), so only one of them at a time contends for the turn with the dispatcher's writers, which
therefore wait about one turn, not behind every callback already waiting. The recorder written late made a fifth to a
quarter of callbacks arrive before their SID was recorded: each then took the long way (kept, then applied by the recorder),
about three times the CPU of a callback that finds its delivery."""

from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext
from typing import Iterator

from sqlalchemy.engine import Engine

_guard = threading.Lock()


def turn(engine: Engine, *, crowd: bool = False):
    """A context manager holding this process's SQLite write turn for `engine` (nothing on PostgreSQL). `crowd`:
    one of many writers of the same kind (status callbacks), which wait among themselves before the turn."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return _held(engine, crowd)


def _locks(engine: Engine) -> tuple[threading.Lock, threading.Lock]:
    locks = engine.__dict__.get("_hotline_write_turn")
    if locks is None:
        with _guard:
            locks = engine.__dict__.setdefault("_hotline_write_turn", (threading.Lock(), threading.Lock()))
    return locks


@contextmanager
def _held(engine: Engine, crowd: bool) -> Iterator[None]:
    lock, gate = _locks(engine)
    if crowd:
        with gate:  # the crowd's one contender at a time
            lock.acquire()
    else:
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
