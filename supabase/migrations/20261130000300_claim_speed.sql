-- Claim and queue speed: Postgres work per post that does not grow with the tables and
-- stays small on the hot path (claim, "sending" stamp, outcome). Idempotent
-- (create or replace, if not exists); the earlier files stay as they were deployed.
--
-- What grew (measured with 100,000 posts over 20,000 accounts, claims of 500 per platform):
--  * claim_due_posts computed quota usage once per candidate, not once per quota key, and
--    its filter "(scope = 'platform' or account_id = ...)" could not use the account column
--    of quota_reservations_window: every candidate of a platform under a quota counted every
--    reservation of that platform in the window (half-way: 1,000 candidates x 13,500 rows,
--    4.9 s for one claim), so the cost per post grew with the posts already published;
--  * it kept its quota checks in a temporary table created (and dropped on commit) by
--    almost every claim: catalog writes, invalidations and catalog bloat on each claim;
--  * mark_sending and record_outcomes reached their posts through the status index (see
--    below), reading every post in flight to write a batch of 50.
-- Now the checks are arrays held by the function, usage is read once per quota key with one
-- index range (by account, or by platform through a new partial index) and counted only up
-- to max_posts, and the fenced writes go through the primary key.
-- Behaviour is unchanged: SKIP LOCKED claims, priority then oldest due, per-platform wants,
-- advisory locks per quota key (first round waits in key order, later rounds only try),
-- not_before at the next free slot for posts over a quota, the same fences, the same
-- signatures and the same returned json.

-- Platform-wide (app) quotas count every reservation of a platform in the window: one range
-- of this index, in reserved_at order, index-only when the visibility map allows.
create index if not exists quota_reservations_platform_window
  on public.quota_reservations (platform, reserved_at) include (post_type)
  where scope = 'platform';

-- Claims skip posts of paused accounts; few accounts are ever paused, so the anti-join reads
-- this small index instead of the whole accounts table on every claim.
create index if not exists social_accounts_paused
  on public.social_accounts (id) include (paused_until)
  where paused_until is not null;


-- The hot path. Measured with scripts/bench queue-core (20,000 no-op posts), Postgres CPU per post went
-- from ~100 us to ~75 us; the parts are below.

-- Room on each page for a post's later versions. A post is written three times after it is
-- created (claim, "sending" stamp, outcome). On full pages each new version went to another
-- page (58,000 of 60,000 updates), so none could be HOT; with half of each page free the
-- stamp, which changes no indexed column, is HOT (18,000 of 20,000), and the claim and the
-- outcome mostly stay on the post's page (2,900 of 40,000 moved). The price: pages of
-- posts inserted from now on are about half full. Existing pages are not rewritten.
-- A product's own created_content keeps a fillfactor the product chose.
do $$
begin
  if not exists (select 1 from pg_class c, unnest(coalesce(c.reloptions, '{}')) o
                  where c.oid = 'public.created_content'::regclass and o like 'fillfactor=%') then
    alter table public.created_content set (fillfactor = 50);
  end if;
end
$$;

-- created_content_status indexed every post by status, so the claim and the outcome (which
-- both change status, so are never HOT) each added an entry to it, for every post ever
-- published. No contract function needs it: those that filter on status have partial
-- indexes of their own (claimable, leased, unresolved; the fenced writes below go
-- through the primary key), and the one that had none, claim_for_review, gets one that
-- holds only the posts in needs_review, in the order it reads them.
create index if not exists created_content_review
  on public.created_content (review_checked_at nulls first, id)
  where status = 'needs_review';
