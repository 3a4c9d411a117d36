"""Settings: read from the environment once, every bad value named, secrets masked."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from publisher.errors import ConfigError
from publisher.settings import DEFAULT_PLATFORM_CONCURRENCY, Settings, database_url_problem

SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.c2VydmljZV9yb2xl.c2VjcmV0LXNpZ25hdHVyZQ"
DB_PASSWORD = "pa55-w0rd-not-for-logs"
DATABASE_URL = f"postgresql://postgres.ref:{DB_PASSWORD}@aws-0.pooler.supabase.com:6543/postgres"
ENCRYPTION_KEY = "q6Vt0m0Cq2u2b8Yv9n2kqB1wX3yZ4a5B6c7D8e9F0gE="
OLD_KEY = "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg="
OLDER_KEY = "YmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXhmb29iYXI="


def test_defaults_with_an_empty_environment() -> None:
    """Nothing set: the embedded store, the documented defaults, no deployment."""
    s = Settings.from_env({})
    assert s.store_kind == "embedded"
    assert (s.supabase_url, s.supabase_service_role_key, s.database_url) == (None, None, None)
    assert not s.on_deployment
    assert s.max_publish_delay_hours == 24.0
    assert s.run_deadline_seconds == 50.0
    assert s.lease_seconds == 600.0
    assert s.http_timeout_seconds == 30.0
    assert (s.retry_base_seconds, s.retry_max_seconds) == (60.0, 3600.0)
    assert s.max_concurrency == 64
    assert s.account_concurrency == 2
    assert dict(s.platform_concurrency) == DEFAULT_PLATFORM_CONCURRENCY == {
        "facebook": 8, "instagram": 5, "linkedin": 4, "youtube": 4}
    assert (s.log_format, s.log_level) == ("json", "INFO")
    assert s.encryption_key is None
    assert s.encryption_keys_previous == ()
    assert s.simulator_url is None
    assert s.endpoints.facebook == "https://graph.facebook.com"
    assert s.endpoints.linkedin == "https://api.linkedin.com"
    assert s.worker_id


def test_blank_values_count_as_unset() -> None:
    """Variables set to empty or spaces (as .env.example leaves them) take the defaults."""
    s = Settings.from_env({"SUPABASE_URL": "", "DATABASE_URL": "  ", "MAX_CONCURRENCY": "",
                           "LOG_FORMAT": " ", "WORKER_ID": ""})
    assert s.store_kind == "embedded"
    assert s.max_concurrency == 64
    assert s.log_format == "json"


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping, os.environ is read."""
    monkeypatch.setenv("MAX_CONCURRENCY", "7")
    monkeypatch.setenv("WORKER_ID", "render-cron-1")
    s = Settings.from_env()
    assert (s.max_concurrency, s.worker_id) == (7, "render-cron-1")


def test_values_are_parsed() -> None:
    """Numbers, lists, case and URLs are normalised."""
    s = Settings.from_env({
        "MAX_PUBLISH_DELAY_HOURS": "12.5", "LEASE_SECONDS": "120", "HTTP_TIMEOUT_SECONDS": "15",
        "FACEBOOK_CONCURRENCY": "3", "YOUTUBE_CONCURRENCY": "1", "ACCOUNT_CONCURRENCY": "5",
        "LOG_FORMAT": "TEXT", "LOG_LEVEL": "debug", "WORKER_ID": "w-1",
        "ENCRYPTION_KEY": ENCRYPTION_KEY, "ENCRYPTION_KEYS_PREVIOUS": f" {OLD_KEY} ,, {OLDER_KEY} ",
        "SIMULATOR_URL": "http://127.0.0.1:8900/", "LINKEDIN_API_BASE": "https://li.example/",
    })
    assert s.max_publish_delay_hours == 12.5
    assert (s.lease_seconds, s.http_timeout_seconds) == (120.0, 15.0)
    assert dict(s.platform_concurrency) == {"facebook": 3, "instagram": 5, "linkedin": 4,
                                            "youtube": 1}
    assert s.account_concurrency == 5
    assert (s.log_format, s.log_level, s.worker_id) == ("text", "DEBUG", "w-1")
    assert s.encryption_key == ENCRYPTION_KEY
    assert s.encryption_keys_previous == (OLD_KEY, OLDER_KEY)
    assert s.simulator_url == "http://127.0.0.1:8900"
    assert s.endpoints.facebook == s.endpoints.instagram == "http://127.0.0.1:8900"
    assert s.endpoints.youtube_upload == "http://127.0.0.1:8900"
    assert s.endpoints.linkedin == "https://li.example"  # an explicit base wins


