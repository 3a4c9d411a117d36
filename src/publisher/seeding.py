"""Seeds demo and benchmark data: accounts with encrypted tokens and due posts.

Not part of a production run: the product writes posts itself. Rows go in with a few large
statements (unnest of arrays), so 100,000 posts take seconds, not minutes.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from publisher.crypto import TokenCipher
from publisher.models import INSTAGRAM_LOGINS

# (post_type, content needs, media count) per platform, cycled through for a realistic mix.
POST_MIX: dict[str, tuple[str, ...]] = {
    "facebook": ("text", "link", "photo", "text", "photos", "video"),
    "instagram": ("image", "reel", "carousel", "image"),
    "linkedin": ("text", "link", "image", "images"),
    "youtube": ("video",),
}
MEDIA_COUNT = {"photo": 1, "photos": 3, "image": 1, "images": 3, "reel": 1, "carousel": 3,
               "video": 1}
IMAGE_BYTES = 200_000
VIDEO_BYTES = 2_000_000
EXTERNAL_ID = {"facebook": "page-{n}", "instagram": "1784{n:011d}",
               "linkedin": "urn:li:organization:{n}", "youtube": "UC{n:022d}"}


@dataclass(frozen=True, kw_only=True)
class SeedPlan:
    posts: int
    accounts: int
    platforms: Sequence[str]
    expired: int = 0          # extra posts already more than 24 h late
    local_time: int = 0       # extra posts given as local time + zone, due now
    media_base: str = "https://media.example.com"


def media_url(base: str, name: str, *, video: bool) -> str:
    """A media URL; size and type in the query are what the simulator's media host serves."""
    if video:
        return f"{base}/{name}.mp4?size={VIDEO_BYTES}&type=video/mp4"
    return f"{base}/{name}.jpg?size={IMAGE_BYTES}&type=image/jpeg"


async def seed(conn: asyncpg.Connection, plan: SeedPlan, cipher: TokenCipher,
               *, rng: random.Random | None = None) -> dict[str, int]:
    """Inserts accounts (spread over the platforms) and posts; returns counts."""
    rng = rng or random.Random(7)
    account_ids = await _seed_accounts(conn, plan, cipher)
    accounts = list(account_ids.items())   # [(account id, platform)]
    ids, platforms, types, contents, links, media, ages = [], [], [], [], [], [], []
    mix = {p: itertools.cycle(POST_MIX[p]) for p in plan.platforms}
    for n in range(plan.posts + plan.expired):
        account_id, platform = accounts[n % len(accounts)]
        post_type = next(mix[platform])
        ids.append(account_id)
        platforms.append(platform)
        types.append(post_type)
        contents.append(f"Post {n} for {platform}: hello from the demo #{rng.randrange(10**9)}")
        links.append("https://example.com/article" if post_type == "link" else None)
        video = post_type in ("reel", "video")
        media.append([media_url(plan.media_base, f"{n}-{i}", video=video)
                      for i in range(MEDIA_COUNT.get(post_type, 0))])
        late = 25 * 3600 + rng.randrange(3600) if n >= plan.posts else rng.randrange(600)
        ages.append(float(late))
    await conn.execute(
        """
        insert into public.created_content
          (account_id, platform, post_type, content, title, link_url, media_urls, scheduled_at)
        select a, p, t, c, case when p = 'youtube' or t = 'link' then left(c, 90) end, l,
               coalesce((select array_agg(x) from jsonb_array_elements_text(m) x), '{}'),
               now() - make_interval(secs => age)
          from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[],
                      $7::float8[]) as s(a, p, t, c, l, m, age)
        """,
        ids, platforms, types, contents, links, [json.dumps(m) for m in media], ages)
    if plan.local_time:
        await _seed_local_time(conn, plan, accounts)
    return {"accounts": len(accounts), "posts": plan.posts, "expired": plan.expired,
            "local_time": plan.local_time}


def instagram_logins(platforms: Sequence[str]) -> list[str | None]:
    """Each account's login type: Instagram accounts alternate between Facebook Login and
    Instagram Login (so both hosts are exercised), None for the other platforms."""
    seen = itertools.count()
    return [INSTAGRAM_LOGINS[next(seen) % 2] if p == "instagram" else None for p in platforms]


async def _seed_accounts(conn: asyncpg.Connection, plan: SeedPlan,
                         cipher: TokenCipher) -> dict[str, str]:
    platforms = [plan.platforms[n % len(plan.platforms)] for n in range(plan.accounts)]
    external = [EXTERNAL_ID[p].format(n=n) for n, p in enumerate(platforms)]
    logins = instagram_logins(platforms)
    # Sealed tokens shared by many accounts: demo only. Instagram Login tokens start with
    # IG, as real ones do; the simulator's graph.instagram.com takes no other kind.
    token = cipher.encrypt("demo-access-token")
    ig_token = cipher.encrypt("IGAAdemo-access-token")
    tokens = [ig_token if login == "instagram" else token for login in logins]
    rows = await conn.fetch(
        """
        insert into public.social_accounts (platform, external_id, display_name,
                                            access_token_encrypted, login_type)
        select p, e, 'Demo ' || e, t, l
          from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as s(p, e, t, l)
        on conflict (platform, external_id) do update set status = 'active'
        returning id, platform
        """, platforms, external, tokens, logins)
    return {str(r["id"]): r["platform"] for r in rows}


async def _seed_local_time(conn: asyncpg.Connection, plan: SeedPlan,
                           accounts: list[tuple[str, str]]) -> None:
    zones = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham"]
    for n in range(plan.local_time):
        account_id, platform = accounts[n % len(accounts)]
        zone = zones[n % len(zones)]
        await conn.execute(
            """
            insert into public.created_content (account_id, platform, post_type, content,
                                                title, media_urls, scheduled_local,
                                                scheduled_timezone)
            values ($1, $2, $3, $4, $5, $6,
                    (now() at time zone $7) - interval '1 minute', $7)
            """,
            account_id, platform, POST_MIX[platform][0],
            f"Local-time post {n} in {zone}", f"Local {n}" if platform == "youtube" else None,
            [media_url(plan.media_base, f"local-{n}", video=platform == "youtube")]
            if MEDIA_COUNT.get(POST_MIX[platform][0]) else [], zone)

