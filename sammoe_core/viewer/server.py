"""Run the viewer's app with uvicorn on one host and port, and open a browser on it.

``127.0.0.1`` is the default; any other host gets a random token that every request must
carry (as Jupyter does), printed in the URL. The port is checked before the model loads.
"""

from __future__ import annotations

import secrets
import socket
import threading
import webbrowser
from collections.abc import Callable
from typing import Any

from sammoe_core.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def needs_token(host: str) -> bool:
    return host not in LOOPBACK


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_port(host: str, port: int) -> int:
    """The port to use (0: a free one), refused at once when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise InputError(f"{host}:{port}: cannot listen there ({e.strerror or e}); choose another --port") from None
        return int(probe.getsockname()[1])


def url_of(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(app: Any, host: str, port: int, on_ready: Callable[[], None] = lambda: None) -> None:
    """Serve until interrupted; ``on_ready`` runs once the socket listens."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    def wait_then_announce() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            on_ready()

    threading.Thread(target=wait_then_announce, daemon=True).start()
    server.run()


def serve_in_background(app: Any, host: str, port: int) -> Any:
    """Start serving in a daemon thread; returns the uvicorn server once it listens (``should_exit``
    stops it)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.05)
    if not server.started:
        raise InputError(f"{host}:{port}: the viewer's server did not start")
    return server


def open_browser(url: str) -> None:
    webbrowser.open(url, new=2)
