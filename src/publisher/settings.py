"""All configuration, read from the environment once and validated at start-up.

`.env.example` lists every variable. A bad value raises ConfigError naming the variable,
before anything is claimed. Secrets are masked in the repr.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from publisher.crypto import parse_key
from publisher.env_values import choice as _choice
from publisher.env_values import has_blank_or_control as _has_blank_or_control
from publisher.env_values import integer as _integer
from publisher.env_values import number as _number
from publisher.env_values import shown as _shown
from publisher.env_values import text as _text
from publisher.env_values import url as _url
from publisher.errors import ConfigError
from publisher.settings_ops import (
    AlertSettings,
    PreflightSettings,
    ReviewSettings,
    WebhookSettings,
    read_alerts,
    read_metrics_host,
    read_metrics_port,
    read_preflight,
    read_review,
    read_webhooks,
)

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
    # Instagram has two hosts, one per login type (developers.facebook.com/docs/
    # instagram-platform/reference): graph.facebook.com for accounts on Facebook Login,
    # graph.instagram.com for those on Instagram Login (publishing and token refresh).
    instagram: str = "https://graph.facebook.com"
    instagram_graph: str = "https://graph.instagram.com"
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
    alerts: AlertSettings = field(default_factory=AlertSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    preflight: PreflightSettings = field(default_factory=PreflightSettings)
    metrics_port: int | None = None  # `publisher worker` serves /metrics here when set
    metrics_host: str = "127.0.0.1"
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)

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


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def database_url_problem(url: str) -> str | None:
    """Why url is not a Postgres URL asyncpg can use, or None. The answer never quotes the
    URL: any part of it may be a password that was not percent-encoded."""
    if _has_blank_or_control(url):
        return ("contains spaces or control characters (percent-encode them in the password: "
                "a space is %20)")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres"):
        return "must start with postgresql:// (or postgres://)"
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if netloc.count("@") > 1:
        return "has more than one @ before the host (percent-encode @ in the password as %40)"
    hostspec = netloc.rpartition("@")[2]
    try:
        query = parse_qs(urlsplit(url).query, strict_parsing=True) if "?" in rest else {}
    except ValueError:
        return "has a query string that cannot be parsed (the part after ?)"
    for entry in hostspec.split(",") if hostspec else []:
        problem = _host_problem(entry)
        if problem:
            return problem
    if not hostspec and not query.get("host"):
        return ("has no host (postgresql://user:password@host:5432/database, or "
                "?host=/socket/dir for a local socket)")
    for port in ",".join(query.get("port", [])).split(","):
        if port and not _valid_port(port):
            return "has a port= that is not a number from 1 to 65535"
    if query.get("sslmode", ["prefer"])[-1] not in _SSLMODES:
        return f"has an unknown sslmode (one of {', '.join(_SSLMODES)})"
    return None


def _host_problem(entry: str) -> str | None:
    host, port = entry, None
    if entry.startswith("["):  # [IPv6]:port
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "has a bracketed IPv6 host that cannot be parsed"
        port = rest[1:] if rest else None
    elif ":" in entry:
        host, _, port = entry.partition(":")
    if not host:
        return "has an empty host name"
    if port is not None and not _valid_port(port):
        return ("has a port that is not a number from 1 to 65535 (a password containing "
                "/ ? # or : must be percent-encoded)")
    return None


def _valid_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65_535


def _database_url(env: Mapping[str, str]) -> str | None:
    value = _text(env, "DATABASE_URL")
    if value is not None and (problem := database_url_problem(value)):
        raise ConfigError(f"DATABASE_URL {problem} (the value is not shown: it may hold a "
                          "password)")
    return value


def _supabase(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    url = _url(env, "SUPABASE_URL", None)
    key = _text(env, "SUPABASE_SERVICE_ROLE_KEY")
    if bool(url) != bool(key):
        missing = "SUPABASE_SERVICE_ROLE_KEY" if url else "SUPABASE_URL"
        raise ConfigError(f"{missing} is missing: SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY "
                          "go together")
    if url and urlsplit(url).path.rstrip("/").endswith("/rest/v1"):
        raise ConfigError("SUPABASE_URL must be the project URL (https://<ref>.supabase.co), "
                          "without /rest/v1")
    if key:
        _check_service_key(key)
    return url, key


def _check_service_key(key: str) -> None:
    """The key goes into HTTP headers, and must be the service role's, not the anon key
    (whose calls the functions' grants refuse). Its value is never shown."""
    if _has_blank_or_control(key) or not key.isascii():
        raise ConfigError("SUPABASE_SERVICE_ROLE_KEY contains spaces, control or non-ASCII "
                          "characters (value not shown)")
    parts = key.split(".")
    if len(parts) != 3:
        return  # not a JWT (Supabase's newer sb_secret_ keys): nothing more to read
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return
    role = claims.get("role") if isinstance(claims, dict) else None
    if isinstance(role, str) and role != "service_role":
        raise ConfigError(f"SUPABASE_SERVICE_ROLE_KEY is a key for the role {_shown(role)}, "
                          "not service_role: use the service_role key (Project settings -> API)")


def _encryption_keys(env: Mapping[str, str]) -> tuple[str | None, tuple[str, ...]]:
    key = _text(env, "ENCRYPTION_KEY")
    if key is not None:
        parse_key(key)
    raw = _text(env, "ENCRYPTION_KEYS_PREVIOUS") or ""
    previous = tuple(k.strip() for k in raw.split(",") if k.strip())
    for index, old in enumerate(previous, start=1):
        parse_key(old, f"ENCRYPTION_KEYS_PREVIOUS (entry {index} of {len(previous)})")
    return key, previous


def _data_dir(env: Mapping[str, str]) -> Path:
    path = Path(_text(env, "PUBLISHER_DATA_DIR") or ".publisher")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"PUBLISHER_DATA_DIR={_shown(str(path), 80)} is a file, not a folder")
    return path


