-- Owners see their own posts, and nothing else (issue 12). Idempotent: every policy is
-- dropped if it exists and created again, every grant reset to exactly what is below.
--
-- On the tables we create (not listed in publisher_adopted_tables), for the product's end
-- users (`authenticated`; the owner is Supabase's auth.uid(), or where there is no auth
-- schema the `sub` claim PostgREST puts in request.jwt.claims):
--   created_content   read their own posts; insert, edit and delete their own posts in the
--                     states the product owns (draft, scheduled, canceled), only into those
--                     states (a user can never make a post 'publishing' or 'published'),
--                     only on their own accounts, and only the product's columns (below);
--   publish_attempts  read the attempts of their own posts;
--   social_accounts   read their own accounts (id, user_id, platform, external_id,
--                     display_name, token_expires_at, status, status_reason, paused_until,
--                     created_at, updated_at), never a token or the refresh lock; accounts
--                     are connected and changed through service_role only.
-- `anon` reaches nothing of ours: no table, sequence or function. Our internal tables are
-- for service_role only, row level security on.
--
-- On the product's own created_content / social_accounts (adopted) we add no policy and
-- change no grant: its own policies keep deciding what its users see (`publisher doctor`
-- says so: "we add no RLS policy to your created_content").
--
-- created_content columns an end user may write (insert and update):
--   user_id (held to the owner by the policies), account_id (an account of their own),
--   platform, post_type, content, title, link_url, media_urls, platform_options, status,
--   scheduled_at, scheduled_local, scheduled_timezone.
-- Everything else is written by the publisher or the product's backend (service_role), never
-- by an end user: id (identity), due_at (generated), priority and max_attempts (the product
-- decides them, a user could jump the queue), attempts, not_before, locked_by,
-- lease_expires_at, sending_started_at, platform_post_id, platform_url, published_at,
-- last_error, publish_state, review_checks, review_checked_at, god_mode_metadata (carries
-- publish_error), created_at, updated_at.
--
-- The owner expression is fixed when this file runs: auth.uid() where it exists, the
-- fallback otherwise; it is written into the policies (wrapped in a select, so it is
-- evaluated once per statement, as Supabase's advisor asks: auth_rls_initplan), not a
-- function of ours, so the SQL contract stays the rpc functions.
--
-- An earlier file applied again (its text changed) revokes what it revoked before; apply
-- this one again after it (`publisher migrate` re-applies a changed file only).

-- Our internal tables: service_role only. publisher_schema_migrations is the old ledger of
-- databases migrated before the shared one (publisher.store.migrations).
do $$
declare t text;
begin
  foreach t in array array['publisher_runs', 'publish_quotas', 'quota_reservations',
                           'platform_pauses', 'publisher_adopted_tables',
                           'publisher_schema_migrations'] loop
    if to_regclass(format('public.%I', t)) is not null then
      execute format('alter table public.%I enable row level security', t);
      execute format('revoke all on public.%I from public, anon, authenticated', t);
      execute format('grant all on public.%I to service_role', t);
    end if;
  end loop;
end
$$;

-- Sequences of the tables we created: nobody but service_role takes ids from them (identity
-- columns need no sequence privilege to insert, so end users' inserts still get their id).
do $$
declare s regclass;
begin
  for s in
    select d.objid::regclass
      from pg_depend d
      join pg_class seq on seq.oid = d.objid and seq.relkind = 'S'
     where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
       and d.deptype in ('a', 'i')
       and d.refobjid in (select format('public.%I', t)::regclass
                            from unnest(array['publish_attempts', 'publisher_runs',
                                              'created_content', 'social_accounts']) t
                           where not exists (select 1 from public.publisher_adopted_tables p
                                              where p.table_name = t))
  loop
    execute format('revoke all on sequence %s from public, anon, authenticated', s);
    execute format('grant usage, select on sequence %s to service_role', s);
  end loop;
end
$$;

do $$
declare
  -- The owner of the request, as the policies compare it.
  v_owner constant text := case
    when to_regprocedure('auth.uid()') is not null then '(select auth.uid())'
    else '(select (nullif(coalesce(nullif(pg_catalog.current_setting(''request.jwt.claim.sub'', '
         'true), ''''), nullif(pg_catalog.current_setting(''request.jwt.claims'', true), '''')'
         '::jsonb ->> ''sub''), ''''))::uuid)'
  end;
  v_states constant text := $s$array['draft', 'scheduled', 'canceled']$s$;
  v_columns constant text := 'user_id, account_id, platform, post_type, content, title, '
    'link_url, media_urls, platform_options, status, scheduled_at, scheduled_local, '
    'scheduled_timezone';
  v_own_post text;
  v_own_account text;
  v_user_id_type regtype;
begin
  v_own_post := format('user_id = %s', v_owner);
  -- A post may name only an account of its owner's (else a user could publish on another
  -- user's page by its id).
  v_own_account := format(
    '(created_content.account_id is null or exists (select 1 from public.social_accounts a '
    'where a.id = created_content.account_id and a.user_id = %s))', v_owner);

  -- created_content, where we created it.
  if not exists (select 1 from public.publisher_adopted_tables
                  where table_name = 'created_content') then
    alter table public.created_content enable row level security;
    -- Reset, so that a second run ends with exactly these grants (a table-level revoke
    -- also takes back the column grants).
    revoke all on public.created_content from public, anon, authenticated;
    grant select, delete on public.created_content to authenticated;
    execute format('grant insert (%1$s), update (%1$s) on public.created_content '
                   'to authenticated', v_columns);
    create index if not exists created_content_owner on public.created_content (user_id);

    drop policy if exists publisher_owner_select on public.created_content;
    execute format('create policy publisher_owner_select on public.created_content '
                   'for select to authenticated using (%s)', v_own_post);
    drop policy if exists publisher_owner_insert on public.created_content;
    execute format('create policy publisher_owner_insert on public.created_content '
                   'for insert to authenticated with check (%s and status = any (%s) and %s)',
                   v_own_post, v_states, v_own_account);
    -- USING: which rows may change (own, in the product's states: never one the publisher
    -- holds or has finished); WITH CHECK: what they may become.
    drop policy if exists publisher_owner_update on public.created_content;
    execute format('create policy publisher_owner_update on public.created_content '
                   'for update to authenticated using (%1$s and status = any (%2$s)) '
                   'with check (%1$s and status = any (%2$s) and %3$s)',
                   v_own_post, v_states, v_own_account);
    drop policy if exists publisher_owner_delete on public.created_content;
    execute format('create policy publisher_owner_delete on public.created_content '
                   'for delete to authenticated using (%s and status = any (%s))',
                   v_own_post, v_states);

    -- Realtime: the product's UI hears its users' status changes (Realtime applies these
    -- policies to every change it sends). Only where Supabase's publication exists and
    -- does not already publish every table.
    if exists (select 1 from pg_publication
                where pubname = 'supabase_realtime' and not puballtables)
       and not exists (select 1 from pg_publication_tables
                        where pubname = 'supabase_realtime' and schemaname = 'public'
                          and tablename = 'created_content') then
      alter publication supabase_realtime add table public.created_content;
    end if;
  end if;

  -- publish_attempts (always ours): the attempts of one's own posts. The post is looked up
  -- through created_content as the user sees it (its select privilege and policies, ours or
  -- the product's), and must be the user's own. Skipped where the product's user_id is not
  -- a uuid: then no end user reads an attempt.
  alter table public.publish_attempts enable row level security;
  revoke all on public.publish_attempts from public, anon, authenticated;
  drop policy if exists publisher_owner_select on public.publish_attempts;
  select a.atttypid::regtype into v_user_id_type
    from pg_attribute a
   where a.attrelid = 'public.created_content'::regclass and a.attname = 'user_id'
     and not a.attisdropped;
  if v_user_id_type = 'uuid'::regtype then
    grant select on public.publish_attempts to authenticated;
    execute format('create policy publisher_owner_select on public.publish_attempts '
                   'for select to authenticated using (exists (select 1 from '
                   'public.created_content c where c.id = publish_attempts.post_id '
                   'and c.user_id = %s))', v_owner);
  else
    raise notice 'created_content.user_id is %, not uuid: end users read no publish_attempts',
      v_user_id_type;
  end if;

  -- social_accounts, where we created it: own accounts, no token column.
  if not exists (select 1 from public.publisher_adopted_tables
                  where table_name = 'social_accounts') then
    alter table public.social_accounts enable row level security;
    revoke all on public.social_accounts from public, anon, authenticated;
    -- Named one by one (not "all but the tokens"): a column added later (login_type, by
    -- 20261207000800) stays unreadable until a migration grants it.
    grant select (id, user_id, platform, external_id, display_name, token_expires_at,
                  status, status_reason, paused_until, created_at, updated_at)
      on public.social_accounts to authenticated;
    create index if not exists social_accounts_owner on public.social_accounts (user_id);
    drop policy if exists publisher_owner_select on public.social_accounts;
    execute format('create policy publisher_owner_select on public.social_accounts '
                   'for select to authenticated using (%s)', v_own_post);
  end if;
end
$$;

notify pgrst, 'reload schema';
