"""Run a DMS fake over real HTTP: adapters are tested over real sockets."""

from __future__ import annotations

from typing import Any

from integrations.local_server import LocalServer


class FakeServer(LocalServer):
    """A fake's ASGI app on 127.0.0.1 and a free port; `url` once started."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(app, host=host, port=port, name=f"dms-fake-{port or 'auto'}")

    def __enter__(self) -> FakeServer:
        self.start()
        return self
