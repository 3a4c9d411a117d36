-- Problems found before they are due (publisher.preflight). After its publishing work, each
-- run looks ahead at the posts due within PREFLIGHT_HOURS: those that changed since they were
-- last checked get the publish-time validation, and their accounts' tokens one cheap call per
-- account per hour. A problem is written onto the post, god_mode_metadata.preflight:
--   {"reason":     what the user must fix (both parts below, joined by "; "),
--    "checked_at": when the check found this reason (kept while the reason stays the same),
--    "post":       the post's own problem (validation), if any,
--    "account":    its account's problem (token refused, account not active), if any}
-- and, in the same statement, an event post.preflight_problem in public.publisher_events
-- (20261207001100_outbox.sql) for each new problem: never again for the same one. A fixed
-- problem is removed (the key goes when nothing is left). No status changes: the post stays
-- scheduled and the user fixes it; nor does updated_at, which is how a change is seen.
-- Idempotent, add-only; one signature per function; each returns one json value;
-- service_role only; search_path '' and every name schema-qualified.
--
-- "Changed since checked": created_content.preflight_checked_at, stamped with now() by each
-- check. A post is due a check when updated_at > preflight_checked_at (or it was never
-- checked). A product trigger that stamps updated_at with now() (moddatetime) on our write
-- stamps the same transaction time, so our own write never makes a post look changed. A
-- check's write is fenced by the updated_at it read: a post edited meanwhile is left for the
-- next run rather than stamped as checked with the old content.
-- "Once per account per hour": social_accounts.preflight_checked_at, stamped when an account
-- is taken for a token check (skip locked: concurrent runs take different accounts). An
-- account changed since (reconnected, its token refreshed) is taken again at once.

alter table public.created_content add column if not exists preflight_checked_at timestamptz;
alter table public.social_accounts add column if not exists preflight_checked_at timestamptz;

-- The look-ahead's scan: the scheduled posts by due time. status and due_at are indexed
-- already (created_content_claimable), so this index makes no update non-HOT that was HOT;
-- a claim moves a post out of it (publishing), not in.
create index if not exists created_content_preflight
  on public.created_content (due_at) where status = 'scheduled';

-- The posts to check, soonest due first, at most p_limit, each with its account as the
-- claims carry it (claim_for_review), its updated_at (the fence of record_preflight) and its
-- current preflight. p_ids null: scheduled posts due within p_hours and not due yet, only
-- those changed since their last check unless p_changed_only is false. p_ids given: those
-- posts in draft, scheduled or retrying, whenever due.
create or replace function public.preflight_candidates(
  p_hours double precision, p_limit integer, p_ids text[], p_changed_only boolean
) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_ids public.publisher_post_id[] := '{}';
  v_text text;
  v_pick public.publisher_post_id[];
  v_posts jsonb;
begin
  if p_ids is null then
    v_pick := array(
      select x.id
        from public.created_content x
       where x.status = 'scheduled'
         and x.due_at > now()
         and x.due_at <= now() + make_interval(secs => p_hours * 3600)
         and (not coalesce(p_changed_only, true)
              or x.preflight_checked_at is null or x.updated_at > x.preflight_checked_at)
       order by x.due_at, x.id
       limit greatest(coalesce(p_limit, 0), 0));
  else
    -- Ids as text, cast to the id's type; a text that is no id of that type is left out,
    -- like an id that does not exist.
    foreach v_text in array p_ids loop
      begin
        v_ids := v_ids || btrim(v_text)::public.publisher_post_id;
      exception when invalid_text_representation or numeric_value_out_of_range then
        null;
      end;
    end loop;
    v_pick := array(
      select x.id
        from public.created_content x
       where x.id = any(v_ids) and x.status in ('draft', 'scheduled', 'retrying')
       order by x.due_at nulls last, x.id
       limit greatest(coalesce(p_limit, 0), 0));
  end if;

  select coalesce(jsonb_agg(jsonb_build_object(
           'id', c.id, 'attempt', c.attempts, 'max_attempts', c.max_attempts,
           'platform', c.platform, 'post_type', c.post_type, 'content', c.content,
           'title', c.title, 'link_url', c.link_url, 'media_urls', to_jsonb(c.media_urls),
           'options', c.platform_options, 'priority', c.priority,
           'scheduled_at', c.scheduled_at, 'due_at', c.due_at, 'status', c.status,
           'user_id', c.user_id, 'updated_at', c.updated_at,
           'preflight', c.god_mode_metadata -> 'preflight',
           'account', case when a.id is null then null else jsonb_build_object(
             'id', a.id, 'platform', a.platform, 'external_id', a.external_id,
             'status', a.status, 'status_reason', a.status_reason,
             'access_token_encrypted', a.access_token_encrypted,
             'refresh_token_encrypted', a.refresh_token_encrypted,
             'token_expires_at', a.token_expires_at,
             'login_type', a.login_type) end)
           order by p.n), '[]')
    into v_posts
    from unnest(v_pick) with ordinality as p(id, n)
    join public.created_content c on c.id = p.id
    left join public.social_accounts a on a.id = c.account_id;
  return v_posts;
end
$$;

-- Takes up to p_limit accounts for a token check, stamping preflight_checked_at: those with
-- scheduled posts due within p_hours (not yet due), not checked for p_every_seconds (or
-- changed since their check: reconnected, a token refreshed), the soonest due first.
-- p_account_ids given: those accounts, however recently checked. Each with its tokens
-- (sealed) and status, its posts due in the window and the first one's due time.
create or replace function public.preflight_accounts(
  p_hours double precision, p_limit integer, p_every_seconds double precision,
  p_account_ids uuid[]
) returns jsonb
language sql
set search_path = ''
as $$
  with due as (
    select x.account_id, count(*) as posts, min(x.due_at) as first_due
      from public.created_content x
     where x.status = 'scheduled'
       and x.due_at > now()
       and x.due_at <= now() + make_interval(secs => p_hours * 3600)
       and x.account_id is not null
       and (p_account_ids is null or x.account_id = any(p_account_ids))
     group by x.account_id
  ), picked as (
    select a.id, coalesce(d.posts, 0) as posts, d.first_due
      from public.social_accounts a
      left join due d on d.account_id = a.id
     where case when p_account_ids is null
                then d.account_id is not null
                     and (a.preflight_checked_at is null
                          or a.preflight_checked_at
                             < now() - make_interval(secs => p_every_seconds)
                          or a.updated_at > a.preflight_checked_at)
                else a.id = any(p_account_ids) end
     order by d.first_due nulls last, a.id
     limit greatest(coalesce(p_limit, 0), 0)
       for update of a skip locked
  ), stamped as (
    update public.social_accounts a
       set preflight_checked_at = now()
      from picked p
     where a.id = p.id
    returning a.id, a.platform, a.external_id, a.status, a.status_reason,
              a.access_token_encrypted, a.refresh_token_encrypted, a.token_expires_at,
              a.login_type, p.posts, p.first_due
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', s.id, 'platform', s.platform, 'external_id', s.external_id,
           'status', s.status, 'status_reason', s.status_reason,
           'access_token_encrypted', s.access_token_encrypted,
           'refresh_token_encrypted', s.refresh_token_encrypted,
           'token_expires_at', s.token_expires_at, 'login_type', s.login_type,
           'posts', s.posts, 'first_due', s.first_due)
           order by s.first_due nulls last, s.id), '[]')
    from stamped s;
