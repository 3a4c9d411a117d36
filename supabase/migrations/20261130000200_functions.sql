-- The SQL contract: every transport (Supabase rpc, direct Postgres, embedded) calls these.
-- Each function has one signature (PostgREST cannot choose between overloads) and returns
-- one json value (PostgREST truncates set-returning results at max-rows).
-- Times are the database's own now(), never a worker's clock.

-- Housekeeping at the start of a run, in one statement:
--  * posts due more than p_max_delay_hours ago are expired, with the reason kept;
--  * posts for a platform this publisher does not know fail with that reason;
--  * claims whose lease ran out are released if sending never started, and go to
--    needs_review (never back to the queue) if it did: the post may be live.
create or replace function public.prepare_due_posts(
  p_max_delay_hours double precision,
  p_platforms text[]
) returns jsonb
language sql
as $$
  with expired as (
    update public.created_content c
       set status = 'expired',
           last_error = format('expired: not published within %s hours of its scheduled time',
                               p_max_delay_hours),
           god_mode_metadata = c.god_mode_metadata || jsonb_build_object('publish_error',
             format('expired: not published within %s hours of its scheduled time', p_max_delay_hours)),
           updated_at = now()
     where c.status in ('scheduled', 'retrying')
       and c.scheduled_at < now() - make_interval(secs => p_max_delay_hours * 3600)
    returning c.id
  ), unknown_platform as (
    update public.created_content c
       set status = 'failed',
           last_error = format('unknown platform %L: supported are %s', c.platform,
                               array_to_string(p_platforms, ', ')),
           god_mode_metadata = c.god_mode_metadata || jsonb_build_object('publish_error',
             format('unknown platform %L', c.platform)),
           updated_at = now()
     where c.status in ('scheduled', 'retrying')
       and c.due_at <= now()
       and c.platform <> all (p_platforms)
       and c.id not in (select id from expired)
    returning c.id
  ), released as (
    update public.created_content c
       set status = case when c.sending_started_at is null then 'scheduled' else 'needs_review' end,
           -- a released claim that never sent gives its attempt back
           attempts = case when c.sending_started_at is null then c.attempts - 1 else c.attempts end,
           last_error = case when c.sending_started_at is null then c.last_error
             else format('outcome unknown: worker %s lost its lease after sending started at %s',
                         c.locked_by, c.sending_started_at) end,
           locked_by = null,
           lease_expires_at = null,
           updated_at = now()
     where c.status = 'publishing'
       and c.lease_expires_at < now()
    returning c.id, c.status
  ), released_quota as (
    delete from public.quota_reservations r
     using released
     where r.post_id = released.id and released.status = 'scheduled'
    returning 1
  ), pruned_quota as (
    delete from public.quota_reservations r
     where r.reserved_at < now() - interval '8 days'
    returning 1
  )
  select jsonb_build_object(
    'expired', (select count(*) from expired),
    'unknown_platform', (select count(*) from unknown_platform),
    'released', (select count(*) from released where status = 'scheduled'),
    'needs_review', (select count(*) from released where status = 'needs_review'));
$$;

-- Posts written as a local wall-clock time and zone, not yet resolved to an instant.
create or replace function public.list_unresolved_schedules(p_limit integer)
returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', c.id, 'local', c.scheduled_local, 'timezone', c.scheduled_timezone)), '[]')
    from (select id, scheduled_local, scheduled_timezone
            from public.created_content
           where status = 'scheduled' and scheduled_at is null
           order by id
           limit p_limit) c;
$$;

-- Writes resolved instants, or fails the posts whose time could not be resolved.
-- p_items: [{"id": 1, "scheduled_at": "2026-...Z"} | {"id": 2, "error": "..."}]
create or replace function public.apply_resolved_schedules(p_items jsonb)
returns integer
language sql
as $$
  with items as (
    select * from jsonb_to_recordset(p_items) as x(id public.publisher_post_id, scheduled_at timestamptz, error text)
  ), updated as (
    update public.created_content c
       set scheduled_at = i.scheduled_at,
           status = case when i.error is null then c.status else 'failed' end,
           last_error = i.error,
           god_mode_metadata = case when i.error is null then c.god_mode_metadata
             else c.god_mode_metadata || jsonb_build_object('publish_error', i.error) end,
           updated_at = now()
      from items i
     where c.id = i.id and c.status = 'scheduled' and c.scheduled_at is null
    returning c.id
  )
  select count(*)::integer from updated;
