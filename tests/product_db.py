"""The product's own Supabase database, as it stands before the publisher is installed.

The publisher is added to a product that is already running (issue 12). Its Supabase
project already has what is built here, in an otherwise EMPTY database:

    roles       anon, authenticated, service_role (Supabase's API roles; created if missing)
    auth        auth.users and auth.uid(), which reads the `sub` claim of the JWT from the
                `request.jwt.claims` setting exactly as Supabase defines it
    posts       public.created_content: uuid ids, the product's own status values (one of
                them, 'archived', unknown to the publisher), and the product's OWN names for
                what the publisher calls scheduled_at / scheduled_timezone / media_urls:
                scheduled_time, timezone, media_url
    accounts    public.connected_accounts: the product's accounts table (plain tokens), not
                the publisher's social_accounts
    access      RLS on both tables with an `own_posts` / `own_accounts` policy for
                `authenticated` (user_id = auth.uid()), and grants to authenticated and
                service_role, as a Supabase app sets them up

and a handful of rows whose counts are below (PRODUCT_ROWS), so a test can say exactly how
many posts a first run would publish or expire.

    create_product_database(conn)   builds it over an open connection to an empty database
    product_database_url            pytest fixture: URL of a new database holding it

Use it in a test module with `from product_db import product_database_url` (the fixture is
then found by name).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest

# The product's two users (auth.users ids).
USER_A = "6f1c2d4e-0000-4000-8000-00000000000a"
USER_B = "6f1c2d4e-0000-4000-8000-00000000000b"

# How many created_content rows of each kind create_product_database inserts.
PRODUCT_ROWS = {
    "due_now": 2,        # status 'scheduled', scheduled_time 1-2 hours ago: a run publishes
    "future": 1,         # status 'scheduled', in two days: not yet
    "far_past": 1,       # status 'scheduled', ten days ago: a run expires it (> 24 h late)
    "draft": 1,          # no schedule
    "published": 1,      # the product's own history
    "archived": 2,       # a status the publisher does not know: left alone
}
PRODUCT_POSTS = sum(PRODUCT_ROWS.values())

_ROLES = """
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;
grant usage on schema public to anon, authenticated, service_role;
"""

# Supabase's auth schema, reduced to what a product's tables and policies use.
_AUTH = """
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;
create table if not exists auth.users (
  id uuid primary key,
  email text
);
-- As Supabase defines it: the `sub` claim of the request's JWT, which PostgREST puts in
-- the transaction-local setting request.jwt.claims (the older single-claim setting first).
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
grant execute on function auth.uid() to anon, authenticated, service_role;
"""

_ACCOUNTS = """
create table public.connected_accounts (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  platform text not null,
  platform_account_id text not null,
  account_name text,
  access_token text,             -- stored in plain text by the product's OAuth callback
  refresh_token text,
  expires_at timestamptz,
  created_at timestamptz not null default now()
);
alter table public.connected_accounts enable row level security;
create policy own_accounts on public.connected_accounts
  for all to authenticated
  using (user_id = auth.uid()) with check (user_id = auth.uid());
grant select, insert, update, delete on public.connected_accounts to authenticated;
grant all on public.connected_accounts to service_role;
"""

# The product's posts: the seed's columns (status, platform, content, god_mode_metadata,
# created_at, updated_at) with uuid ids, and its own names for the schedule and the media.
_POSTS = """
create table public.created_content (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  status text not null default 'draft',  -- draft, scheduled, published, failed, archived
  platform text not null,
  content text,
  scheduled_time timestamptz,            -- the publisher's scheduled_at
  timezone text,                         -- the publisher's scheduled_timezone
  media_url text,                        -- one URL; the publisher's media_urls is an array
  god_mode_metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index created_content_user on public.created_content (user_id, created_at desc);
alter table public.created_content enable row level security;
create policy own_posts on public.created_content
  for all to authenticated
  using (user_id = auth.uid()) with check (user_id = auth.uid());
grant select, insert, update, delete on public.created_content to authenticated;
grant all on public.created_content to service_role;
"""

# Rows: the counts match PRODUCT_ROWS. Times are relative to the database's clock.
# :user_a and :user_b stand for USER_A and USER_B (filled in below, fixed constants).
_ROWS = """
insert into auth.users (id, email) values
  (':user_a', 'ana@example.com'), (':user_b', 'ben@example.com');
insert into public.connected_accounts (user_id, platform, platform_account_id, account_name,
                                       access_token)
values (':user_a', 'facebook', '1234567890', 'Ana''s Page', 'EAAB-plain-token-a'),
       (':user_b', 'linkedin', 'urn:li:person:ben', 'Ben', 'AQV-plain-token-b');
insert into public.created_content (user_id, status, platform, content, scheduled_time,
                                    timezone, media_url)
values
  -- due now
  (':user_a', 'scheduled', 'facebook', 'Opening hours this week', now() - interval '1 hour',
   'Europe/Berlin', 'https://cdn.example.com/a/hours.jpg'),
  (':user_b', 'scheduled', 'linkedin', 'We are hiring', now() - interval '2 hours',
   'America/New_York', null),
  -- future
  (':user_a', 'scheduled', 'instagram', 'Sneak peek', now() + interval '2 days',
   'Europe/Berlin', 'https://cdn.example.com/a/peek.jpg'),
  -- far past: more than 24 hours late
  (':user_b', 'scheduled', 'linkedin', 'Last month''s webinar', now() - interval '10 days',
   'America/New_York', null),
  -- not scheduled, or not the publisher's business
  (':user_a', 'draft', 'facebook', 'Idea for later', null, null, null),
  (':user_a', 'published', 'facebook', 'Hello world', now() - interval '30 days',
   'Europe/Berlin', null),
  (':user_b', 'archived', 'linkedin', 'Old news', now() - interval '60 days', null, null),
  (':user_b', 'archived', 'linkedin', 'Older news', now() - interval '90 days', null, null);
""".replace(":user_a", USER_A).replace(":user_b", USER_B)


async def create_product_database(conn: asyncpg.Connection) -> None:
    """Builds the product's database (roles, auth, tables, policies, grants, rows) over
    `conn`, a superuser connection to an empty database, in one transaction."""
    async with conn.transaction():
        for statement in (_ROLES, _AUTH, _ACCOUNTS, _POSTS, _ROWS):
            await conn.execute(statement)


@pytest.fixture
async def product_database_url(
        make_database: Callable[..., Awaitable[str]]) -> str:
    """URL of a new database holding the product's own schema and rows, no migration
    applied (dropped at the end of the session with the others make_database made)."""
    url = await make_database(empty=True)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        await create_product_database(conn)
    finally:
        await conn.close()
    return url
