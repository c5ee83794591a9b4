"""The real-time scoring service (FastAPI). Built in issue #4; empty until then."""
