"""``python -m app`` as it ran before the edge limits (issue 22): uvicorn's httptools parser
on uvloop, every other argument as ``app/__main__.py`` passes it.

``make bench``'s protocol comparison (:mod:`benchmarks.protocols`) starts this beside
``python -m app`` (uvicorn's h11 under :class:`app.server.http_protocol.EdgeProtocol`), so
the two differ in the HTTP protocol only: same settings, bundle, environment and core.
"""

from __future__ import annotations

import gc

gc.disable()  # as app/__main__.py: the lifespan turns collection back on once ready

import uvicorn  # noqa: E402

from app.__main__ import GRACEFUL_SHUTDOWN_SECONDS  # noqa: E402
from app.core.config import Settings  # noqa: E402


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=settings.keep_alive_seconds,
        http="httptools",
        loop="uvloop",
    )


if __name__ == "__main__":
    main()
