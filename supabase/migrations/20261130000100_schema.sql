-- Schema of the scheduled-post publisher: accounts, posts, attempt log, run log.
-- Idempotent: safe to apply twice, on Supabase and on plain Postgres.
--
-- Add-only on the product's own tables. A product that already has created_content (or
-- social_accounts) keeps it as it is: its columns, types, constraints, rows, grants,
-- policies and row level security. Ours are added beside them, each with a default that
-- leaves the product's rows valid (or null); the status check is only on a table we create,
-- so a status of the product's own ('archived') never fails this file nor a later write.
-- Post ids keep the product's type: bigint where we create the table, uuid (or any) where
-- the product did (the domain public.publisher_post_id below).

-- Supabase's roles, created where they don't exist so the same grants work on plain Postgres.
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

-- A product's own column of a type the publisher cannot work with stops here, before any
-- change, with what to do (`publisher doctor` reports the same before migrating):
-- social_accounts.id and created_content.account_id must be uuid (posts name their account
-- by uuid in every function), created_content.status must be text-like (the functions write
-- text: an enum refuses it, even one that has every state).
do $$
declare
  v_type text;
begin
  select format_type(a.atttypid, a.atttypmod) into v_type from pg_attribute a
   where a.attrelid = to_regclass('public.social_accounts') and a.attname = 'id'
     and not a.attisdropped;
  if v_type is not null and v_type <> 'uuid' then
    raise exception using
      message = format('publisher: public.social_accounts.id is %s; the publisher needs uuid '
                       'account ids', v_type),
      hint = 'rename your accounts table (the publisher then creates its own social_accounts '
             'and never reads yours), then migrate again';
  end if;
  select format_type(a.atttypid, a.atttypmod) into v_type from pg_attribute a
   where a.attrelid = to_regclass('public.created_content') and a.attname = 'account_id'
     and not a.attisdropped;
  if v_type is not null and v_type <> 'uuid' then
    raise exception using
      message = format('publisher: public.created_content.account_id is %s; the publisher '
                       'needs a uuid naming a row of social_accounts', v_type),
      hint = 'rename your column (e.g. to product_account_id), then migrate again';
  end if;
  select case when t.typtype = 'd' then format_type(t.typbasetype, null)
              else format_type(a.atttypid, a.atttypmod) end
    into v_type
    from pg_attribute a join pg_type t on t.oid = a.atttypid
   where a.attrelid = to_regclass('public.created_content') and a.attname = 'status'
     and not a.attisdropped;
  if v_type is not null and v_type !~ '^(text|character varying|character)' then
    raise exception using
      message = format('publisher: public.created_content.status is %s; the publisher writes '
                       'its states as text, which a column of this type refuses', v_type),
      hint = 'make it text, which keeps every value and what your app writes: alter table '
             'public.created_content alter column status type text; then migrate again';
  end if;
end
$$;

-- Tables the product had before the publisher's first migration: met here for the first
-- time (without the columns and index this file gives them). Later files, `publisher
-- doctor` and the RLS policies read it: a table listed here keeps the product's grants,
-- policies and RLS as they are, and gets no policy of ours.
create table if not exists public.publisher_adopted_tables (
  table_name text primary key,
  adopted_at timestamptz not null default now()
);
do $$
begin
  if to_regclass('public.created_content') is not null
     and to_regclass('public.created_content_claimable') is null then
    insert into public.publisher_adopted_tables (table_name) values ('created_content')
    on conflict do nothing;
  end if;
  if to_regclass('public.social_accounts') is not null
     and not exists (select 1 from pg_attribute
                      where attrelid = to_regclass('public.social_accounts')
                        and attname = 'refresh_locked_by' and not attisdropped) then
    insert into public.publisher_adopted_tables (table_name) values ('social_accounts')
    on conflict do nothing;
  end if;
end
$$;