$$;

-- Atomically claims due posts: at most p_limits->>platform per platform, highest priority
-- first, then oldest due; rows another worker holds are skipped, never waited for.
-- Rolling quotas (publish_quotas) are reserved in this same transaction: a post that would
-- exceed one is not claimed but gets a not_before at the window's next free slot (no attempt
-- used). Quota keys are serialized with transaction-scoped advisory locks, so concurrent
-- claims on any number of workers stay within every quota exactly.
-- Returns one json array of the claimed posts with their accounts.
create or replace function public.claim_due_posts(
  p_worker text,
  p_limits jsonb,
  p_lease_seconds double precision
) returns jsonb
language plpgsql
as $$
declare
  v_candidates public.publisher_post_id[];
  v_admitted public.publisher_post_id[] := '{}';
  v_limits jsonb := p_limits;
  v_held_back integer;
  v_round integer := 0;
  v_result jsonb;
begin
  -- Posts held back by a quota get a later not_before, so another round picks the next ones;
  -- a few rounds fill the batch even when the first candidates were all over quota.
  loop
    v_round := v_round + 1;
    select coalesce(array_agg(picked.id), '{}') into v_candidates
      from jsonb_each_text(v_limits) as l(platform, n)
      left join public.platform_pauses pp
        on pp.platform = l.platform and pp.paused_until > now()
      cross join lateral (
        select c.id
          from public.created_content c
         where c.status in ('scheduled', 'retrying')
           and c.platform = l.platform
           and c.due_at <= now()
           and c.id <> all (v_admitted)
           and not exists (select 1 from public.social_accounts a
                            where a.id = c.account_id and a.paused_until > now())
         order by c.priority desc, c.due_at, c.id
         limit case when pp.platform is null then greatest(l.n::integer, 0) else 0 end
           for update of c skip locked
      ) picked;
    exit when cardinality(v_candidates) = 0;

    if not exists (select 1 from public.publish_quotas q
                     join public.created_content c on c.platform = q.platform
                    where c.id = any(v_candidates)) then
      v_admitted := v_admitted || v_candidates;
      exit;
    end if;

    -- The quota keys these candidates count against.
    create temporary table if not exists pg_temp.claim_quota_checks (
      id public.publisher_post_id, platform text, scope text, account_id uuid, key bigint, fits boolean,
      blocked boolean, free_at timestamptz
    ) on commit drop;
    delete from pg_temp.claim_quota_checks;
    insert into pg_temp.claim_quota_checks (id, platform, scope, account_id, key, blocked)
    select c.id, q.platform, q.scope, c.account_id,
           hashtextextended(q.platform || ':' || q.scope || ':' ||
                            case when q.scope = 'account' then coalesce(c.account_id::text, '')
                                 else '*' end, 7243),
           false
      from public.created_content c
      join public.publish_quotas q on q.platform = c.platform
       and (q.post_types is null or c.post_type = any(q.post_types))
     where c.id = any(v_candidates);

    -- Serialize each quota key across claimers. First round: wait for the keys, all
    -- claimers in the same order (no cycle). Later rounds already hold keys, so they only
    -- try: a key someone else holds leaves its posts for the next claim (never a deadlock).
    if v_round = 1 then
      perform pg_advisory_xact_lock(k.key)
         from (select distinct key from pg_temp.claim_quota_checks order by 1) k;
    else
      update pg_temp.claim_quota_checks k set blocked = true
       where k.key in (select d.key from (select distinct key from pg_temp.claim_quota_checks) d
                        where not pg_try_advisory_xact_lock(d.key));
    end if;

    -- A new statement, so a new snapshot: it sees reservations other claimers committed
    -- while we waited for the locks.
    update pg_temp.claim_quota_checks k
       set fits = ranked.rank <= ranked.max_posts - ranked.used,
           free_at = coalesce(ranked.oldest, now()) + make_interval(secs => ranked.window_seconds)
      from (
        select c.id, q.platform, q.scope, q.max_posts, q.window_seconds,
               row_number() over (
                 partition by q.platform, q.scope,
                              case when q.scope = 'account' then c.account_id end
                 order by c.priority desc, c.due_at, c.id) as rank,
               usage.used, usage.oldest
          from public.created_content c
          join public.publish_quotas q on q.platform = c.platform
           and (q.post_types is null or c.post_type = any(q.post_types))
          cross join lateral (
            select count(*) as used, min(r.reserved_at) as oldest
              from public.quota_reservations r
             where r.platform = q.platform and r.scope = q.scope
               and (q.scope = 'platform' or r.account_id = c.account_id)
               and (q.post_types is null or r.post_type = any(q.post_types))
               and r.reserved_at > now() - make_interval(secs => q.window_seconds)
          ) usage
         where c.id = any(v_candidates)
           and c.id not in (select id from pg_temp.claim_quota_checks where blocked)
      ) ranked
     where k.id = ranked.id and k.platform = ranked.platform and k.scope = ranked.scope;

    -- Over a quota: wait for its next free slot; not failed, no attempt used.
    update public.created_content c
       set not_before = greatest(coalesce(c.not_before, now()), w.free_at),
           last_error = 'waiting for quota: ' || w.what,
           updated_at = now()
      from (select k.id, max(k.free_at) as free_at,
                   string_agg(k.platform || ' ' || k.scope || ' quota full', ', ') as what
              from pg_temp.claim_quota_checks k where k.fits is false group by k.id) w
     where c.id = w.id;
    get diagnostics v_held_back = row_count;

    -- Admitted: every quota it counts against has room (and its key is ours).
    v_admitted := v_admitted || array(
      select cand.id from unnest(v_candidates) as cand(id)
       where not exists (select 1 from pg_temp.claim_quota_checks k
                          where k.id = cand.id and (k.blocked or k.fits is not true)));

    insert into public.quota_reservations (post_id, attempt, platform, scope, account_id,
                                           post_type)
    select k.id, c.attempts + 1, k.platform, k.scope, c.account_id, c.post_type
      from pg_temp.claim_quota_checks k
      join public.created_content c on c.id = k.id
     where k.id = any(v_admitted);
    exit when v_held_back = 0 or v_round >= 5;
    -- Next round: only as many per platform as are still wanted.
    select coalesce(jsonb_object_agg(l.platform, l.n::integer - coalesce(got.n, 0)), '{}')
      into v_limits
      from jsonb_each_text(p_limits) as l(platform, n)
      left join (select c.platform, count(*) as n from public.created_content c
                  where c.id = any(v_admitted) group by c.platform) got
        on got.platform = l.platform
     where l.n::integer - coalesce(got.n, 0) > 0;
    exit when v_limits = '{}'::jsonb;
  end loop;

  with claimed as (
    update public.created_content c
       set status = 'publishing',
           attempts = c.attempts + 1,
           locked_by = p_worker,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           sending_started_at = null,
           updated_at = now()
     where c.id = any(v_admitted)
    returning c.*
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', c.id, 'attempt', c.attempts, 'max_attempts', c.max_attempts,
           'platform', c.platform, 'post_type', c.post_type, 'content', c.content,
           'title', c.title, 'link_url', c.link_url, 'media_urls', to_jsonb(c.media_urls),
           'options', c.platform_options, 'priority', c.priority,
           'scheduled_at', c.scheduled_at, 'user_id', c.user_id,
           'publish_state', c.publish_state, 'sending_started_at', c.sending_started_at,
           'account', case when a.id is null then null else jsonb_build_object(
             'id', a.id, 'platform', a.platform, 'external_id', a.external_id,
             'status', a.status, 'status_reason', a.status_reason,
             'access_token_encrypted', a.access_token_encrypted,
             'refresh_token_encrypted', a.refresh_token_encrypted,
             'token_expires_at', a.token_expires_at) end)
           order by c.priority desc, c.due_at, c.id), '[]')
    into v_result
    from claimed c
    left join public.social_accounts a on a.id = c.account_id;
  return v_result;
