"""scripts/schema-dump [--contract-migration] [--check]

Starts an embedded Postgres, builds a database from every migration and writes
supabase/schemas/*.sql from its catalog; then checks that a database built from those
files has the same catalog, and that one upgraded from the deployed migrations does too.

    --contract-migration  first rewrite supabase/migrations/20261207001300_current_contract.sql
                          with the functions an upgraded database would otherwise lack
    --check               write nothing: only compare, the contract migration included
                          (exit 1 on any difference)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import asyncpg

from . import build, contract, render
from .catalog import Catalog, diff, snapshot


async def _snapshot(url: str) -> Catalog:
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        return await snapshot(conn)
    finally:
        await conn.close()


def write_schemas(files: dict[str, str], folder: Path = build.SCHEMAS) -> list[str]:
    """Writes the files; removes .sql files of an earlier layout. Returns what changed."""
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for stale in sorted(set(p.name for p in folder.glob("*.sql")) - set(files)):
        (folder / stale).unlink()
        changed.append(f"removed {stale}")
    for name, text in files.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(f"wrote {name}")
    return changed


async def _compare(server: str, fresh: Catalog, schemas: Path) -> int:
    """0 when the declarative files and the upgrade path both give `fresh`'s catalog."""
    failures = 0
    async with build.scratch_database(server, "declarative") as url:
        await build.declarative(url, schemas)
        lines = diff(fresh, await _snapshot(url), left_name="migrations",
                     right_name="supabase/schemas")
    print(f"supabase/schemas/ vs migrations: {'equal' if not lines else 'DIFFERENT'}")
    _print(lines)
    failures += bool(lines)
    if (missing := build.deployed_history_missing()) is not None:
        print(f"upgrade path: not checked ({missing})")
        return failures
    async with build.scratch_database(server, "upgraded") as url:
        new = await build.upgraded(url)
        lines = diff(fresh, await _snapshot(url), left_name="fresh",
                     right_name=f"upgraded from {build.DEPLOYED}")
    print(f"upgrade from {build.DEPLOYED} (+ {len(new)} new files) vs fresh: "
          f"{'equal' if not lines else 'DIFFERENT (try --contract-migration)'}")
    _print(lines)
    return failures + bool(lines)


async def main(args: argparse.Namespace) -> int:
    with build.embedded_server() as server:
        failures = 0
        if args.check:
            failures += await _contract_is_current(server)
        elif args.contract_migration:
            found = await contract.write(server)
            print(f"{contract.PATH.relative_to(build.ROOT)}:")
            print("\n".join(f"  {line}" for line in found) or "  nothing to carry")
        async with build.scratch_database(server, "fresh") as url:
            await build.fresh(url)
            fresh = await _snapshot(url)
            files = await render.render(url, build.current_files())
        if args.check:
            failures += _stale(files)
        else:
            _print(write_schemas(files))
        failures += await _compare(server, fresh, build.SCHEMAS)
        return 1 if failures else 0


async def _contract_is_current(server: str) -> int:
    """1 when the contract migration is not what --contract-migration would write."""
    if build.deployed_history_missing() is not None:
        return 0
    text, _ = await contract.generate(server)
    stale = not contract.PATH.exists() or contract.PATH.read_text() != text
    print(f"{contract.NAME}: {'out of date (run --contract-migration)' if stale else 'current'}")
    return int(stale)


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line)


def _stale(files: dict[str, str]) -> int:
    """Whether the files in the repository are not what would be written now."""
    present = {p.name: p.read_text() for p in build.SCHEMAS.glob("*.sql")}
    if present != files:
        print("supabase/schemas/ is not what scripts/schema-dump writes now: run it")
        return 1
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(prog="scripts/schema-dump", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contract-migration", action="store_true",
                        help=f"rewrite supabase/migrations/{contract.NAME} first")
    parser.add_argument("--check", action="store_true", help="write nothing, only compare")
    return asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(cli())