def test_instagram_has_a_host_per_login_type() -> None:
    """graph.facebook.com (Facebook Login) and graph.instagram.com (Instagram Login) by
    default; INSTAGRAM_GRAPH_API_BASE moves the second (INSTAGRAM_REFRESH_BASE, its older
    name, too); the simulator serves the second under its own prefix."""
    default = Settings.from_env({}).endpoints
    assert (default.instagram, default.instagram_graph) == (
        "https://graph.facebook.com", "https://graph.instagram.com")
    moved = Settings.from_env({"INSTAGRAM_GRAPH_API_BASE": "https://ig.example/"}).endpoints
    assert moved.instagram_graph == "https://ig.example"
    old = Settings.from_env({"INSTAGRAM_REFRESH_BASE": "https://old.example"}).endpoints
    assert old.instagram_graph == "https://old.example"
    both = Settings.from_env({"INSTAGRAM_GRAPH_API_BASE": "https://new.example",
                              "INSTAGRAM_REFRESH_BASE": "https://old.example"}).endpoints
    assert both.instagram_graph == "https://new.example"
    sim = Settings.from_env({"SIMULATOR_URL": "http://127.0.0.1:8900"}).endpoints
    assert (sim.instagram, sim.instagram_graph) == (
        "http://127.0.0.1:8900", "http://127.0.0.1:8900/_ig")