end
$$;

-- Stamps "sending" on claimed posts just before their irreversible publish call.
-- Fenced by the claim: returns the ids this worker still holds; the others must not be sent.
-- p_claims: [{"id": 1, "attempt": 1}, ...]
create or replace function public.mark_sending(p_worker text, p_claims jsonb)
returns jsonb
language sql
as $$
  with items as (
    select * from jsonb_to_recordset(p_claims) as x(id public.publisher_post_id, attempt integer)
  ), marked as (
    update public.created_content c
       set sending_started_at = now()
      from items i
     where c.id = i.id and c.attempts = i.attempt
       and c.locked_by = p_worker and c.status = 'publishing'
       and c.lease_expires_at > now()
    returning c.id
  )
  select coalesce(jsonb_agg(id), '[]') from marked;
$$;

-- Writes a batch of outcomes in one statement, fenced by worker and attempt, and one
-- attempt-log row per outcome (applied=false where the claim had been lost).
-- p_outcomes: [{"id", "attempt", "status", "outcome", "error", "platform_post_id",
--               "platform_url", "delay_seconds", "refund_attempt", "detail",
--               "account_id", "account_status", "state"}]
create or replace function public.record_outcomes(p_worker text, p_outcomes jsonb)
returns jsonb
language sql
as $$
  with o as (
    select * from jsonb_to_recordset(p_outcomes) as x(
      id public.publisher_post_id, attempt integer, status text, outcome text, error text,
      platform_post_id text, platform_url text, delay_seconds double precision,
      refund_attempt boolean, detail jsonb, account_id uuid, account_status text,
      state jsonb)
  ), updated as (
    update public.created_content c
       set status = o.status,
           platform_post_id = coalesce(o.platform_post_id, c.platform_post_id),
           platform_url = coalesce(o.platform_url, c.platform_url),
           published_at = case when o.status = 'published' then now() else c.published_at end,
           not_before = case when o.delay_seconds is null then c.not_before
                             else now() + make_interval(secs => o.delay_seconds) end,
           attempts = c.attempts - case when coalesce(o.refund_attempt, false) then 1 else 0 end,
           last_error = o.error,
           god_mode_metadata = case
             when o.error is null then c.god_mode_metadata - 'publish_error'
             else c.god_mode_metadata || jsonb_build_object('publish_error', o.error) end,
           sending_started_at = case when o.status = 'needs_review' then c.sending_started_at end,
           publish_state = c.publish_state || coalesce(o.state, '{}'),
           locked_by = null,
           lease_expires_at = null,
           updated_at = now()
      from o
     where c.id = o.id and c.attempts = o.attempt
       and c.locked_by = p_worker and c.status = 'publishing'
    returning c.id
  ), accounts as (
    update public.social_accounts a
       set status = o.account_status, status_reason = o.error, updated_at = now()
      from o
     where a.id = o.account_id and o.account_status is not null
       and a.status is distinct from o.account_status
       and o.id in (select id from updated)   -- a fenced-out write changes nothing
    returning a.id
  ), released_quota as (
    -- Only a post that went out (or may have) keeps its quota slot.
    delete from public.quota_reservations r
     using o
     where r.post_id = o.id and r.attempt = o.attempt
       and o.status not in ('published', 'needs_review')
       and o.id in (select id from updated)
    returning 1
  ), logged as (
    insert into public.publish_attempts
      (post_id, worker_id, attempt, outcome, status, applied, error, platform_post_id, detail)
    select o.id, p_worker, o.attempt, o.outcome, o.status,
           o.id in (select id from updated), o.error, o.platform_post_id, o.detail
      from o
    returning 1
  )
  select jsonb_build_object(
    'applied', (select count(*) from updated),
    'logged', (select count(*) from logged),
    'accounts', (select count(*) from accounts),
    'lost', coalesce((select jsonb_agg(o.id) from o where o.id not in (select id from updated)),
                     '[]'));
