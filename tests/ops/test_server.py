"""`hotline serve`'s web server (hotline/ops/server.py): Werkzeug's, with threads kept between connections and no
access-log line for an accepted status callback."""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus

from hotline.ops import server
from tests.standin.processes import wait_until


def test_kept_threads_serve_every_item_at_once_and_reuse_idle_threads():
    done, release = [], threading.Event()
    lock = threading.Lock()

    def work(item):
        if item == "slow":
            release.wait(10)  # holds its thread: the next item must not wait for it
        with lock:
            done.append(item)

    threads = server.KeptThreads(work, idle_seconds=60)
    threads.submit("slow")
    threads.submit("quick")
    assert wait_until(lambda: "quick" in done, timeout=10)  # a second thread, while the first is busy
    assert threads.started == 2
    release.set()
    assert wait_until(lambda: len(done) == 2 and threads.idle == 2, timeout=10)
    for n in range(50):
        threads.submit(n)
        assert wait_until(lambda: threads.idle == 2, timeout=10)
    assert len(done) == 52 and threads.started == 2  # the idle threads took them all


def test_an_idle_kept_thread_ends_after_its_wait_and_the_next_item_starts_one():
    done = []
    threads = server.KeptThreads(done.append, idle_seconds=0.05)
    threads.submit(1)
    assert wait_until(lambda: done == [1] and threads.idle == 0, timeout=10)  # waited 50 ms for more, then ended
    threads.submit(2)
    assert wait_until(lambda: done == [1, 2], timeout=10)
    assert threads.started == 2


def test_accepted_status_callbacks_leave_no_access_log_line_and_refused_ones_do(caplog):
    class Probe(server.QuietStatusHandler):
        def __init__(self, path):  # no socket: only what log_request reads
            self.path, self.requestline, self.client_address = path, f"POST {path} HTTP/1.1", ("127.0.0.1", 1)

    with caplog.at_level(logging.INFO, logger="werkzeug"):
        Probe("/twilio/status").log_request(204)
        Probe("/twilio/status").log_request(HTTPStatus.FORBIDDEN)
        Probe("/twilio/sms").log_request(200)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "403" in lines[0] and "/twilio/sms" in lines[1]