def test_store_kind_follows_the_settings() -> None:
    """Supabase when its URL and key are set, postgres for DATABASE_URL, else embedded."""
    supabase = Settings.from_env({"SUPABASE_URL": "https://ref.supabase.co",
                                  "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY, "RENDER": "true"})
    assert (supabase.store_kind, supabase.on_deployment) == ("supabase", True)
    assert supabase.supabase_url == "https://ref.supabase.co"
    direct = Settings.from_env({"DATABASE_URL": DATABASE_URL, "RENDER": "true"})
    assert (direct.store_kind, direct.database_url) == ("postgres", DATABASE_URL)
    assert Settings.from_env({"DATABASE_URL": "postgres://u@h/db"}).store_kind == "postgres"


@pytest.mark.parametrize(("env", "variable"), [
    ({"MAX_PUBLISH_DELAY_HOURS": "a day"}, "MAX_PUBLISH_DELAY_HOURS"),
    ({"MAX_PUBLISH_DELAY_HOURS": "0"}, "MAX_PUBLISH_DELAY_HOURS"),
    ({"MAX_PUBLISH_DELAY_HOURS": "nan"}, "MAX_PUBLISH_DELAY_HOURS"),
    ({"MAX_PUBLISH_DELAY_HOURS": "inf"}, "MAX_PUBLISH_DELAY_HOURS"),
    ({"RUN_DEADLINE_SECONDS": "-5"}, "RUN_DEADLINE_SECONDS"),
    ({"RUN_DEADLINE_SECONDS": "50s"}, "RUN_DEADLINE_SECONDS"),
    ({"LEASE_SECONDS": "5"}, "LEASE_SECONDS"),
    ({"LEASE_SECONDS": "ten minutes"}, "LEASE_SECONDS"),
    ({"HTTP_TIMEOUT_SECONDS": "0"}, "HTTP_TIMEOUT_SECONDS"),
    ({"MAX_CONCURRENCY": "2.5"}, "MAX_CONCURRENCY"),
    ({"MAX_CONCURRENCY": "0"}, "MAX_CONCURRENCY"),
    ({"MAX_CONCURRENCY": "1e9"}, "MAX_CONCURRENCY"),
    ({"FACEBOOK_CONCURRENCY": "many"}, "FACEBOOK_CONCURRENCY"),
    ({"INSTAGRAM_CONCURRENCY": "0"}, "INSTAGRAM_CONCURRENCY"),
    ({"LINKEDIN_CONCURRENCY": "-1"}, "LINKEDIN_CONCURRENCY"),
    ({"YOUTUBE_CONCURRENCY": "99999"}, "YOUTUBE_CONCURRENCY"),
    ({"ACCOUNT_CONCURRENCY": "two"}, "ACCOUNT_CONCURRENCY"),
    ({"RETRY_BASE_SECONDS": "-1"}, "RETRY_BASE_SECONDS"),
    ({"RETRY_MAX_SECONDS": "soon"}, "RETRY_MAX_SECONDS"),
    ({"RETRY_BASE_SECONDS": "600", "RETRY_MAX_SECONDS": "60"}, "RETRY_MAX_SECONDS"),
    ({"LEASE_SECONDS": "30", "HTTP_TIMEOUT_SECONDS": "30"}, "LEASE_SECONDS"),
    ({"LEASE_SECONDS": "30", "HTTP_TIMEOUT_SECONDS": "60"}, "HTTP_TIMEOUT_SECONDS"),
    ({"SUPABASE_URL": "https://ref.supabase.co"}, "SUPABASE_SERVICE_ROLE_KEY"),
    ({"SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "ref.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY},
     "SUPABASE_URL"),
    ({"RENDER": "true"}, "RENDER"),
    ({"RENDER": "true", "PUBLISHER_DATA_DIR": "/var/data"}, "DATABASE_URL"),
    ({"DATABASE_URL": f"mysql://root:{DB_PASSWORD}@db/app"}, "DATABASE_URL"),
    ({"DATABASE_URL": "localhost:5432"}, "DATABASE_URL"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ({"LOG_LEVEL": "TRACE"}, "LOG_LEVEL"),
    ({"SIMULATOR_URL": "localhost:8900"}, "SIMULATOR_URL"),
    ({"FACEBOOK_API_BASE": "ftp://graph.facebook.com"}, "FACEBOOK_API_BASE"),
])
def test_bad_value_raises_config_error_naming_the_variable(env: dict[str, str],
                                                           variable: str) -> None:
    """Each bad or inconsistent value raises ConfigError whose message names the variable."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert variable in message
    for secret in (SERVICE_KEY, DB_PASSWORD):
        assert secret not in message


def test_repr_masks_every_secret() -> None:
    """repr/str show *** for the service role key, database URL and encryption keys."""
    s = Settings.from_env({
        "SUPABASE_URL": "https://ref.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY,
        "DATABASE_URL": DATABASE_URL, "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "ENCRYPTION_KEYS_PREVIOUS": OLD_KEY,
    })
    for text in (repr(s), str(s), f"{s}", f"{s!r}"):
        for secret in (SERVICE_KEY, DATABASE_URL, DB_PASSWORD, ENCRYPTION_KEY, OLD_KEY):
            assert secret not in text
        assert "supabase_service_role_key='***'" in text
        assert "database_url='***'" in text
        assert "encryption_key='***'" in text
        assert "encryption_keys_previous='***'" in text
        assert "https://ref.supabase.co" in text  # not a secret: still shown


def test_repr_shows_unset_secrets_as_none() -> None:
    """An unset secret shows as None, so the repr tells set from unset."""
    text = repr(Settings.from_env({}))
    assert "supabase_service_role_key=None" in text
    assert "encryption_key=None" in text


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after start-up."""
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.max_concurrency = 1  # type: ignore[misc]


def _jwt(claims: dict[str, str]) -> str:
    """An unsigned JWT-shaped key carrying the claims (the settings only read the role)."""
    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLXNlY3JldA"


ANON_KEY = _jwt({"role": "anon", "iss": "supabase"})
SUPABASE_PASSWORD = "sb-dashboard-pw-31337"
BAD_KEY = "this-is-not-a-key-but-a-secret-anyway"
SB = {"SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY}
SECRETS = (SERVICE_KEY, DB_PASSWORD, ANON_KEY, SUPABASE_PASSWORD, BAD_KEY, ENCRYPTION_KEY,
           "c2lnbmF0dXJlLXNlY3JldA")


def _pg(rest: str) -> str:
    return f"postgresql://app:{DB_PASSWORD}@{rest}"


# Every setting the program reads, each way it can be malformed: (env, the variable the
# message must name). Passwords, keys and tokens in these values must never be echoed.
MALFORMED = [
    # DATABASE_URL: ports, hosts, schemes, spaces, what cannot be parsed
    ({"DATABASE_URL": _pg("127.0.0.1:notaport/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example:0/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example:65536/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example:-1/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example:/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example:5432,other:x/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example:5432,,other/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql:///db"}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("[::1/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("[::1]x/db")}, "DATABASE_URL"),
    ({"DATABASE_URL": f"postgresql://app:{DB_PASSWORD} x@db.example/db"}, "DATABASE_URL"),
    ({"DATABASE_URL": f"postgresql://app:{DB_PASSWORD}\t@db.example/db"}, "DATABASE_URL"),
    ({"DATABASE_URL": f"postgresql://app:{DB_PASSWORD}@@db.example/db"}, "DATABASE_URL"),
    ({"DATABASE_URL": f"postgresql://app:{DB_PASSWORD}/x@db.example/db"}, "DATABASE_URL"),
    ({"DATABASE_URL": f"postgresql://app:{DB_PASSWORD}#x@db.example/db"}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example/db?sslmode=sometimes")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example/db?port=five")}, "DATABASE_URL"),
    ({"DATABASE_URL": _pg("db.example/db?novalue")}, "DATABASE_URL"),
    ({"DATABASE_URL": f"https://app:{DB_PASSWORD}@db.example/db"}, "DATABASE_URL"),
    ({"DATABASE_URL": f"{DB_PASSWORD}"}, "DATABASE_URL"),
    # SUPABASE_URL and its key
    ({"SUPABASE_URL": "https://", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "https://ref.supabase.co:notaport", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "https://ref.supabase.co:0", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "https://ref.supabase.co:70000", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "https://ref supabase.co", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "https://[ref.supabase.co", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "ftp://ref.supabase.co", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "https://ref.supabase.co/rest/v1/", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "https://ref.supabase.co/?apikey=x", **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": f"https://postgres:{SUPABASE_PASSWORD}@ref.supabase.co", **SB},
     "SUPABASE_URL"),
    ({"SUPABASE_URL": _pg("db.ref.supabase.co:5432/postgres"), **SB}, "SUPABASE_URL"),
    ({"SUPABASE_URL": "https://ref.supabase.co",
      "SUPABASE_SERVICE_ROLE_KEY": ANON_KEY}, "SUPABASE_SERVICE_ROLE_KEY"),
    ({"SUPABASE_URL": "https://ref.supabase.co",
      "SUPABASE_SERVICE_ROLE_KEY": f"{BAD_KEY} {BAD_KEY}"}, "SUPABASE_SERVICE_ROLE_KEY"),
    ({"SUPABASE_URL": "https://ref.supabase.co",
      "SUPABASE_SERVICE_ROLE_KEY": f"{BAD_KEY}\u00e9"}, "SUPABASE_SERVICE_ROLE_KEY"),
    # the other URLs
    ({"SIMULATOR_URL": "http://127.0.0.1:99999"}, "SIMULATOR_URL"),
    ({"SIMULATOR_URL": "http://"}, "SIMULATOR_URL"),
    ({"LINKEDIN_API_BASE": "https://api.linkedin.com:x"}, "LINKEDIN_API_BASE"),
    ({"INSTAGRAM_API_BASE": "graph.facebook.com"}, "INSTAGRAM_API_BASE"),
    ({"YOUTUBE_API_BASE": "https://www.googleapis.com#frag"}, "YOUTUBE_API_BASE"),
    ({"GOOGLE_OAUTH_BASE": "https://oauth2.googleapis .com"}, "GOOGLE_OAUTH_BASE"),
    ({"FACEBOOK_VIDEO_API_BASE": "https://[::1"}, "FACEBOOK_VIDEO_API_BASE"),
    ({"INSTAGRAM_REFRESH_BASE": "ws://graph.instagram.com"}, "INSTAGRAM_REFRESH_BASE"),
    ({"INSTAGRAM_GRAPH_API_BASE": "graph.instagram.com"}, "INSTAGRAM_GRAPH_API_BASE"),
    ({"LINKEDIN_OAUTH_BASE": f"https://u:{SUPABASE_PASSWORD}@www.linkedin.com"},
     "LINKEDIN_OAUTH_BASE"),
    # numbers: not numbers, not finite, negative, huge
    ({"MAX_PUBLISH_DELAY_HOURS": "-inf"}, "MAX_PUBLISH_DELAY_HOURS"),
    ({"MAX_PUBLISH_DELAY_HOURS": "1e999"}, "MAX_PUBLISH_DELAY_HOURS"),
    ({"MAX_PUBLISH_DELAY_HOURS": "NaN"}, "MAX_PUBLISH_DELAY_HOURS"),
    ({"RUN_DEADLINE_SECONDS": "inf"}, "RUN_DEADLINE_SECONDS"),
    ({"RUN_DEADLINE_SECONDS": "1e12"}, "RUN_DEADLINE_SECONDS"),
    ({"LEASE_SECONDS": "nan"}, "LEASE_SECONDS"),
    ({"HTTP_TIMEOUT_SECONDS": "-30"}, "HTTP_TIMEOUT_SECONDS"),
    ({"HTTP_TIMEOUT_SECONDS": "thirty"}, "HTTP_TIMEOUT_SECONDS"),
    ({"RETRY_BASE_SECONDS": "nan"}, "RETRY_BASE_SECONDS"),
    ({"RETRY_MAX_SECONDS": "1e308"}, "RETRY_MAX_SECONDS"),
    ({"WORKER_POLL_SECONDS": "0"}, "WORKER_POLL_SECONDS"),
    ({"WORKER_POLL_SECONDS": "inf"}, "WORKER_POLL_SECONDS"),
    ({"MAX_CONCURRENCY": "9" * 5000}, "MAX_CONCURRENCY"),
    ({"MAX_CONCURRENCY": "-64"}, "MAX_CONCURRENCY"),
    ({"MAX_CONCURRENCY": "nan"}, "MAX_CONCURRENCY"),
    ({"ACCOUNT_CONCURRENCY": "0"}, "ACCOUNT_CONCURRENCY"),
    ({"ACCOUNT_CONCURRENCY": "10001"}, "ACCOUNT_CONCURRENCY"),
    ({"FACEBOOK_CONCURRENCY": "8.5"}, "FACEBOOK_CONCURRENCY"),
    # keys
    ({"ENCRYPTION_KEY": BAD_KEY}, "ENCRYPTION_KEY"),
    ({"ENCRYPTION_KEY": ENCRYPTION_KEY[:-2]}, "ENCRYPTION_KEY"),
    ({"ENCRYPTION_KEY": ENCRYPTION_KEY, "ENCRYPTION_KEYS_PREVIOUS": f"{OLD_KEY},{BAD_KEY}"},
     "ENCRYPTION_KEYS_PREVIOUS"),
    ({"GOOGLE_CLIENT_ID": "id.apps.googleusercontent.com",
      "GOOGLE_CLIENT_SECRET": f"{BAD_KEY} x"}, "GOOGLE_CLIENT_SECRET"),
    ({"LINKEDIN_CLIENT_ID": "client id", "LINKEDIN_CLIENT_SECRET": BAD_KEY},
     "LINKEDIN_CLIENT_ID"),
    ({"LINKEDIN_CLIENT_SECRET": BAD_KEY}, "LINKEDIN_CLIENT_ID"),
    # choices and formats
    ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
    ({"LOG_LEVEL": "10"}, "LOG_LEVEL"),
    ({"FACEBOOK_API_VERSION": "25.0"}, "FACEBOOK_API_VERSION"),
    ({"FACEBOOK_API_VERSION": "v25.0/me"}, "FACEBOOK_API_VERSION"),
    ({"LINKEDIN_VERSION": "202613"}, "LINKEDIN_VERSION"),
    ({"LINKEDIN_VERSION": "2026-01"}, "LINKEDIN_VERSION"),
    ({"WORKER_ID": "w" * 201}, "WORKER_ID"),
    ({"WORKER_ID": "worker\x07one"}, "WORKER_ID"),
]


@pytest.mark.parametrize(("env", "variable"), MALFORMED)
def test_every_malformed_setting_is_named_and_masked(env: dict[str, str], variable: str) -> None:
    """Each malformed value: ConfigError naming the variable, on one line, with no password,
    key or token from any value in it."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message
    assert len(message) < 400
    for secret in SECRETS:
        assert secret not in message


@pytest.mark.parametrize("url", [
    "postgresql://app:pw@db.example:5432/app",
    "postgres://app@db.example/app",
    "postgresql://app:p%40ss%2Fw%3Ard@db.example:6543/postgres?sslmode=require",
    "postgresql://app@[::1]:5432/app",
    "postgresql://app@[2001:db8::1]/app",
    "postgresql://app@db1.example:5432,db2.example:5433/app?target_session_attrs=primary",
    "postgresql://postgres@/publisher?host=/tmp/pg%20data",
    "postgresql://postgres:@/postgres?host=/tmp/x&port=5433",
    "POSTGRESQL://app@db.example/app",
])
def test_valid_database_urls_pass(url: str) -> None:
    """The URL forms libpq and asyncpg accept (encoded passwords, IPv6, several hosts, a
    socket directory) are kept as they are."""
    assert database_url_problem(url) is None
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url


def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    """PUBLISHER_DATA_DIR naming a file, not a folder, is refused at start-up."""
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    with pytest.raises(ConfigError, match="PUBLISHER_DATA_DIR"):
        Settings.from_env({"PUBLISHER_DATA_DIR": str(afile)})
    assert Settings.from_env({"PUBLISHER_DATA_DIR": str(tmp_path)}).data_dir == tmp_path


def test_service_role_keys_that_are_not_jwts_are_accepted() -> None:
    """Supabase's newer secret keys (not JWTs) and a service_role JWT both pass."""
    for key in ("sb_secret_abcdefghijklmnopqrstuv", _jwt({"role": "service_role"})):
        s = Settings.from_env({"SUPABASE_URL": "https://ref.supabase.co",
                               "SUPABASE_SERVICE_ROLE_KEY": key})
        assert s.supabase_service_role_key == key


def test_an_anon_key_names_its_role_not_its_value() -> None:
    """The anon key in place of the service role key: the message says which role it is."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SUPABASE_URL": "https://ref.supabase.co",
                           "SUPABASE_SERVICE_ROLE_KEY": ANON_KEY})
    assert "'anon'" in str(caught.value)
    assert ANON_KEY not in str(caught.value)


def test_env_example_as_shipped_is_valid() -> None:
    """.env.example, copied as it is, passes every check (its blanks are the defaults)."""
    path = Path(__file__).resolve().parents[1] / ".env.example"
    env = dict(line.split("=", 1) for line in path.read_text().splitlines()
               if line.strip() and not line.startswith("#"))
    assert "ENCRYPTION_KEYS_PREVIOUS" in env
    s = Settings.from_env(env)
    assert s.store_kind == "embedded"
    assert s.endpoints.facebook_api_version == env["FACEBOOK_API_VERSION"]
