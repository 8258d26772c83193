"""The real app under a real uvicorn server on loopback, in a background thread."""

from __future__ import annotations

import threading
import time

import uvicorn

from tests.helpers.smtp import free_port


class LiveServer:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                proxy_headers=False,  # as `publisher serve` runs it
                server_header=False,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def settle(self) -> None:
        """Until the sign-ups the app has queued are handled (they are, off the request)."""
        self.app.state.app.signups.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
