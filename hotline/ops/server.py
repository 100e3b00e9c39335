"""`hotline serve`'s web server: Werkzeug's development server, with its threads kept for the next connection
instead of started anew for each one. Every message sent brings two status callbacks, each on a connection of
its own: at 100 messages a second, a thread started (and ended) per connection was a fifth of the web process's
CPU. Like Werkzeug's threaded server, a connection never waits for a thread: with none free, one more starts."""

from __future__ import annotations

import logging
import queue
import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

log = logging.getLogger("werkzeug")
IDLE_SECONDS = 30.0  # a thread with no connection for this long ends


class KeptThreads:
    """Runs `work(item)` for each submitted item on a thread of its own at once, reusing threads that are idle.

    `idle` counts the threads waiting for an item less the items queued for them; submit hands an item over only
    when that is positive, so a queued item always has a thread waiting for it, and a thread whose wait runs out
    leaves only when another is still waiting."""

    def __init__(self, work, *, idle_seconds: float = IDLE_SECONDS, name: str = "web"):
        self.work, self.idle_seconds, self.name = work, idle_seconds, name
        self.items: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.idle = 0
        self.started = 0  # threads ever started: far fewer than items once they are kept

    def submit(self, item) -> None:
        with self.lock:
            if self.idle > 0:
                self.idle -= 1
                self.items.put(item)
                return
            self.started += 1
        threading.Thread(target=self._run, args=(item,), name=f"{self.name}-{self.started}", daemon=True).start()

    def _run(self, item) -> None:
        while True:
            try:
                self.work(item)
            except Exception:  # `work` handles its own errors; this thread must survive whatever it missed
                log.exception("serving a connection failed")
            with self.lock:
                self.idle += 1
            try:
                item = self.items.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self.lock:
                    if self.idle > 0:  # nobody handed this thread an item: it may go
                        self.idle -= 1
                        return
                item = self.items.get()  # an item was handed over as the wait ran out: it is queued already


class QuietStatusHandler(WSGIRequestHandler):
    """Werkzeug's handler, without an access-log line for each accepted status callback (two a message: at 100
    messages a second, 200 lines a second that say nothing). Refused or failed callbacks are still logged."""

    def log_request(self, code="-", size="-") -> None:
        status = str(getattr(code, "value", code))
        if status.startswith("2") and self.path.split("?", 1)[0] == "/twilio/status":
            return
        super().log_request(code, size)


class Server(BaseWSGIServer):
    multithread = True  # as Werkzeug's threaded server: HTTP/1.1, keep-alive

    def __init__(self, host: str, port: int, app) -> None:
        super().__init__(host, port, app, handler=QuietStatusHandler)
        self.threads = KeptThreads(self._serve_connection)

    def process_request(self, request, client_address) -> None:
        self.threads.submit((request, client_address))

    def _serve_connection(self, item) -> None:  # socketserver.ThreadingMixIn.process_request_thread
        request, client_address = item
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def run(host: str, port: int, app) -> None:
    """Serve `app` until interrupted, as werkzeug.serving.run_simple(threaded=True) does."""
    server = Server(host, port, app)
    server.log_startup()
    log.info("Press CTRL+C to quit")
    server.serve_forever()
