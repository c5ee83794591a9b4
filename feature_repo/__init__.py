"""Feast feature repository and the request-time feature definitions shared with serving."""
