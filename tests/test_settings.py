"""Settings: read from the environment once, every bad value named, secrets masked."""

from __future__ import annotations

import pytest

from publisher.errors import ConfigError
from publisher.settings import DEFAULT_PLATFORM_CONCURRENCY, Settings

SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.c2VydmljZV9yb2xl.c2VjcmV0LXNpZ25hdHVyZQ"
DB_PASSWORD = "pa55-w0rd-not-for-logs"
DATABASE_URL = f"postgresql://postgres.ref:{DB_PASSWORD}@aws-0.pooler.supabase.com:6543/postgres"
ENCRYPTION_KEY = "q6Vt0m0Cq2u2b8Yv9n2kqB1wX3yZ4a5B6c7D8e9F0gE="
OLD_KEY = "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg="


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
        "ENCRYPTION_KEY": ENCRYPTION_KEY, "ENCRYPTION_KEYS_PREVIOUS": f" {OLD_KEY} ,, x ",
        "SIMULATOR_URL": "http://127.0.0.1:8900/", "LINKEDIN_API_BASE": "https://li.example/",
    })
    assert s.max_publish_delay_hours == 12.5
    assert (s.lease_seconds, s.http_timeout_seconds) == (120.0, 15.0)
    assert dict(s.platform_concurrency) == {"facebook": 3, "instagram": 5, "linkedin": 4,
                                            "youtube": 1}
    assert s.account_concurrency == 5
    assert (s.log_format, s.log_level, s.worker_id) == ("text", "DEBUG", "w-1")
    assert s.encryption_key == ENCRYPTION_KEY
    assert s.encryption_keys_previous == (OLD_KEY, "x")
    assert s.simulator_url == "http://127.0.0.1:8900"
    assert s.endpoints.facebook == s.endpoints.instagram == "http://127.0.0.1:8900"
    assert s.endpoints.youtube_upload == "http://127.0.0.1:8900"
    assert s.endpoints.linkedin == "https://li.example"  # an explicit base wins


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
