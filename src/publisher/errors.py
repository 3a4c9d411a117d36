"""The publisher's exceptions, one tree.

    PublisherError
    ├── ConfigError          a setting is missing or invalid (names the variable)
    ├── StoreError           the database could not do what was asked
    ├── TokenError           a stored token cannot be decrypted or encrypted
    └── ScheduleError        a local time or time zone cannot be resolved

Each class's docstring is its default message. Messages never carry secrets.
"""

from __future__ import annotations


class PublisherError(Exception):
    """The publisher failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(PublisherError):
    """A setting is missing or invalid."""


class StoreError(PublisherError):
    """The database could not do what was asked."""


class TokenError(PublisherError):
    """The stored token cannot be decrypted with ENCRYPTION_KEY."""


class ScheduleError(PublisherError):
    """The post's scheduled time cannot be resolved."""
