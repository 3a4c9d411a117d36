"""The default quota rows (migration 20261207000700): each carries its arithmetic and its
reference, and an operator's edit is never overwritten."""

from __future__ import annotations

import asyncpg
import pytest

from publisher.store.migrations import migrations_dir

MIGRATION = "20261207000700_quota_defaults.sql"
# What 20261130000100_schema.sql seeded: (platform, scope, post_types, max_posts, window, note)
SEEDED = {
    "youtube": ("platform", None, 100, 86400, "videos.insert calls per project per day"),
    "instagram": ("account", None, 100, 86400,
                  "API-published posts per account per rolling 24 h"),
    "facebook": ("account", ["reel"], 30, 86400, "Reels per Page per rolling 24 h"),
}
# What each note must name: the figure's source and its arithmetic.
CITED = {
    "youtube": ("developers.google.com/youtube/v3/determine_quota_cost", "1,600",
                "10,000", "= 6"),
    "instagram": ("developers.facebook.com/docs/instagram-platform/content-publishing",
                  "100 API-published posts", "24-hour moving period"),
    "facebook": ("developers.facebook.com/docs/video-api/guides/reels-publishing",
                 "30 API-published reels", "video_reels"),
}


async def reseed(db: asyncpg.Connection, platform: str, **changed: object) -> None:
    """The platform's row back to its seeded values, with `changed` columns edited."""
    scope, types, max_posts, window, note = SEEDED[platform]
    row = {"max_posts": max_posts, "window_seconds": window, "note": note, **changed}
    await db.execute("delete from publish_quotas where platform = $1", platform)
    await db.execute("insert into publish_quotas (platform, scope, post_types, max_posts, "
                     "window_seconds, note) values ($1, $2, $3, $4, $5, $6)", platform, scope,
                     types, row["max_posts"], row["window_seconds"], row["note"])


async def apply_again(db: asyncpg.Connection) -> None:
    await db.execute((migrations_dir() / MIGRATION).read_text())


async def rows(db: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    return {r["platform"]: r for r in await db.fetch("select * from publish_quotas")}


async def test_migrated_rows_carry_their_arithmetic_and_reference(
        db: asyncpg.Connection) -> None:
    """After the migrations, each default row's note names its source and arithmetic; the
    limits are the platforms' published figures."""
    found = await rows(db)

    assert {p: found[p]["max_posts"] for p in SEEDED} == {
        "youtube": 100, "instagram": 100, "facebook": 30}
    for platform, words in CITED.items():
        for word in words:
            assert word in found[platform]["note"], (platform, word)


@pytest.mark.parametrize("platform", sorted(SEEDED))
async def test_a_row_still_as_seeded_is_updated(db: asyncpg.Connection, platform: str) -> None:
    """A row with exactly the seeded values gets the new note; its limit is unchanged."""
    await reseed(db, platform)

    await apply_again(db)

    row = (await rows(db))[platform]
    assert CITED[platform][0] in row["note"]
    assert row["max_posts"] == SEEDED[platform][2]


@pytest.mark.parametrize("edit", [{"max_posts": 6}, {"window_seconds": 3600},
                                  {"note": "our own words"}])
@pytest.mark.parametrize("platform", sorted(SEEDED))
async def test_an_operators_edit_is_kept(db: asyncpg.Connection, platform: str,
                                         edit: dict[str, object]) -> None:
    """A row an operator changed (any column) is left exactly as it is."""
    await reseed(db, platform, **edit)
    before = dict((await rows(db))[platform])

    await apply_again(db)

    assert dict((await rows(db))[platform]) == before


async def test_the_migration_runs_twice(db: asyncpg.Connection) -> None:
    """Idempotent: a second run changes nothing."""
    before = {p: dict(r) for p, r in (await rows(db)).items()}

    await apply_again(db)

    assert {p: dict(r) for p, r in (await rows(db)).items()} == before