-- (Only where the table is ours: an index of that name on the product's table is theirs.)
do $$
begin
  if to_regclass('public.publisher_adopted_tables') is not null then
    if exists (select 1 from public.publisher_adopted_tables
                where table_name = 'created_content') then
      return;
    end if;
  end if;
  drop index if exists public.created_content_status;
end
$$;

-- Claims: besides the quota rework above, nothing is spent per post where nothing needs it.
--  * Platforms under no quota (publish_quotas has no row for any platform asked for) skip
--    the quota step, which looked every candidate up again by id to find no quota.
--  * The answer, the same json in the same order, is built from rows (to_jsonb of a row
--    takes its keys from the column names) and turned into one array with to_jsonb of an
--    array_agg. jsonb_build_object looked up in the catalogs the type of each of the 25 keys
--    of each post as well as of its values, and jsonb_agg re-read every object it was
--    given. Measured on 1,000 claimed posts: ~42 ms for the whole claim before, ~32 ms after.
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
  v_new public.publisher_post_id[];
  v_limits jsonb := p_limits;
  v_held_back integer;
  v_round integer := 0;
  v_result jsonb;
  v_quotas boolean;
  -- This round's quota checks, one element per (candidate, quota it counts against), as
  -- parallel arrays: no temporary table, so a claim never writes to the system catalogs.
  -- The candidates are locked by this transaction, so their values cannot change under us.
  k_ids public.publisher_post_id[];
  k_platforms text[];
  k_scopes text[];
  k_accounts uuid[];
  k_keys bigint[];
  k_priorities smallint[];
  k_dues timestamptz[];
  k_attempts integer[];
  k_types text[];
  v_blocked bigint[];
begin
  -- Whether any platform asked for has a quota at all: if not, no candidate can count
  -- against one, and the quota step (which would find nothing) is skipped.
  v_quotas := exists (select 1 from public.publish_quotas q
                       where q.platform in (select jsonb_object_keys(p_limits)));
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

    if not v_quotas then
      v_admitted := v_admitted || v_candidates;
      exit;
    end if;

    -- The quota keys these candidates count against.
    select coalesce(array_agg(c.id), '{}'), array_agg(q.platform), array_agg(q.scope),
           array_agg(c.account_id),
           array_agg(hashtextextended(q.platform || ':' || q.scope || ':' ||
                       case when q.scope = 'account' then coalesce(c.account_id::text, '')
                            else '*' end, 7243)),
           array_agg(c.priority), array_agg(c.due_at), array_agg(c.attempts + 1),
           array_agg(c.post_type)
      into k_ids, k_platforms, k_scopes, k_accounts, k_keys, k_priorities, k_dues,
           k_attempts, k_types
      from public.created_content c
      join public.publish_quotas q on q.platform = c.platform
       and (q.post_types is null or c.post_type = any(q.post_types))
     where c.id = any(v_candidates);

    if cardinality(k_ids) = 0 then
      -- No candidate counts against a quota.
      v_admitted := v_admitted || v_candidates;
      exit;
    end if;

    -- Serialize each quota key across claimers. First round: wait for the keys, all
    -- claimers in the same order (no cycle). Later rounds already hold keys, so they only
    -- try: a key someone else holds leaves its posts for the next claim (never a deadlock).
    if v_round = 1 then
      perform pg_advisory_xact_lock(k.key)
         from (select distinct u.key from unnest(k_keys) as u(key) order by 1) k;
      v_blocked := '{}';
    else
      v_blocked := array(select d.key
                           from (select distinct u.key from unnest(k_keys) as u(key)) d
                          where not pg_try_advisory_xact_lock(d.key));
    end if;

    -- A new statement, so a new snapshot: it sees reservations other claimers committed
    -- while we waited for the locks. Usage is read once per quota key (on the key's first
    -- candidate, then spread over the key's rows by a window), not once per candidate; the
    -- steps are windows and set operations, so however the planner misjudges the row
    -- counts, the work stays proportional to the candidates.
    with k as (
      select *
        from unnest(k_ids, k_platforms, k_scopes, k_accounts, k_keys, k_priorities, k_dues,
                    k_attempts, k_types)
          as u(id, platform, scope, account_id, key, priority, due_at, attempt, post_type)
    ), ranked as (
      -- Candidates with a key another claimer holds wait for the next claim.
      select k.id, k.platform, k.scope, k.account_id, k.attempt, k.post_type,
             case when k.scope = 'account' then k.account_id end as key_account,
             count(*) over (partition by k.id) as n_checks,
             row_number() over (
               partition by k.platform, k.scope,
                            case when k.scope = 'account' then k.account_id end
               order by k.priority desc, k.due_at, k.id) as rank
        from k
       where k.id not in (select b.id from k b where b.key = any(v_blocked))
    ), counted as (
      select r.*, q.max_posts, q.window_seconds,
             max(n.used) over key_rows as used, min(n.oldest) over key_rows as oldest
        from ranked r
        join public.publish_quotas q on q.platform = r.platform and q.scope = r.scope
        cross join lateral (
          -- Reservations in the window, oldest first (the oldest says when a slot frees),
          -- counted up to max_posts (at least one, for the oldest): beyond max_posts the
          -- quota is full whatever the count.
          select count(*) as used, min(x.reserved_at) as oldest
            from ((select a.reserved_at
                     from public.quota_reservations a
                    where r.rank = 1 and r.scope = 'account'
                      and a.platform = r.platform and a.scope = 'account'
                      and a.account_id = r.key_account
                      and (q.post_types is null or a.post_type = any(q.post_types))
                      and a.reserved_at > now() - make_interval(secs => q.window_seconds)
                    order by a.reserved_at
                    limit greatest(q.max_posts, 1))
                  union all
                  (select p.reserved_at
                     from public.quota_reservations p
                    where r.rank = 1 and r.scope = 'platform'
                      and p.platform = r.platform and p.scope = 'platform'
                      and (q.post_types is null or p.post_type = any(q.post_types))
                      and p.reserved_at > now() - make_interval(secs => q.window_seconds)
                    order by p.reserved_at
                    limit greatest(q.max_posts, 1))) x
        ) n
      window key_rows as (partition by r.platform, r.scope, r.key_account)
    ), checked as (
      select c.*, c.rank <= c.max_posts - c.used as fits,
             coalesce(c.oldest, now()) + make_interval(secs => c.window_seconds) as free_at
        from counted c
    ), judged as (
      -- Admitted: every quota it counts against has room (and its key is ours).
      select ch.*, bool_and(ch.fits) over (partition by ch.id)
                   and count(*) over (partition by ch.id) = ch.n_checks as admit
        from checked ch
    ), held as (
      -- Over a quota: wait for its next free slot; not failed, no attempt used.
      update public.created_content c
         set not_before = greatest(coalesce(c.not_before, now()), w.free_at),
             last_error = 'waiting for quota: ' || w.what,
             updated_at = now()
        from (select j.id, max(j.free_at) as free_at,
                     string_agg(j.platform || ' ' || j.scope || ' quota full', ', '
                                order by j.scope, j.platform) as what
                from judged j where j.fits is false group by j.id) w
       where c.id = w.id
      returning c.id
    ), reserved as (
      insert into public.quota_reservations (post_id, attempt, platform, scope, account_id,
                                             post_type)
      select j.id, j.attempt, j.platform, j.scope, j.account_id, j.post_type
        from judged j
       where j.admit
      returning post_id
    )
    -- Admitted: candidates under no quota, and those with a reservation for each quota.
    select (select count(*) from held),
           array((select cand.id from unnest(v_candidates) as cand(id)
                  except
                  select k.id from k)
                 union
                 select r.post_id from reserved r)
      into v_held_back, v_new;
    v_admitted := v_admitted || v_new;

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
    -- only what the answer needs: the rest of the row is not copied along
    returning c.id, c.attempts, c.max_attempts, c.platform, c.post_type, c.content, c.title,
              c.link_url, c.media_urls, c.platform_options, c.priority, c.scheduled_at,
              c.user_id, c.publish_state, c.sending_started_at, c.account_id, c.due_at
  )
  select coalesce(to_jsonb(array_agg(x.post order by x.priority desc, x.due_at, x.id)), '[]')
    into v_result
    from (select c.priority, c.due_at, c.id, to_jsonb(p) as post
            from claimed c
            left join public.social_accounts a on a.id = c.account_id
           cross join lateral (
             -- The post's keys are these column names (see above).
             select c.id, c.attempts as attempt, c.max_attempts, c.platform, c.post_type,
                    c.content, c.title, c.link_url, c.media_urls,
                    c.platform_options as options, c.priority, c.scheduled_at, c.user_id,
                    c.publish_state, c.sending_started_at,
                    (select to_jsonb(acc)
                       from (select a.id, a.platform, a.external_id, a.status,
                                    a.status_reason, a.access_token_encrypted,
                                    a.refresh_token_encrypted, a.token_expires_at,
                                    -- added by 20261207000800 (plpgsql resolves it when run)
                                    a.login_type) acc
                      where a.id is not null) as account) p) x;
  return v_result;
end
$$;

-- mark_sending and record_outcomes: the statements of 0200 but for the fence, in plpgsql
-- instead of sql. A sql function is parsed and planned again on every call (before Postgres 18); a
-- plpgsql one keeps its plan for the session. record_outcomes runs every ~100 outcomes and
-- its plan took ~1 ms to make, about as long as running it.


-- The fenced writes reach their posts by id, through the primary key, whatever the
-- statistics say. Written as "status = 'publishing' and locked_by = p_worker", the fence let
-- the planner pick created_content_status (or created_content_leased) instead: right after
-- a bulk load the statistics say no post is publishing (estimate: 1 row), so each call read
-- every post in flight, plus the index entries of every post that was ever publishing and
-- not yet vacuumed, and hash-joined them to its batch. Measured half-way through 100,000
-- posts: 2,000 rows and 3,800 buffers read to mark 50 posts (7.5 ms), growing with the posts
-- in flight and published. The same fence as one expression ("the claim holder while
-- publishing") matches no index, so the only way in is the primary key: 50 probes.

-- Stamps "sending" on claimed posts just before their irreversible publish call.
-- Fenced by the claim: returns the ids this worker still holds; the others must not be sent.
-- p_claims: [{"id": 1, "attempt": 1}, ...]
create or replace function public.mark_sending(p_worker text, p_claims jsonb)
returns jsonb
language plpgsql
as $$
declare
  v_marked jsonb;
begin
  with items as (
    select * from jsonb_to_recordset(p_claims) as x(id public.publisher_post_id, attempt integer)
  ), marked as (
    update public.created_content c
       set sending_started_at = now()
      from items i
     where c.id = i.id and c.attempts = i.attempt
       and case when c.status = 'publishing' then c.locked_by end = p_worker  -- see the fence note above
       and c.lease_expires_at > now()
    returning c.id
  )
  select coalesce(jsonb_agg(id), '[]') into v_marked from marked;
  return v_marked;
end
$$;

-- Writes a batch of outcomes in one statement, fenced by worker and attempt, and one
-- attempt-log row per outcome (applied=false where the claim had been lost).
-- p_outcomes: [{"id", "attempt", "status", "outcome", "error", "platform_post_id",
--               "platform_url", "delay_seconds", "refund_attempt", "detail",
--               "account_id", "account_status", "state"}]; a key left out is null.
create or replace function public.record_outcomes(p_worker text, p_outcomes jsonb)
returns jsonb
language plpgsql
as $$
declare
  v_result jsonb;
begin
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
           -- coalesce: a product's own god_mode_metadata may allow null
           god_mode_metadata = case
             when o.error is null then c.god_mode_metadata - 'publish_error'
             else coalesce(c.god_mode_metadata, '{}')
                  || jsonb_build_object('publish_error', o.error) end,
           sending_started_at = case when o.status = 'needs_review' then c.sending_started_at end,
           publish_state = c.publish_state || coalesce(o.state, '{}'),
           locked_by = null,
           lease_expires_at = null,
           updated_at = now()
      from o
     where c.id = o.id and c.attempts = o.attempt
       and case when c.status = 'publishing' then c.locked_by end = p_worker  -- see the fence note above
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
                     '[]'))
    into v_result;
  return v_result;
end
$$;

-- create or replace keeps the functions' grants; stated again so this file stands alone.
revoke all on function public.claim_due_posts(text, jsonb, double precision),
  public.mark_sending(text, jsonb), public.record_outcomes(text, jsonb)
  from public, anon, authenticated;
grant execute on function public.claim_due_posts(text, jsonb, double precision),
  public.mark_sending(text, jsonb), public.record_outcomes(text, jsonb) to service_role;

notify pgrst, 'reload schema';
