"""Publishes scheduled social-media posts from Postgres to the platforms, once each."""

__version__ = "0.1.0"
