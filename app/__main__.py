"""``python -m app``: serve the API with uvicorn on the configured host, port and workers."""

from __future__ import annotations

import uvicorn

from app.core.config import Settings

# In-flight requests get this long to finish after SIGTERM (the Kubernetes Deployment's
# termination grace period covers it plus its preStop pause).
GRACEFUL_SHUTDOWN_SECONDS = 20


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
    )


if __name__ == "__main__":
    main()
