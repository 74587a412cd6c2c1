"""Helpers for tests that need real HTTP: serve an ASGI app on a free loopback port."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.config import load_dealer_config
from app.dealers.service import LoadReport, apply_dealer_config
from app.deps import Database
from integrations.local_server import LocalServer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = ROOT / "config" / "sample-dealer.toml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServedApp(LocalServer):
    """Pitwall's app under uvicorn in a background thread: `.url`, context manager."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        super().__init__(app, port=port or 0, name="pitwall-app")

    def __enter__(self) -> ServedApp:
        self.start()
        return self


def load_sample_dealer(database: Database, path: Path = SAMPLE_CONFIG) -> LoadReport:
    """Load a dealer TOML (the sample by default) in one unit of work."""
    config = load_dealer_config(path)
    with database.transaction() as session:
        return apply_dealer_config(session, config=config, source=str(path))


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Poll `check` every 50 ms until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
