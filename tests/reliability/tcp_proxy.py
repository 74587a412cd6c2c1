"""A loopback TCP proxy a test can cut and restore, to take a server away from the app.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        engine = make_engine(proxy.rewrite(url))
        proxy.cut()      # every connection closed, new ones refused (the server is gone)
        proxy.stall()    # every connection closed, new ones accepted and never answered
        proxy.restore()  # forwarding again, on the same port

`stall` is a host that went away without a word (packets dropped): only a connect
timeout gets a client out of it. Threads only; 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from sqlalchemy.engine import make_url

_CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<port> to (host, port) until told otherwise."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = "closed"
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listening = threading.Event()

    # --- control ------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        self.mode = "open"
        return self

    def cut(self) -> None:
        """Close every connection and stop listening: connects are refused."""
        with self._lock:
            self.mode = "cut"
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._close_all()

    def stall(self) -> None:
        """Close every connection; new ones are accepted but nothing is forwarded."""
        if self._listener is None:
            self._listen()
        self.mode = "stall"
        self._close_all()

    def restore(self) -> None:
        """Forward again (same port)."""
        if self._listener is None:
            self._listen()
        self.mode = "open"

    def close(self) -> None:
        self.cut()
        self.mode = "closed"

    def rewrite(self, url: str) -> str:
        """`url` (a SQLAlchemy database URL) pointed at this proxy."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(False)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by cut()
            self.accepted += 1
            self._track(client)
            if self.mode == "stall":
                continue  # held open, never answered, until the next cut/stall
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._drop(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            self._track(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        self._drop(source)
        self._drop(sink)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
