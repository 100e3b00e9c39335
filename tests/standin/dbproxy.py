"""A TCP proxy between the hotline's processes and PostgreSQL, so a test can take the database away and
give it back without stopping the shared server:

    cut()        every open connection is reset and new ones are reset as they arrive (database gone)
    stall()      nothing is forwarded any more, either way, and nothing is refused: open connections go
                 silent, new ones are accepted and never answered (a database or network that hangs;
                 the proxy's own TCP stack acknowledges everything, so no timeout of TCP's fires)
    restore()    connections go through again; those held during a stall are reset, what they sent dropped
    cut_at(marker, forward=...)
                 the connection that sends `marker` (a report's text, say) is cut when it next sends
                 COMMIT: before the COMMIT reaches the server (the transaction is rolled back) or just
                 after it, with the server's answer lost (committed, but the app cannot know); either
                 way the database then stays away until restore()
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit

COMMIT = b"COMMIT"
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, as a dead peer or firewall does


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    except OSError:
        pass
    sock.close()


class _Link:
    def __init__(self, proxy: "DatabaseProxy", client: socket.socket, server: socket.socket):
        self.proxy, self.client, self.server = proxy, client, server
        self.marked = False
        self.tail = b""  # the end of the last chunk, so a marker split across two reads is still seen
        self.closed = False

    def run(self) -> None:
        try:
            while not self.closed:
                if self.proxy.is_stalled:
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select([self.client, self.server], [], [], 0.1)
                if self.proxy.is_stalled:  # stalled while we waited: leave what came in unread
                    continue
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is self.client:
                        if not self._to_server(data):
                            return
                    else:
                        self.client.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def _to_server(self, data: bytes) -> bool:
        trap = self.proxy.trap
        seen, self.tail = self.tail + data, data[-64:]
        if trap and not self.marked and trap[0] in seen:
            self.marked = True
        if trap and self.marked and COMMIT in data:
            self.proxy.sprung(self, forward=trap[1], data=data)
            return False
        self.server.sendall(data)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            _reset(self.client)
            _reset(self.server)
        self.proxy._forget(self)


class DatabaseProxy:
    """127.0.0.1:<port> forwarding to the database in `url`; `url_through` is the same URL via the proxy."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._url = parts
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.links: set[_Link] = set()
        self.lock = threading.Lock()
        self.is_cut = False
        self.is_stalled = False
        self.held: list[socket.socket] = []  # connections accepted during a stall, never answered
        self.trap: tuple[bytes, bool] | None = None
        self.refused = 0  # connections reset while the database was away
        self.commits_cut: list[str] = []  # "before" / "after", one per trap sprung
        self._stopped = False
        threading.Thread(target=self._accept, name="db-proxy", daemon=True).start()

    @property
    def url_through(self) -> str:
        netloc = self._url.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(self._url._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.is_cut:
                self.refused += 1
                _reset(client)
                continue
            if self.is_stalled:
                with self.lock:
                    self.held.append(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            link = _Link(self, client, server)
            with self.lock:
                self.links.add(link)
            threading.Thread(target=link.run, name="db-proxy-link", daemon=True).start()

    def _forget(self, link: _Link) -> None:
        with self.lock:
            self.links.discard(link)

    def cut(self) -> None:
        self.is_cut = True
        with self.lock:
            links = list(self.links)
        for link in links:
            link.close()

    def stall(self) -> None:
        self.is_stalled = True

    @property
    def held_count(self) -> int:
        with self.lock:
            return len(self.held)

    def restore(self) -> None:
        self.trap = None
        if self.is_stalled:
            with self.lock:
                links, held, self.held = list(self.links), self.held, []
            for link in links:  # what they sent while stalled never reaches the server
                link.close()
            for client in held:
                _reset(client)
            self.is_stalled = False
        self.is_cut = False

    def cut_at(self, marker: bytes, *, forward: bool) -> None:
        self.trap = (marker, forward)

    def sprung(self, link: _Link, *, forward: bool, data: bytes) -> None:
        """The marked connection is committing: the database goes away now, before or after the COMMIT."""
        self.trap = None
        self.is_cut = True
        if forward:
            link.server.sendall(data)
            link.server.shutdown(socket.SHUT_WR)  # the server reads the COMMIT, commits, and its answer is lost
            try:
                link.server.settimeout(5)
                while link.server.recv(65536):
                    pass
            except OSError:
                pass
        self.commits_cut.append("after" if forward else "before")
        link.close()
        self.cut()

    def stop(self) -> None:
        self._stopped = True
        self.listener.close()
        self.restore()
        self.cut()