$$;

-- Pauses an account (throttled) until a time; claims skip it until then.
create or replace function public.pause_account(p_account_id uuid, p_seconds double precision,
                                                p_reason text)
returns void
language sql
as $$
  update public.social_accounts
     set paused_until = greatest(coalesce(paused_until, now()),
                                 now() + make_interval(secs => p_seconds)),
         status_reason = p_reason, updated_at = now()
   where id = p_account_id;
$$;

-- Pauses a whole platform (the app's budget is spent) until a time; claims skip it.
create or replace function public.pause_platform(p_platform text, p_seconds double precision,
                                                 p_reason text)
returns void
language sql
as $$
  insert into public.platform_pauses as p (platform, paused_until, reason)
  values (p_platform, now() + make_interval(secs => p_seconds), p_reason)
  on conflict (platform) do update
     set paused_until = greatest(p.paused_until, excluded.paused_until),
         reason = excluded.reason;
$$;

-- One row per run: counts by outcome and platform, rate, success rate.
create or replace function public.record_run(p_worker text, p_started_at timestamptz,
                                             p_summary jsonb)
returns bigint
language sql
as $$
  insert into public.publisher_runs (worker_id, started_at, summary)
  values (p_worker, p_started_at, p_summary)
  returning id;
$$;

-- Counts by status and platform, for `publisher status`.
create or replace function public.publisher_status()
returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'posts', coalesce((select jsonb_agg(jsonb_build_object('status', status, 'platform', platform,
                                                          'count', n) order by status, platform)
                         from (select status, platform, count(*) n from public.created_content
                               group by status, platform) s), '[]'),
    'due_now', (select count(*) from public.created_content
                 where status in ('scheduled', 'retrying') and due_at <= now()),
    'last_run', (select to_jsonb(r) from public.publisher_runs r order by id desc limit 1));
