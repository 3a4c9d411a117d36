"""Databases to compare, on one embedded Postgres (or any server, by URL).

    fresh          every migration, as `publisher migrate` or `supabase db push` applies them
                   to a new database
    declarative    supabase/schemas/*.sql, in file-name order, on an empty database
    upgraded       the migrations as they were when last deployed (DEPLOYED, read from git),
                   then only the files added since: what `supabase db push` applies to a
                   database deployed then (it never applies an edited old file again)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from publisher.store.migrations import apply_migrations

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "supabase" / "migrations"
SCHEMAS = ROOT / "supabase" / "schemas"
# The commit whose migration files are the last ones deployed anywhere: every file added
# after it is new to an existing database, every file it had is history that a deployed
# database will not run again, even where it was edited since.
DEPLOYED = "1b2bc4d"


def url_for(server_url: str, database: str) -> str:
    """The server URL with its database swapped for `database`."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + quote(database)))


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """An embedded Postgres (the pgserver wheel) in a temporary folder: its maintenance URL."""
    import pgserver  # the dev extra; imported here so the catalog code needs no server

    folder = tempfile.mkdtemp(prefix="schema-dump-")
    # pgserver re-exports get_server without __all__.
    server = pgserver.get_server(  # type: ignore[attr-defined]
        os.path.join(folder, "pg"), cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def pg_bin(tool: str) -> str:
    """A client program of the embedded Postgres's own version (pg_dump), else from PATH."""
    try:
        import pgserver
    except ImportError:
        return tool
    shipped = Path(pgserver.__file__).parent / "pginstall" / "bin" / tool
    return str(shipped) if shipped.exists() else tool


@contextlib.asynccontextmanager
async def scratch_database(server_url: str, label: str) -> AsyncIterator[str]:
    """An empty database on the server, dropped afterwards: its URL."""
    name = f"schema_dump_{label}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url, statement_cache_size=0)
    try:
        await admin.execute(f'create database "{name}"')
        try:
            yield url_for(server_url, name)
        finally:
            await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


async def migrate(url: str, files: list[Path]) -> None:
    """Applies these migration files (and no others) through publisher's migrator."""
    with tempfile.TemporaryDirectory(prefix="migrations-") as folder:
        for path in files:
            shutil.copyfile(path, Path(folder) / path.name)
        await apply_migrations(url, Path(folder))


def current_files(before: str | None = None) -> list[Path]:
    """The migration files in order; with `before`, only those sorting before that name."""
    return [p for p in sorted(MIGRATIONS.glob("*.sql")) if before is None or p.name < before]


async def fresh(url: str, *, before: str | None = None) -> None:
    await migrate(url, current_files(before))


async def declarative(url: str, folder: Path = SCHEMAS) -> None:
    """Applies every .sql file of `folder` in file-name order, as Supabase's CLI does."""
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for name, text in _read_sql(folder):
            try:
                await conn.execute(text)
            except asyncpg.PostgresError as exc:
                raise RuntimeError(f"{name}: {exc}") from exc
    finally:
        await conn.close()


def _read_sql(folder: Path) -> list[tuple[str, str]]:
    return [(path.name, path.read_text()) for path in sorted(folder.glob("*.sql"))]


def deployed_history_missing() -> str | None:
    """Why the deployed files cannot be read from git, or None when they can."""
    try:
        subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e",  # noqa: S603, S607 - git, fixed arguments
                        f"{DEPLOYED}^{{commit}}"],
                       check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return f"git history with commit {DEPLOYED} (the last deployed migrations) is missing"
    return None


def deployed_files(folder: Path) -> list[Path]:
    """The migration files as they were at DEPLOYED, written into `folder`."""
    names = _git("ls-tree", "--name-only", f"{DEPLOYED}:supabase/migrations").split()
    written = []
    for name in sorted(n for n in names if n.endswith(".sql")):
        path = folder / name
        path.write_text(_git("show", f"{DEPLOYED}:supabase/migrations/{name}"))
        written.append(path)
    return written


async def upgraded(url: str, *, before: str | None = None) -> list[str]:
    """The deployed files, then the files added since (those sorting before `before`):
    returns the names of the files added since."""
    with tempfile.TemporaryDirectory(prefix="deployed-") as folder:
        old = deployed_files(Path(folder))
        await migrate(url, old)
    known = {p.name for p in old}
    new = [p for p in current_files(before) if p.name not in known]
    await migrate(url, new)
    return [p.name for p in new]


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args],  # noqa: S603, S607 - git, fixed arguments
                          check=True, capture_output=True, text=True, timeout=60)
    return done.stdout
