"""All configuration, read from the environment once and validated at start-up.

`.env.example` lists every variable. A bad value raises ConfigError naming the variable,
before anything is claimed. Secrets are masked in the repr.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from publisher.errors import ConfigError

PLATFORMS = ("facebook", "instagram", "linkedin", "youtube")
DEFAULT_PLATFORM_CONCURRENCY = {"facebook": 8, "instagram": 5, "linkedin": 4, "youtube": 4}
_SECRET_FIELDS = {"supabase_service_role_key", "encryption_key", "encryption_keys_previous",
                  "database_url"}  # oauth_clients mask their own secrets


@dataclass(frozen=True, kw_only=True, slots=True)
class OAuthClient:
    """An app's OAuth credentials, for refreshing tokens."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"OAuthClient(client_id={self.client_id!r}, client_secret='***')"


@dataclass(frozen=True, kw_only=True)
class PlatformEndpoints:
    """Base URLs of the platforms' APIs: the real ones, or the local simulator."""

    facebook: str = "https://graph.facebook.com"
    facebook_api_version: str = "v25.0"
    facebook_video: str = "https://graph-video.facebook.com"
    instagram: str = "https://graph.facebook.com"
    instagram_refresh: str = "https://graph.instagram.com"
    linkedin: str = "https://api.linkedin.com"
    linkedin_version: str = "202601"
    linkedin_oauth: str = "https://www.linkedin.com"
    youtube_upload: str = "https://www.googleapis.com"
    google_oauth: str = "https://oauth2.googleapis.com"


@dataclass(frozen=True, kw_only=True)
class Settings:
    supabase_url: str | None = None
    supabase_service_role_key: str | None = None
    database_url: str | None = None
    data_dir: Path = Path(".publisher")
    on_deployment: bool = False
    encryption_key: str | None = None
    encryption_keys_previous: tuple[str, ...] = ()
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    max_publish_delay_hours: float = 24.0
    run_deadline_seconds: float = 50.0
    lease_seconds: float = 600.0
    max_concurrency: int = 64
    platform_concurrency: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_PLATFORM_CONCURRENCY))
    account_concurrency: int = 2
    http_timeout_seconds: float = 30.0
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    worker_poll_seconds: float = 2.0
    simulator_url: str | None = None
    endpoints: PlatformEndpoints = field(default_factory=PlatformEndpoints)
    oauth_clients: Mapping[str, OAuthClient] = field(default_factory=dict)  # platform -> app
    log_format: str = "json"
    log_level: str = "INFO"

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def store_kind(self) -> str:
        if self.supabase_url or self.supabase_service_role_key:
            return "supabase"
        if self.database_url:
            return "postgres"
        return "embedded"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return _read(os.environ if env is None else env)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: float, *, low: float,
            high: float) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw} is out of range: it must be between {low:g} and {high:g}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw} is out of range: it must be between {low} and {high}")
    return value