$$;

-- Connects (or reconnects) an account; tokens arrive already encrypted.
create or replace function public.connect_account(
  p_platform text, p_external_id text, p_display_name text, p_user_id uuid,
  p_access_token_encrypted text, p_refresh_token_encrypted text, p_token_expires_at timestamptz
) returns uuid
language sql
as $$
  insert into public.social_accounts as a
    (platform, external_id, display_name, user_id, access_token_encrypted,
     refresh_token_encrypted, token_expires_at, status, status_reason)
  values (p_platform, p_external_id, p_display_name, p_user_id, p_access_token_encrypted,
          p_refresh_token_encrypted, p_token_expires_at, 'active', null)
  on conflict (platform, external_id) do update
     set display_name = coalesce(excluded.display_name, a.display_name),
         user_id = coalesce(excluded.user_id, a.user_id),
         access_token_encrypted = excluded.access_token_encrypted,
         -- never overwrite a refresh token with nothing
         refresh_token_encrypted = coalesce(excluded.refresh_token_encrypted,
                                            a.refresh_token_encrypted),
         token_expires_at = excluded.token_expires_at,
         status = 'active', status_reason = null, paused_until = null, updated_at = now()
  returning a.id;
$$;

-- What a run would claim now, without claiming it (for `publisher run --dry-run`).
create or replace function public.list_due_posts(p_limit integer)
returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', c.id, 'platform', c.platform, 'post_type', c.post_type,
           'account', a.display_name, 'account_external_id', a.external_id,
           'scheduled_at', c.scheduled_at, 'priority', c.priority, 'attempts', c.attempts,
           'content', left(c.content, 80))
           order by c.priority desc, c.due_at, c.id), '[]')
    from (select * from public.created_content
           where status in ('scheduled', 'retrying') and due_at <= now()
           order by priority desc, due_at, id
           limit p_limit) c
    left join public.social_accounts a on a.id = c.account_id;
$$;

