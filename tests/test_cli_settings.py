"""Settings mistakes through the CLI: `python -m publisher run` exits 2 with one line naming
the variable, never a traceback, never a password or key; and the store's own refusals of a
URL or key that passed our parse end the same way."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import asyncpg
import httpx
import pytest
import respx

from helpers import insert_post, post_statuses, url_for
from publisher.cli import _publisher_error, exit_code
from publisher.crypto import generate_key
from publisher.errors import ConfigError, StoreError, TokenError
from publisher.store import Store
from publisher.store.postgres import PostgresTransport
from publisher.store.supabase import SupabaseTransport

PASSWORD = "s3cret-db-pass-42"
KEY = generate_key()
SERVICE_KEY = "sb_secret_not-a-real-key-0123456789"
SUPABASE_URL = "https://abcdefghijklmnop.supabase.co"


def _run(env: Mapping[str, str], tmp_path: Path,
         args: tuple[str, ...] = ("run",)) -> subprocess.CompletedProcess[str]:
    """`python -m publisher run` with only these settings (and PATH), in tmp_path."""
    full = {"PATH": os.environ.get("PATH", ""), "PUBLISHER_DATA_DIR": str(tmp_path / "data"),
            **env}
    command = [sys.executable, "-m", "publisher", *args]
    return subprocess.run(command, env=full, capture_output=True, text=True,  # noqa: S603 - ours
                          timeout=60, cwd=tmp_path, check=False)


def _assert_settings_error(done: subprocess.CompletedProcess[str], variable: str,
                           *secrets: str) -> None:
    assert done.returncode == 2, done.stderr
    assert variable in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for secret in secrets:
        assert secret not in done.stdout + done.stderr


@pytest.mark.parametrize(("env", "variable", "secrets"), [
    ({"DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/db",
      "ENCRYPTION_KEY": KEY}, "DATABASE_URL", (PASSWORD, KEY)),
    ({"DATABASE_URL": f"postgresql://u:{PASSWORD}@/db", "ENCRYPTION_KEY": KEY},
     "DATABASE_URL", (PASSWORD,)),
    ({"DATABASE_URL": f"postgresql://u:{PASSWORD}@db.example/db",
      "ENCRYPTION_KEY": KEY[:20]}, "ENCRYPTION_KEY", (PASSWORD, KEY[:20])),
    ({"SUPABASE_URL": "https://ref.supabase.co:99999", "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY,
      "ENCRYPTION_KEY": KEY}, "SUPABASE_URL", (SERVICE_KEY, KEY)),
    ({"DATABASE_URL": f"postgresql://u:{PASSWORD}@db.example/db", "ENCRYPTION_KEY": " "},
     "ENCRYPTION_KEY", (PASSWORD,)),
    ({"MAX_CONCURRENCY": "nan"}, "MAX_CONCURRENCY", ()),
    ({"LOG_LEVEL": "TRACE"}, "LOG_LEVEL", ()),
])
def test_malformed_setting_exits_2(env: dict[str, str], variable: str,
                                   secrets: tuple[str, ...], tmp_path: Path) -> None:
    """Checked before anything starts: exit 2, the variable named, nothing secret shown."""
    _assert_settings_error(_run(env, tmp_path), variable, *secrets)


def test_migrate_with_a_malformed_url_argument_exits_2(tmp_path: Path) -> None:
    """`migrate --database-url` gets the same check; argparse exits 2 without the URL."""
    url = f"postgresql://u:{PASSWORD}@db.example:port/db"
    done = _run({}, tmp_path, ("migrate", "--database-url", url))
    assert done.returncode == 2
    assert "--database-url" in done.stderr
    assert "port" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


async def test_url_the_driver_refuses_exits_2(database_url: str, db: asyncpg.Connection,
                                              tmp_path: Path) -> None:
    """A URL that passes our parse but asyncpg refuses when connecting (an option value it
    does not know) is a settings error too, and nothing is claimed."""
    post = await insert_post(db)
    url = f"{database_url}{'&' if '?' in database_url else '?'}target_session_attrs=sideways"
    done = await asyncio.to_thread(_run, {"DATABASE_URL": url, "ENCRYPTION_KEY": KEY},
                                   tmp_path)
    _assert_settings_error(done, "DATABASE_URL", KEY)
    assert await post_statuses(db, [post]) == {post: "scheduled"}


async def test_unknown_database_exits_2(pg_server: str, tmp_path: Path) -> None:
    """A database name the server does not have: the server refuses the URL, exit 2."""
    url = url_for(pg_server, "no_such_database_here")
    done = await asyncio.to_thread(_run, {"DATABASE_URL": url, "ENCRYPTION_KEY": KEY},
                                   tmp_path)
    _assert_settings_error(done, "DATABASE_URL", KEY)


async def test_driver_refusal_masks_the_password(pg_server: str) -> None:
    """asyncpg's own message can quote the URL's parts; the password is masked in ours."""
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:5432/db?target_session_attrs={PASSWORD}"
    with pytest.raises(ConfigError) as caught:
        await PostgresTransport.connect(url)
    assert "DATABASE_URL" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(("answer", "variable"), [
    (httpx.Response(401, json={"message": "Invalid API key",
                               "hint": "Double check your Supabase `anon` or `service_role` "
                                       "API key."}), "SUPABASE_SERVICE_ROLE_KEY"),
    (httpx.Response(401, json={"code": "PGRST301", "message": "JWSError JWSInvalidSignature",
                               "details": None, "hint": None}), "SUPABASE_SERVICE_ROLE_KEY"),
    (httpx.UnsupportedProtocol("Request URL has an unsupported protocol"), "SUPABASE_URL"),
])
async def test_supabase_refusal_before_the_first_answer_is_a_settings_error(
        answer: httpx.Response | Exception, variable: str) -> None:
    """The first call (the start-up key check) refused for the URL or key: ConfigError
    naming it. Once the store has answered, the same failure is a StoreError (exit 1), so
    a refusal mid-run never cuts the run's own error handling short."""
    refuse = {"side_effect": answer} if isinstance(answer, Exception) else {
        "side_effect": None, "return_value": answer}
    async with respx.mock(assert_all_mocked=True) as router:
        route = router.post(url__regex=r"/rest/v1/rpc/sample_sealed_tokens$").mock(**refuse)
        store = Store(await SupabaseTransport.connect(SUPABASE_URL, SERVICE_KEY))
        try:
            with pytest.raises(ConfigError, match=variable) as caught:
                await store.sample_sealed_tokens(12)
            assert SERVICE_KEY not in str(caught.value)
            route.mock(side_effect=None, return_value=httpx.Response(200, json=[]))
            assert await store.sample_sealed_tokens(12) == []
            route.mock(**refuse)
            with pytest.raises(StoreError):
                await store.sample_sealed_tokens(12)
        finally:
            await store.close()


def test_exit_codes_and_error_groups() -> None:
    """ConfigError anywhere (also inside a TaskGroup's ExceptionGroup) is exit 2; a
    StoreError alone is exit 1; a group with a non-publisher error is left to raise."""
    config, store = ConfigError("ENCRYPTION_KEY is wrong"), StoreError("database down")
    assert exit_code(config) == 2
    assert exit_code(store) == 1
    assert exit_code(TokenError()) == 2
    assert _publisher_error(ExceptionGroup("run", [store, config])) is config
    assert _publisher_error(ExceptionGroup("run", [ExceptionGroup("inner", [config])])) is config
    assert _publisher_error(ExceptionGroup("run", [store])) is store
    assert _publisher_error(ExceptionGroup("run", [config, ValueError("bug")])) is None
    assert _publisher_error(ValueError("bug")) is None
