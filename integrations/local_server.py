"""Serve an ASGI app with uvicorn in a background thread on a loopback port.

The Twilio sandbox, the DMS fakes and the tests all need a real HTTP server they
can start and stop inside one process; this is that server, once.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


class LocalServer:
    """A real HTTP server on `host` (loopback by default); `port=0` picks a free port.

    Use as a context manager, or call `start()` / `stop()`; `url` is the base URL
    (`http://127.0.0.1:<port>`) once started.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "local-server",
        backlog: int = 2048,
        keep_alive_seconds: int = 5,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._backlog = backlog
        self._keep_alive = keep_alive_seconds
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def started(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self._socket is None:
            raise RuntimeError(f"{self.name} is not started")
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> LocalServer:
        """Bind, start serving in a daemon thread, and wait until it accepts requests."""
        if self._server is not None:
            return self
        # Binding ourselves (port 0) avoids the race of picking a port and binding later.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=self._backlog,
            timeout_keep_alive=self._keep_alive,
            # The app decides whom to believe about X-Forwarded-For, not uvicorn's default.
            proxy_headers=False,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=self.name
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