create table if not exists public.social_accounts (
  id uuid primary key default gen_random_uuid(),
  user_id uuid,
  platform text not null check (platform <> ''),
  external_id text not null,               -- page id, IG user id, LinkedIn URN, YouTube channel id
  display_name text,
  access_token_encrypted text,             -- publisher.crypto format; the key never reaches the database
  refresh_token_encrypted text,
  token_expires_at timestamptz,
  status text not null default 'active'
    check (status in ('active', 'needs_reauth', 'disconnected')),
  status_reason text,
  paused_until timestamptz,                -- throttled: no claims for this account before then
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (platform, external_id)
);

-- On the product's own accounts table: our columns, added (the checks and not-null
-- rules above are only on a table we create).
alter table public.social_accounts add column if not exists user_id uuid;
alter table public.social_accounts add column if not exists platform text;
alter table public.social_accounts add column if not exists external_id text;
alter table public.social_accounts add column if not exists display_name text;
alter table public.social_accounts add column if not exists access_token_encrypted text;
alter table public.social_accounts add column if not exists refresh_token_encrypted text;
alter table public.social_accounts add column if not exists token_expires_at timestamptz;
alter table public.social_accounts add column if not exists status text not null default 'active';
alter table public.social_accounts add column if not exists status_reason text;
alter table public.social_accounts add column if not exists paused_until timestamptz;
alter table public.social_accounts
  add column if not exists created_at timestamptz not null default now();
alter table public.social_accounts
  add column if not exists updated_at timestamptz not null default now();
-- connect_account upserts on (platform, external_id): a unique index on them, unless the
-- product's table has one already.
do $$
begin
  if not exists (
      select 1 from pg_index i
       where i.indrelid = 'public.social_accounts'::regclass and i.indisunique
         and i.indpred is null
         and string_to_array(i.indkey::text, ' ')::int2[] = array(
               select a.attnum from unnest(array['platform', 'external_id'])
                                      with ordinality as k(name, n)
                 join pg_attribute a on a.attrelid = 'public.social_accounts'::regclass
                                    and a.attname = k.name
                order by k.n)) then
    create unique index social_accounts_platform_external_id_key
      on public.social_accounts (platform, external_id);
  end if;
end
$$;

