"""``python -m app``: serve the API with uvicorn on the configured host, port and workers."""

from __future__ import annotations

import gc

# Start-up imports and loads a few hundred thousand long-lived objects; the collector would
# walk them again and again (about 0.8 s of a 3.8 s cold start). The lifespan freezes
# what was loaded and turns collection back on once the service is ready.
gc.disable()

import asyncio  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any, cast  # noqa: E402

import uvicorn  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.server.http_protocol import EdgeProtocol  # noqa: E402
from app.server.limits import EdgeLimits  # noqa: E402

# In-flight requests get this long to finish after SIGTERM (the Kubernetes Deployment's
# termination grace period covers it plus its preStop pause).
GRACEFUL_SHUTDOWN_SECONDS = 20


def run(settings: Settings, http: type[asyncio.Protocol] | str, **options: Any) -> None:
    """uvicorn on ``settings``' host, port and workers with ``http`` as the protocol; the one
    place the server's arguments are written (``benchmarks/previous_stack.py`` runs the
    same with httptools)."""
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
        http=http,
        loop="uvloop",
        **options,
    )


def main() -> None:
    settings = Settings()
    limits = EdgeLimits.from_settings(settings)
    # h11 under the edge limits (app/server/), not httptools: see docs/reliability.md
    # ("Edge") for the measurements behind the choice. A partial pickles, so each worker
    # process of WORKERS > 1 gets the same limits.
    protocol = cast("type[asyncio.Protocol]", partial(EdgeProtocol, limits=limits))
    run(settings, protocol, h11_max_incomplete_event_size=limits.max_header_bytes)


if __name__ == "__main__":
    main()