-- Token refresh, one worker at a time per account. Takes the account's refresh lock if it
-- is free (or its holder's time ran out) and returns the account's current tokens either
-- way: {"locked": bool, "account": {...}}. A worker that did not get the lock calls again
-- until the holder's new token appears, instead of refreshing a second time.
create or replace function public.lock_account_refresh(p_account_id uuid, p_worker text,
                                                       p_seconds double precision)
returns jsonb
language sql
as $$
  with locked as (
    update public.social_accounts
       set refresh_locked_by = p_worker,
           refresh_locked_until = now() + make_interval(secs => p_seconds)
     where id = p_account_id
       and (refresh_locked_until is null or refresh_locked_until < now())
    returning id
  )
  select jsonb_build_object(
    'locked', exists (select 1 from locked),
    'account', (select jsonb_build_object(
                  'id', a.id, 'platform', a.platform, 'external_id', a.external_id,
                  'status', a.status, 'status_reason', a.status_reason,
                  'access_token_encrypted', a.access_token_encrypted,
                  'refresh_token_encrypted', a.refresh_token_encrypted,
                  'token_expires_at', a.token_expires_at,
                  'refresh_locked_until', a.refresh_locked_until)
                  from public.social_accounts a where a.id = p_account_id));
$$;

-- Stores refreshed tokens (already encrypted) and releases the lock. A refresh token is
-- never overwritten with nothing: platforms often leave it out of a refresh answer.
-- p_status: 'active', 'needs_reauth' when the refresh was refused (p_reason says why), or
-- null to keep the status (releasing the lock without a new token).
create or replace function public.save_refreshed_tokens(
  p_account_id uuid, p_worker text, p_access_token_encrypted text,
  p_refresh_token_encrypted text, p_token_expires_at timestamptz, p_status text,
  p_reason text
) returns boolean
language sql
as $$
  with saved as (
    update public.social_accounts
       set access_token_encrypted = coalesce(p_access_token_encrypted, access_token_encrypted),
           refresh_token_encrypted = coalesce(nullif(p_refresh_token_encrypted, ''),
                                              refresh_token_encrypted),
           token_expires_at = case when p_access_token_encrypted is null then token_expires_at
                                   else p_token_expires_at end,
           status = coalesce(p_status, status),
           status_reason = case when p_status is null then status_reason else p_reason end,
           refresh_locked_by = null,
           refresh_locked_until = null,
           updated_at = now()
     where id = p_account_id and refresh_locked_by = p_worker
    returning id
  )
  select exists (select 1 from saved);
$$;

-- Takes posts in needs_review that may be settled by asking the platform (a reconcile
-- pass): each at most p_max_checks times, no more often than every p_every_seconds. They are
-- held like a claim (status publishing, lease, worker) without using an attempt, so the
-- answer is written by record_outcomes, fenced as usual; a worker dying here leaves them in
-- needs_review again (sending was stamped).
create or replace function public.claim_for_review(
  p_worker text, p_platforms text[], p_limit integer, p_max_checks integer,
  p_every_seconds double precision, p_lease_seconds double precision
) returns jsonb
language sql
as $$
  with picked as (
    select c.id
      from public.created_content c
     where c.status = 'needs_review'
       and c.platform = any(p_platforms)
       and c.review_checks < p_max_checks
       and (c.review_checked_at is null
            or c.review_checked_at < now() - make_interval(secs => p_every_seconds))
     order by c.review_checked_at nulls first, c.id
     limit p_limit
       for update skip locked
  ), held as (
    update public.created_content c
       set status = 'publishing',
           locked_by = p_worker,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           review_checks = c.review_checks + 1,
           review_checked_at = now(),
           updated_at = now()
      from picked
     where c.id = picked.id
    returning c.*
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', c.id, 'attempt', c.attempts, 'max_attempts', c.max_attempts,
           'platform', c.platform, 'post_type', c.post_type, 'content', c.content,
           'title', c.title, 'link_url', c.link_url, 'media_urls', to_jsonb(c.media_urls),
           'options', c.platform_options, 'priority', c.priority,
           'scheduled_at', c.scheduled_at, 'user_id', c.user_id,
           'publish_state', c.publish_state, 'sending_started_at', c.sending_started_at,
           'last_error', c.last_error,
           'account', case when a.id is null then null else jsonb_build_object(
             'id', a.id, 'platform', a.platform, 'external_id', a.external_id,
             'status', a.status, 'status_reason', a.status_reason,
             'access_token_encrypted', a.access_token_encrypted,
             'refresh_token_encrypted', a.refresh_token_encrypted,
             'token_expires_at', a.token_expires_at,
             -- the column comes with 20261207000800, and a sql function's body is checked
             -- when it is created: read through to_jsonb until then
             'login_type', to_jsonb(a) -> 'login_type') end)), '[]')
    from held c
    left join public.social_accounts a on a.id = c.account_id;
$$;

-- Only the publisher (service_role) may call these; end users may not.
do $$
declare f record;
begin
  for f in
    select p.oid::regprocedure as sig
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'public'
       and p.proname in ('prepare_due_posts', 'list_unresolved_schedules',
                         'apply_resolved_schedules', 'claim_due_posts', 'mark_sending',
                         'record_outcomes', 'pause_account', 'pause_platform', 'record_run',
                         'publisher_status',
                         'connect_account', 'list_due_posts',
                         'lock_account_refresh', 'save_refreshed_tokens',
                         'claim_for_review')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f.sig);
    execute format('grant execute on function %s to service_role', f.sig);
  end loop;
end
$$;

notify pgrst, 'reload schema';
