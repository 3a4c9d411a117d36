-- Installing into the product's own Supabase database, and what Supabase's database
-- advisors ask for. Idempotent (if not exists, checks in the catalog), add-only.
--
-- The earlier files were changed in place so that they run on a database whose
-- created_content (or social_accounts) the product made (see 20261130000100_schema.sql);
-- a database that applied them before gets what it lacks from this file, which is all
-- `supabase db push` runs there:
--  * the post id domain (public.publisher_post_id, the type of created_content.id) and our
--    post_id columns in it;
--  * publisher_adopted_tables (empty there: every table of ours was created by us);
--  * an index for the foreign key created_content.account_id (advisor: unindexed foreign
--    keys; deleting an account had to read every post);
--  * our sequences and the trigger function out of reach of anon and authenticated
--    (Supabase's default privileges grant both to them);
--  * a fixed search_path on every function of ours (advisor: function_search_path_mutable):
--    search_path = '', every name in the bodies is schema-qualified (pg_catalog is always
--    searched first). A function (re)defined after this file must say so itself:
--    `set search_path = ''` (tests/store/test_supabase_fit.py checks every one).

-- The domain, where 0100 ran before it made it (always bigint there: our own table).
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

-- Our post_id columns in the domain: same base type, so no table is rewritten and the
-- indexes are kept.
do $$
declare t text;
begin
  foreach t in array array['publish_attempts', 'quota_reservations'] loop
    if (select a.atttypid from pg_attribute a
         where a.attrelid = format('public.%I', t)::regclass and a.attname = 'post_id')
       <> 'public.publisher_post_id'::regtype then
      execute format('alter table public.%I alter column post_id type public.publisher_post_id',
                     t);
    end if;
  end loop;
end
$$;

create table if not exists public.publisher_adopted_tables (
  table_name text primary key,
  adopted_at timestamptz not null default now()
);
alter table public.publisher_adopted_tables enable row level security;
revoke all on public.publisher_adopted_tables from public, anon, authenticated;
grant all on public.publisher_adopted_tables to service_role;

-- The foreign key's index, unless an index on exactly that column exists (the product's).
do $$
begin
  if not exists (
      select 1 from pg_index i
       where i.indrelid = 'public.created_content'::regclass
         and string_to_array(i.indkey::text, ' ')::int2[] = array(
               select a.attnum from pg_attribute a
                where a.attrelid = 'public.created_content'::regclass
                  and a.attname = 'account_id')) then
    create index created_content_account on public.created_content (account_id);
  end if;
end
$$;

-- Sequences of the tables we created: only service_role uses them (the product's own
-- sequences, on its tables, keep their grants).
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

revoke all on function public.notify_publisher_due() from public, anon, authenticated;

-- A fixed search_path on every function of ours.
do $$
declare f regprocedure;
begin
  for f in
    select p.oid::regprocedure
      from pg_proc p
     where p.pronamespace = 'public'::regnamespace
       and p.proname in ('prepare_due_posts', 'list_unresolved_schedules',
                         'apply_resolved_schedules', 'claim_due_posts', 'mark_sending',
                         'record_outcomes', 'sync_posts', 'pause_account', 'pause_platform',
                         'record_run', 'publisher_status', 'connect_account',
                         'list_due_posts', 'lock_account_refresh', 'save_refreshed_tokens',
                         'claim_for_review', 'sample_sealed_tokens', 'notify_publisher_due')
  loop
    execute format('alter function %s set search_path = %L', f, '');
  end loop;
end
$$;

notify pgrst, 'reload schema';
