"""Reading one environment variable: trimmed, checked, and named in every error.

A bad value raises ConfigError naming the variable; a value is shown only where it cannot
be a secret (shown() quotes and cuts it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import urlsplit

from publisher.errors import ConfigError


def text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def shown(raw: str, limit: int = 40) -> str:
    """A non-secret value for a message: quoted, and cut so a pasted blob stays one line."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


def number(env: Mapping[str, str], name: str, default: float, *, low: float,
            high: float) -> float:
    raw = text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={shown(raw)} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}={shown(raw)} is not a finite number: it must be between "
                          f"{low:g} and {high:g}")
    if not low <= value <= high:
        raise ConfigError(f"{name}={shown(raw)} is out of range: it must be between {low:g} "
                          f"and {high:g}")
    return value


def integer(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={shown(raw)} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={shown(raw)} is out of range: it must be between {low} "
                          f"and {high}")
    return value


def has_blank_or_control(value: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() for ch in value)


def http_url_problem(value: str) -> str | None:
    """Why value is not a usable http(s) base URL, or None. Says nothing of its content."""
    if has_blank_or_control(value):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "cannot be parsed (a port must be a number from 1 to 65535)"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http(s) URL"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0 (a port must be a number from 1 to 65535)"
    if "@" in parts.netloc:
        return "must not contain a user name or password"
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        return "must not have a ?query or #fragment"
    return None


def url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = text(env, name)
    if value is None:
        return default
    problem = http_url_problem(value)
    if problem:
        # The value is shown only when it cannot be hiding a password (user:password@host).
        detail = "value not shown" if "@" in value else f"got {shown(value, 80)}"
        raise ConfigError(f"{name} {problem}; {detail}")
    return value.rstrip("/")


def choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = text(env, name) or default
    normal = value.upper() if default.isupper() else value.lower()
    if normal not in choices:
        raise ConfigError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, "
                          f"got {shown(value)}")
    return normal


def switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = text(env, name)
    if value is None:
        return default
    if value.lower() in ("on", "true", "1", "yes"):
        return True
    if value.lower() in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, got {shown(value)}")
