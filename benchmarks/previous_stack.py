"""``python -m app`` as it ran before the edge limits (issue 22): uvicorn's httptools parser
on uvloop, every other argument as ``app/__main__.py`` passes it.

``make bench``'s protocol comparison (:mod:`benchmarks.protocols`) starts this beside
``python -m app`` (uvicorn's h11 under :class:`app.server.http_protocol.EdgeProtocol`), so
the two differ in the HTTP protocol only: same settings, bundle, environment and core.
"""

from __future__ import annotations

import gc

gc.disable()  # as app/__main__.py: the lifespan turns collection back on once ready

from app.__main__ import run  # noqa: E402
from app.core.config import Settings  # noqa: E402


def main() -> None:
    run(Settings(), "httptools")


if __name__ == "__main__":
    main()
