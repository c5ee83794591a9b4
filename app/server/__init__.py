"""The HTTP server edge: uvicorn protocol limits (``http_*`` settings)."""