$$;

-- Writes what the checks found.
-- p_posts: [{"id", "updated_at" (as preflight_candidates gave it), "problem" (null: fine)}]
--   sets the post part of each post's preflight and stamps preflight_checked_at; a post
--   changed since it was read (updated_at differs), or no longer draft, scheduled or
--   retrying, is left alone ("stale": checked again by a later run).
-- p_accounts: [{"account_id", "problem" (null: fine)}]
--   a problem goes onto the account's scheduled posts due within p_hours (not yet due); a
--   null clears the account part wherever it is. Posts whose account part is already that
--   are not written again.
-- Each write adds an event post.preflight_problem for a post whose part it wrote is a new
-- problem. Returns {"posts", "stale", "account_posts", "events"}.
create or replace function public.record_preflight(
  p_posts jsonb, p_accounts jsonb, p_hours double precision
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  k_states constant text[] := array['draft', 'scheduled', 'retrying'];
  v_posts integer;
  v_stale jsonb;
  v_events integer;
  v_account_posts integer;
  v_account_events integer;
begin
  with item as (
    select distinct on (x.id) x.id, x.updated_at as seen, nullif(btrim(x.problem), '') as problem
      from jsonb_to_recordset(coalesce(p_posts, '[]'))
        as x(id public.publisher_post_id, updated_at timestamptz, problem text)
     order by x.id
  ), target as (
    select c.id, coalesce(c.god_mode_metadata, '{}') -> 'preflight' as old, i.problem
      from item i
      join public.created_content c on c.id = i.id
     where c.status = any(k_states) and c.updated_at = i.seen
       for update of c skip locked
  ), shaped as (
    select t.id, t.old, t.problem, r.reason
      from target t
     cross join lateral (
       select nullif(concat_ws('; ', t.problem, t.old ->> 'account'), '') as reason) r
  ), written as (
    update public.created_content c
       set god_mode_metadata = case
             when s.reason is null then coalesce(c.god_mode_metadata, '{}') - 'preflight'
             else coalesce(c.god_mode_metadata, '{}') || jsonb_build_object(
                    'preflight', jsonb_strip_nulls(jsonb_build_object(
                      'reason', s.reason,
                      'checked_at', case when s.reason = s.old ->> 'reason'
                                         then s.old -> 'checked_at' else to_jsonb(now()) end,
                      'post', s.problem,
                      'account', s.old ->> 'account'))) end,
           preflight_checked_at = now()
      from shaped s
     where c.id = s.id
    returning c.id, c.user_id, c.account_id, c.platform, c.status, c.scheduled_at,
              s.old, s.problem, c.god_mode_metadata -> 'preflight' as new
  ), evented as (
    insert into public.publisher_events
      (type, post_id, account_id, user_id, platform, status, reason, payload)
    select 'post.preflight_problem', w.id, w.account_id, w.user_id, w.platform, w.status,
           w.new ->> 'reason',
           jsonb_build_object('scheduled_at', w.scheduled_at, 'preflight', w.new)
      from written w
     where w.problem is not null and w.problem is distinct from w.old ->> 'post'
    returning 1
  )
  select (select count(*) from written),
         coalesce((select jsonb_agg(i.id order by i.id) from item i
                    where i.id not in (select w.id from written w)), '[]'),
         (select count(*) from evented)
    into v_posts, v_stale, v_events;

  -- A second statement: one statement must not update a row twice.
  with item as (
    select distinct on (x.account_id) x.account_id, nullif(btrim(x.problem), '') as problem
      from jsonb_to_recordset(coalesce(p_accounts, '[]'))
        as x(account_id uuid, problem text)
     order by x.account_id
  ), target as (
    select c.id, coalesce(c.god_mode_metadata, '{}') -> 'preflight' as old, i.problem
      from item i
      join public.created_content c on c.account_id = i.account_id
     where (c.god_mode_metadata #>> '{preflight,account}') is distinct from i.problem
       and case when i.problem is null then c.status = any(k_states)
                else c.status = 'scheduled'
                     and c.due_at > now()
                     and c.due_at <= now() + make_interval(secs => p_hours * 3600) end
       for update of c skip locked
  ), shaped as (
    select t.id, t.old, t.problem, r.reason
      from target t
     cross join lateral (
       select nullif(concat_ws('; ', t.old ->> 'post', t.problem), '') as reason) r
  ), written as (
    update public.created_content c
       set god_mode_metadata = case
             when s.reason is null then coalesce(c.god_mode_metadata, '{}') - 'preflight'
             else coalesce(c.god_mode_metadata, '{}') || jsonb_build_object(
                    'preflight', jsonb_strip_nulls(jsonb_build_object(
                      'reason', s.reason, 'checked_at', now(),
                      'post', s.old ->> 'post', 'account', s.problem))) end,
           -- still "unchanged since checked" if it was (a product trigger may stamp
           -- updated_at on this write)
           preflight_checked_at = case when c.preflight_checked_at >= c.updated_at then now()
                                       else c.preflight_checked_at end
      from shaped s
     where c.id = s.id
    returning c.id, c.user_id, c.account_id, c.platform, c.status, c.scheduled_at,
              s.problem, c.god_mode_metadata -> 'preflight' as new
  ), evented as (
    insert into public.publisher_events
      (type, post_id, account_id, user_id, platform, status, reason, payload)
    select 'post.preflight_problem', w.id, w.account_id, w.user_id, w.platform, w.status,
           w.new ->> 'reason',
           jsonb_build_object('scheduled_at', w.scheduled_at, 'preflight', w.new)
      from written w
     where w.problem is not null   -- written only where the account part changed
    returning 1
  )
  select (select count(*) from written), (select count(*) from evented)
    into v_account_posts, v_account_events;

  return jsonb_build_object('posts', v_posts, 'stale', v_stale,
                            'account_posts', v_account_posts,
                            'events', v_events + v_account_events);
end
$$;

revoke all on function public.preflight_candidates(double precision, integer, text[], boolean),
  public.preflight_accounts(double precision, integer, double precision, uuid[]),
  public.record_preflight(jsonb, jsonb, double precision)
  from public, anon, authenticated;
grant execute on function public.preflight_candidates(double precision, integer, text[], boolean),
  public.preflight_accounts(double precision, integer, double precision, uuid[]),
  public.record_preflight(jsonb, jsonb, double precision)
  to service_role;

notify pgrst, 'reload schema';
