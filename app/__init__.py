"""The real-time scoring service: FastAPI app, API routes, settings and services."""

__version__ = "0.4.0"