def _url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = _text(env, name)
    if value is None:
        return default
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _read(env: Mapping[str, str]) -> Settings:
    supabase_url = _url(env, "SUPABASE_URL", None)
    service_key = _text(env, "SUPABASE_SERVICE_ROLE_KEY")
    if bool(supabase_url) != bool(service_key):
        missing = "SUPABASE_SERVICE_ROLE_KEY" if supabase_url else "SUPABASE_URL"
        raise ConfigError(f"{missing} is missing: SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY "
                          "go together")
    database_url = _text(env, "DATABASE_URL")
    if database_url and not database_url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("DATABASE_URL must start with postgresql:// (value not shown)")
    on_deployment = bool(_text(env, "RENDER"))
    if on_deployment and not (supabase_url or database_url):
        raise ConfigError("no database configured on a deployment (RENDER is set): set "
                          "SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, or DATABASE_URL")

    concurrency = dict(DEFAULT_PLATFORM_CONCURRENCY)
    for platform in PLATFORMS:
        concurrency[platform] = _integer(env, f"{platform.upper()}_CONCURRENCY",
                                         concurrency[platform], low=1, high=10_000)

    simulator = _url(env, "SIMULATOR_URL", None)
    endpoints = PlatformEndpoints()
    if simulator:
        endpoints = simulator_endpoints(simulator)
    endpoints = PlatformEndpoints(
        facebook=_url(env, "FACEBOOK_API_BASE", endpoints.facebook) or endpoints.facebook,
        facebook_api_version=_text(env, "FACEBOOK_API_VERSION") or endpoints.facebook_api_version,
        facebook_video=_url(env, "FACEBOOK_VIDEO_API_BASE", endpoints.facebook_video)
        or endpoints.facebook_video,
        instagram=_url(env, "INSTAGRAM_API_BASE", endpoints.instagram) or endpoints.instagram,
        instagram_refresh=_url(env, "INSTAGRAM_REFRESH_BASE", endpoints.instagram_refresh)
        or endpoints.instagram_refresh,
        linkedin=_url(env, "LINKEDIN_API_BASE", endpoints.linkedin) or endpoints.linkedin,
        linkedin_version=_linkedin_version(env) or endpoints.linkedin_version,
        linkedin_oauth=_url(env, "LINKEDIN_OAUTH_BASE", endpoints.linkedin_oauth)
        or endpoints.linkedin_oauth,
        youtube_upload=_url(env, "YOUTUBE_API_BASE", endpoints.youtube_upload)
        or endpoints.youtube_upload,
        google_oauth=_url(env, "GOOGLE_OAUTH_BASE", endpoints.google_oauth)
        or endpoints.google_oauth,
    )

    log_format = (_text(env, "LOG_FORMAT") or "json").lower()
    if log_format not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, got {log_format!r}")
    log_level = (_text(env, "LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    previous = tuple(k.strip() for k in (_text(env, "ENCRYPTION_KEYS_PREVIOUS") or "").split(",")
                     if k.strip())
    deadline = _number(env, "RUN_DEADLINE_SECONDS", 50.0, low=1, high=86_400)
    lease = _number(env, "LEASE_SECONDS", 600.0, low=10, high=86_400)
    timeout = _number(env, "HTTP_TIMEOUT_SECONDS", 30.0, low=0.1, high=3600)
    if lease <= timeout:
        raise ConfigError(f"LEASE_SECONDS ({lease:g}) must be longer than HTTP_TIMEOUT_SECONDS "
                          f"({timeout:g}), or claims would run out mid-request")
    retry_base = _number(env, "RETRY_BASE_SECONDS", 60.0, low=0, high=86_400)
    retry_max = _number(env, "RETRY_MAX_SECONDS", 3600.0, low=0, high=7 * 86_400)
    if retry_max < retry_base:
        raise ConfigError("RETRY_MAX_SECONDS must not be smaller than RETRY_BASE_SECONDS")

    settings = Settings(
        supabase_url=supabase_url,
        supabase_service_role_key=service_key,
        database_url=database_url,
        data_dir=Path(_text(env, "PUBLISHER_DATA_DIR") or ".publisher"),
        on_deployment=on_deployment,
        encryption_key=_text(env, "ENCRYPTION_KEY"),
        encryption_keys_previous=previous,
        max_publish_delay_hours=_number(env, "MAX_PUBLISH_DELAY_HOURS", 24.0, low=0.01,
                                        high=24 * 365),
        run_deadline_seconds=deadline,
        lease_seconds=lease,
        max_concurrency=_integer(env, "MAX_CONCURRENCY", 64, low=1, high=100_000),
        platform_concurrency=concurrency,
        account_concurrency=_integer(env, "ACCOUNT_CONCURRENCY", 2, low=1, high=10_000),
        http_timeout_seconds=timeout,
        retry_base_seconds=retry_base,
        retry_max_seconds=retry_max,
        worker_poll_seconds=_number(env, "WORKER_POLL_SECONDS", 2.0, low=0.05, high=3600),
        simulator_url=simulator,
        endpoints=endpoints,
        oauth_clients=_oauth_clients(env),
        log_format=log_format,
        log_level=log_level,
    )
    if worker := _text(env, "WORKER_ID"):
        settings = replace(settings, worker_id=worker)
    return settings



def simulator_endpoints(url: str) -> PlatformEndpoints:
    """Every platform (and its token endpoint) served by the simulator at url."""
    return PlatformEndpoints(facebook=url, facebook_video=url, instagram=url,
                             instagram_refresh=url, linkedin=url, linkedin_oauth=url,
                             youtube_upload=url, google_oauth=url)


def _linkedin_version(env: Mapping[str, str]) -> str | None:
    value = _text(env, "LINKEDIN_VERSION")
    if value is not None and not (len(value) == 6 and value.isdigit()):
        raise ConfigError(f"LINKEDIN_VERSION must be a YYYYMM month such as 202601, "
                          f"got {value!r}")
    return value


def _oauth_clients(env: Mapping[str, str]) -> dict[str, OAuthClient]:
    """OAuth apps for token refresh: GOOGLE_CLIENT_ID/SECRET (YouTube), LINKEDIN_..."""
    clients = {}
    for platform, prefix in (("youtube", "GOOGLE"), ("linkedin", "LINKEDIN")):
        client_id = _text(env, f"{prefix}_CLIENT_ID")
        secret = _text(env, f"{prefix}_CLIENT_SECRET")
        if bool(client_id) != bool(secret):
            missing = f"{prefix}_CLIENT_SECRET" if client_id else f"{prefix}_CLIENT_ID"
            raise ConfigError(f"{missing} is missing: {prefix}_CLIENT_ID and "
                              f"{prefix}_CLIENT_SECRET go together")
        if client_id and secret:
            clients[platform] = OAuthClient(client_id=client_id, client_secret=secret)
    return clients