def _worker_id(env: Mapping[str, str]) -> str | None:
    value = _text(env, "WORKER_ID")
    if value is not None and (len(value) > 200 or not value.isprintable()):
        raise ConfigError("WORKER_ID must be printable text of at most 200 characters")
    return value


def _read(env: Mapping[str, str]) -> Settings:
    supabase_url, service_key = _supabase(env)
    database_url = _database_url(env)
    on_deployment = bool(_text(env, "RENDER"))
    if on_deployment and not (supabase_url or database_url):
        raise ConfigError("no database configured on a deployment (RENDER is set): set "
                          "SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, or DATABASE_URL")

    concurrency = dict(DEFAULT_PLATFORM_CONCURRENCY)
    for platform in PLATFORMS:
        concurrency[platform] = _integer(env, f"{platform.upper()}_CONCURRENCY",
                                         concurrency[platform], low=1, high=10_000)

    simulator = _url(env, "SIMULATOR_URL", None)
    endpoints = simulator_endpoints(simulator) if simulator else PlatformEndpoints()
    endpoints = PlatformEndpoints(
        facebook=_url(env, "FACEBOOK_API_BASE", endpoints.facebook) or endpoints.facebook,
        facebook_api_version=_facebook_version(env) or endpoints.facebook_api_version,
        facebook_video=_url(env, "FACEBOOK_VIDEO_API_BASE", endpoints.facebook_video)
        or endpoints.facebook_video,
        instagram=_url(env, "INSTAGRAM_API_BASE", endpoints.instagram) or endpoints.instagram,
        # INSTAGRAM_REFRESH_BASE: its older name, from when only the refresh went there
        instagram_graph=_url(env, "INSTAGRAM_GRAPH_API_BASE", None)
        or _url(env, "INSTAGRAM_REFRESH_BASE", endpoints.instagram_graph)
        or endpoints.instagram_graph,
        linkedin=_url(env, "LINKEDIN_API_BASE", endpoints.linkedin) or endpoints.linkedin,
        linkedin_version=_linkedin_version(env) or endpoints.linkedin_version,
        linkedin_oauth=_url(env, "LINKEDIN_OAUTH_BASE", endpoints.linkedin_oauth)
        or endpoints.linkedin_oauth,
        youtube_upload=_url(env, "YOUTUBE_API_BASE", endpoints.youtube_upload)
        or endpoints.youtube_upload,
        google_oauth=_url(env, "GOOGLE_OAUTH_BASE", endpoints.google_oauth)
        or endpoints.google_oauth,
    )

    log_format = _choice(env, "LOG_FORMAT", "json", ("json", "text"))
    log_level = _choice(env, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
    encryption_key, previous = _encryption_keys(env)
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
        data_dir=_data_dir(env),
        on_deployment=on_deployment,
        encryption_key=encryption_key,
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
        alerts=read_alerts(env),
        review=read_review(env),
        preflight=read_preflight(env),
        metrics_port=read_metrics_port(env),
        metrics_host=read_metrics_host(env),
        webhooks=read_webhooks(env),
    )
    if worker := _worker_id(env):
        settings = replace(settings, worker_id=worker)
    return settings


SIMULATOR_INSTAGRAM_GRAPH = "/_ig"
"""The simulator serves graph.instagram.com under this path prefix, graph.facebook.com at
its root, so that each host can refuse the other's tokens as the real ones do."""


def simulator_endpoints(url: str) -> PlatformEndpoints:
    """Every platform (and its token endpoint) served by the simulator at url."""
    return PlatformEndpoints(facebook=url, facebook_video=url, instagram=url,
                             instagram_graph=url + SIMULATOR_INSTAGRAM_GRAPH, linkedin=url,
                             linkedin_oauth=url, youtube_upload=url, google_oauth=url)


def _facebook_version(env: Mapping[str, str]) -> str | None:
    value = _text(env, "FACEBOOK_API_VERSION")
    if value is not None and not re.fullmatch(r"v\d{1,3}\.\d{1,3}", value):
        raise ConfigError(f"FACEBOOK_API_VERSION must look like v25.0, got {_shown(value)}")
    return value


def _linkedin_version(env: Mapping[str, str]) -> str | None:
    value = _text(env, "LINKEDIN_VERSION")
    if value is not None and not re.fullmatch(r"20\d\d(0[1-9]|1[0-2])", value):
        raise ConfigError(f"LINKEDIN_VERSION must be a YYYYMM month such as 202601, "
                          f"got {_shown(value)}")
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
        for name, value in ((f"{prefix}_CLIENT_ID", client_id),
                            (f"{prefix}_CLIENT_SECRET", secret)):
            if value and _has_blank_or_control(value):
                raise ConfigError(f"{name} contains spaces or control characters "
                                  "(value not shown)")
        if client_id and secret:
            clients[platform] = OAuthClient(client_id=client_id, client_secret=secret)
    return clients