create table if not exists public.created_content (
  id bigint generated by default as identity primary key,
  user_id uuid,
  account_id uuid references public.social_accounts (id) on delete set null,
  platform text not null,
  post_type text not null default 'text',  -- text, link, photo, photos, video, ...
  content text,                            -- caption / message
  title text,
  link_url text,
  media_urls text[] not null default '{}',
  platform_options jsonb not null default '{}',
  status text not null default 'scheduled'
    check (status in ('draft', 'scheduled', 'publishing', 'retrying', 'published',
                      'failed', 'needs_review', 'expired', 'canceled')),
  -- When: a UTC instant, or a local wall-clock time plus the owner's IANA zone,
  -- which the publisher resolves into scheduled_at (publisher.schedule).
  scheduled_at timestamptz,
  scheduled_local timestamp,
  scheduled_timezone text,
  not_before timestamptz,                  -- retry / deferral: not claimed before then
  due_at timestamptz generated always as (greatest(scheduled_at, not_before)) stored,
  priority smallint not null default 0,    -- higher goes first
  attempts integer not null default 0,     -- publish attempts started (claims that count)
  max_attempts integer not null default 5 check (max_attempts > 0),
  locked_by text,                          -- worker holding the claim
  lease_expires_at timestamptz,
  sending_started_at timestamptz,          -- set just before the irreversible publish call
  platform_post_id text,
  platform_url text,
  published_at timestamptz,
  last_error text,
  god_mode_metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- On the product's own created_content: our columns, added. Defaults leave the product's
-- rows valid; status is added (where the product has none) without a default, so no row
-- of the product's becomes 'scheduled' by itself. due_at is computed, so adding it
-- rewrites the table once (under an exclusive lock: on a large table, at a quiet time).
alter table public.created_content add column if not exists user_id uuid;
alter table public.created_content
  add column if not exists account_id uuid
    references public.social_accounts (id) on delete set null;
alter table public.created_content add column if not exists platform text;
alter table public.created_content add column if not exists post_type text not null default 'text';
alter table public.created_content add column if not exists content text;
alter table public.created_content add column if not exists title text;
alter table public.created_content add column if not exists link_url text;
alter table public.created_content add column if not exists media_urls text[] not null default '{}';
alter table public.created_content
  add column if not exists platform_options jsonb not null default '{}';
alter table public.created_content add column if not exists status text;
alter table public.created_content add column if not exists scheduled_at timestamptz;
alter table public.created_content add column if not exists scheduled_local timestamp;
alter table public.created_content add column if not exists scheduled_timezone text;
alter table public.created_content add column if not exists not_before timestamptz;
alter table public.created_content
  add column if not exists due_at timestamptz
    generated always as (greatest(scheduled_at, not_before)) stored;
alter table public.created_content add column if not exists priority smallint not null default 0;
alter table public.created_content add column if not exists attempts integer not null default 0;
alter table public.created_content add column if not exists max_attempts integer not null default 5;
alter table public.created_content add column if not exists locked_by text;
alter table public.created_content add column if not exists lease_expires_at timestamptz;
alter table public.created_content add column if not exists sending_started_at timestamptz;
alter table public.created_content add column if not exists platform_post_id text;
alter table public.created_content add column if not exists platform_url text;
alter table public.created_content add column if not exists published_at timestamptz;
alter table public.created_content add column if not exists last_error text;
alter table public.created_content
  add column if not exists god_mode_metadata jsonb not null default '{}';
alter table public.created_content
  add column if not exists created_at timestamptz not null default now();
alter table public.created_content
  add column if not exists updated_at timestamptz not null default now();
-- max_attempts is ours (added above with its default), so its check holds for every row;
-- NOT VALID all the same: adding it reads no row of the product's table.
do $$
begin
  if not exists (select 1 from pg_constraint
                  where conrelid = 'public.created_content'::regclass
                    and conname = 'created_content_max_attempts_check') then
    alter table public.created_content
      add constraint created_content_max_attempts_check check (max_attempts > 0) not valid;
  end if;
end
$$;

-- Post ids: the type of created_content.id, bigint on a table we create, the product's own
-- (often uuid) on its table. Every function that takes or returns post ids, and the
-- post_id columns of our tables, use this domain, so the same static SQL serves either
-- type and compares ids in their own type (the primary key index is used as it is).
do $$
begin
  if to_regtype('public.publisher_post_id') is null then
    execute format('create domain public.publisher_post_id as %s',
                   (select format_type(a.atttypid, a.atttypmod) from pg_attribute a
                     where a.attrelid = 'public.created_content'::regclass
                       and a.attname = 'id'));
  end if;
end
$$;

-- Added after the first version; "add column if not exists" upgrades existing databases.
-- publish_state: what a multi-step publish has done so far (an Instagram container id, a
-- YouTube upload session), so the next attempt resumes or reconciles instead of starting over.
alter table public.created_content
  add column if not exists publish_state jsonb not null default '{}';
-- Token refresh: one worker at a time per account.
-- Reconciliation of posts whose outcome is unknown: how often and when we last asked.
alter table public.created_content
  add column if not exists review_checks integer not null default 0;
alter table public.created_content add column if not exists review_checked_at timestamptz;
alter table public.social_accounts add column if not exists refresh_locked_by text;
alter table public.social_accounts add column if not exists refresh_locked_until timestamptz;

-- The claim's index: due work per platform, highest priority first, then oldest due.
create index if not exists created_content_claimable
  on public.created_content (platform, priority desc, due_at, id)
  where status in ('scheduled', 'retrying');
create index if not exists created_content_leased
  on public.created_content (lease_expires_at) where status = 'publishing';
create index if not exists created_content_unresolved
  on public.created_content (id)
  where status = 'scheduled' and scheduled_at is null;

create table if not exists public.publish_attempts (
  id bigint generated by default as identity primary key,
  post_id public.publisher_post_id not null,
  worker_id text not null,
  attempt integer not null,
  outcome text not null,                   -- published, retry, defer, reauth, failed, unknown, ...
  status text not null,                    -- the post's status this attempt led to
  applied boolean not null,                -- false: the claim was lost, the write was fenced out
  error text,
  platform_post_id text,
  detail jsonb,
  recorded_at timestamptz not null default now()
);
create index if not exists publish_attempts_post on public.publish_attempts (post_id);

create table if not exists public.publisher_runs (
  id bigint generated by default as identity primary key,
  worker_id text not null,
  started_at timestamptz not null,
  finished_at timestamptz not null default now(),
  summary jsonb not null
);

-- Rolling publishing quotas, N posts per window, per account or per platform (app).
-- Defaults from the platforms' documented caps; operators change the rows to fit their app.
create table if not exists public.publish_quotas (
  platform text not null,
  scope text not null check (scope in ('account', 'platform')),
  post_types text[],                       -- null: every post type counts
  max_posts integer not null check (max_posts >= 0),
  window_seconds integer not null check (window_seconds between 1 and 7 * 86400),
  note text,
  primary key (platform, scope)
);
insert into public.publish_quotas (platform, scope, post_types, max_posts, window_seconds, note)
values
  ('instagram', 'account', null, 100, 86400, 'API-published posts per account per rolling 24 h'),
  ('facebook', 'account', '{reel}', 30, 86400, 'Reels per Page per rolling 24 h'),
  ('youtube', 'platform', null, 100, 86400, 'videos.insert calls per project per day')
on conflict (platform, scope) do nothing;

-- One row per claimed post counted against a quota; kept while the post went out (or may
-- have), dropped when the attempt published nothing.
create table if not exists public.quota_reservations (
  post_id public.publisher_post_id not null,
  attempt integer not null,
  platform text not null,
  scope text not null,
  account_id uuid,
  post_type text not null,
  reserved_at timestamptz not null default now(),
  primary key (post_id, attempt, scope)
);
create index if not exists quota_reservations_window
  on public.quota_reservations (platform, scope, account_id, reserved_at);

-- Wakes long-running workers (publisher worker, LISTEN publisher_due) when posts are added
-- or rescheduled, so they need not poll often. One notification per statement, not per row.
create or replace function public.notify_publisher_due() returns trigger
language plpgsql as $$
begin
  perform pg_notify('publisher_due', '');
  return null;
end
$$;
drop trigger if exists created_content_notify_due on public.created_content;
create trigger created_content_notify_due
  after insert or update of status, scheduled_at, scheduled_local on public.created_content
  for each statement execute function public.notify_publisher_due();
revoke all on function public.notify_publisher_due() from public;

-- A platform paused as a whole (its app budget is spent: Meta app throttles, the YouTube
-- project quota); claims skip its posts until then.
create table if not exists public.platform_pauses (
  platform text primary key,
  paused_until timestamptz not null,
  reason text
);

-- End users (anon, authenticated) reach none of this; the publisher uses service_role.
alter table public.publish_attempts enable row level security;
alter table public.publisher_runs enable row level security;
alter table public.publish_quotas enable row level security;
alter table public.quota_reservations enable row level security;
alter table public.platform_pauses enable row level security;
alter table public.publisher_adopted_tables enable row level security;

revoke all on public.publish_attempts, public.publisher_runs, public.publish_quotas,
  public.quota_reservations, public.platform_pauses, public.publisher_adopted_tables
  from public, anon, authenticated;
grant all on public.social_accounts, public.created_content, public.publish_attempts,
  public.publisher_runs, public.publish_quotas, public.quota_reservations,
  public.platform_pauses, public.publisher_adopted_tables to service_role;
grant usage, select on all sequences in schema public to service_role;

-- created_content and social_accounts: the same where we created them. The product's own
-- keep their row level security, grants and policies: its users still see their posts.
do $$
declare t text;
begin
  foreach t in array array['social_accounts', 'created_content'] loop
    if not exists (select 1 from public.publisher_adopted_tables where table_name = t) then
      execute format('alter table public.%I enable row level security', t);
      execute format('revoke all on public.%I from public, anon, authenticated', t);
    end if;
  end loop;
end
$$;
